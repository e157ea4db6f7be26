"""Objects of the standard library that pickle cannot handle alone (views, proxies, files, ...).

Where a standard callable rebuilds the object (``operator.methodcaller``, ``getattr``,
``WeakSet.update``), the payload names it instead of a function of this package.
"""
import collections
import gc
import io
import operator
import pickle
import sys
import types
import weakref

# --- mapping proxies and dict views ---------------------------------------------------------------

def reduce_mappingproxy(pickler, proxy):
    """The proxied mapping itself travels (``gc.get_referents`` is the only way to reach it), so
    a proxy and its mapping in one payload stay linked: ``MappingProxyType(self._data)``."""
    mapping, = gc.get_referents(proxy)
    return _rebuild_mappingproxy, (mapping,)


def _rebuild_mappingproxy(mapping):
    return types.MappingProxyType(mapping)


def _dict_views():
    """Map each dict view type to the dict type it is made from, the kind of view, and the
    methodcaller that makes it."""
    views = {}
    for mapping in (dict, collections.OrderedDict):
        for kind in ("keys", "values", "items"):
            views[type(getattr(mapping(), kind)())] = mapping, kind, operator.methodcaller(kind)
    return views


_DICT_VIEWS = _dict_views()


def reduce_dict_view(pickler, view):
    """A new dict holding only the view's data travels (a keys view leaves the values behind)
    with the ``methodcaller`` that makes the same kind of view of it."""
    mapping, kind, make_view = _DICT_VIEWS[type(view)]
    if kind == "keys":
        data = mapping.fromkeys(view)
    elif kind == "values":
        data = mapping(enumerate(view))
    else:
        data = mapping(view)
    return make_view, (data,)


# --- weak sets ------------------------------------------------------------------------------------

def reduce_weakset(pickler, weakset):
    """The live members travel as state, after the empty set exists, so a member may refer back
    to the set. The loaded set keeps only the members something else in the payload holds."""
    return weakref.WeakSet, (), list(weakset), None, None, weakref.WeakSet.update


# --- memoryviews ----------------------------------------------------------------------------------

def reduce_memoryview(pickler, view):
    """The contents travel in logical order (so sliced and strided views work), in ``bytes`` if
    the view is read-only and a ``bytearray`` if not, with the format and shape to cast back to."""
    try:
        data = view.tobytes() if view.readonly else bytearray(view)
        format, shape = view.format, view.shape
    except ValueError as e:
        raise pickle.PicklingError(f"cannot pickle memoryview: {e}") from None
    try:  # what loading does; O(1), and refuses here what could not be rebuilt there
        memoryview(data).cast(format, shape)
    except (ValueError, TypeError) as e:
        raise pickle.PicklingError(
            f"cannot pickle memoryview with format {format!r} and shape {shape}: "
            f"it cannot be rebuilt by memoryview.cast ({e})") from None
    return _rebuild_memoryview, (data, format, shape)


def _rebuild_memoryview(data, format, shape):
    return memoryview(data).cast(format, shape)


# --- files ----------------------------------------------------------------------------------------

_SHARED_STREAMS = ("stdout", "stderr", "__stdout__", "__stderr__")


def reduce_file(pickler, file):
    """Standard output and error travel by name (the loaded object is the loading process's);
    another file open for reading travels as its whole content and current position, and loads as
    a StringIO or BytesIO positioned there. Anything else is refused, saying why."""
    for stream in _SHARED_STREAMS:
        if getattr(sys, stream) is file:
            return getattr, (sys, stream)
    if file is sys.stdin or file is sys.__stdin__:
        raise pickle.PicklingError(
            "Cannot pickle standard input: it belongs to this process, and reading it to ship its "
            "content would consume it")
    name = getattr(file, "name", None)
    what = f"file {name!r}" if name is not None else f"{type(file).__name__} object"
    if file.closed:
        raise pickle.PicklingError(f"Cannot pickle closed files: {what} is closed, so its "
                                   f"content cannot be read")
    if not file.readable():
        mode = getattr(file, "mode", "?")
        raise pickle.PicklingError(f"Cannot pickle files that are not opened for reading: {mode} "
                                   f"({what}; files travel by their content)")
    if not file.seekable():
        raise pickle.PicklingError(f"Cannot pickle {what}: it is not seekable, so its content "
                                   f"cannot be read without consuming it")
    try:
        position = file.tell()
        try:
            file.seek(0)
            content = file.read()
            if isinstance(content, bytes):
                offset = position
            else:  # tell() is an opaque cookie: count the characters after it instead
                file.seek(position)
                offset = len(content) - len(file.read())
        finally:
            file.seek(position)
    except (OSError, ValueError) as e:
        raise pickle.PicklingError(f"Cannot pickle file {name} as it cannot be read: {e}") from e
    return _rebuild_file, (content, offset, name)


def _rebuild_file(content, position, name):
    file = io.BytesIO(content) if isinstance(content, bytes) else io.StringIO(content)
    file.seek(position)
    file.name = name
    return file


# --- descriptors ----------------------------------------------------------------------------------

def reduce_descriptor(pickler, descriptor):
    """Getset, member (``__slots__``) and classmethod descriptors travel as their owner class and
    name. Pickle cannot save getset ones, loads a member one as ``getattr(owner, name)`` (the
    class's own ``__name__`` for a ``__name__`` slot), and a classmethod one as a bound method on
    3.9 while refusing it after."""
    owner, name = descriptor.__objclass__, descriptor.__name__
    if vars(owner).get(name) is not descriptor:
        return NotImplemented
    return _rebuild_descriptor, (owner, name)


def _rebuild_descriptor(owner, name):
    return vars(owner)[name]


REDUCERS = {
    types.MappingProxyType: reduce_mappingproxy,
    **dict.fromkeys(_DICT_VIEWS, reduce_dict_view),
    weakref.WeakSet: reduce_weakset,
    memoryview: reduce_memoryview,
    **dict.fromkeys((io.TextIOWrapper, io.BufferedReader, io.BufferedRandom, io.BufferedWriter,
                     io.FileIO), reduce_file),
    **dict.fromkeys((types.GetSetDescriptorType, types.MemberDescriptorType,
                     types.ClassMethodDescriptorType), reduce_descriptor),
}
