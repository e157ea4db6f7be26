"""Instances of classes that pickle the default way: reduced without asking them.

For an instance of a class that keeps object's ``__reduce_ex__``, ``__reduce__`` and
``__getstate__``, defines no ``__getnewargs__``, ``__getnewargs_ex__`` or ``__slots__`` and has the
layout of a class statement's (a ``__dict__``, nothing stored in C), ``obj.__reduce_ex__(protocol)``
is ``(copyreg.__newobj__, (cls,), obj.__dict__ or None, None, None)`` for every protocol from 2 up.
The C pickler gets there through a dozen attribute lookups per object; building that tuple in one
Python call is cheaper, so the fast path for data and Pickler do it for such classes (which most
classes of data are): the same reduction, for less than pickle itself spends on it.
"""
import copyreg
import operator
import types

_NEWOBJ = copyreg.__newobj__
_OBJECT_METHODS = {name: getattr(object, name, None)
                   for name in ("__reduce_ex__", "__reduce__", "__getstate__")}


class _Probe:
    pass


_LAYOUT = operator.attrgetter("__basicsize__", "__itemsize__", "__dictoffset__", "__weakrefoffset__")
_PLAIN_LAYOUT = _LAYOUT(_Probe)


def pickles_plainly(cls):
    """Whether instances of ``cls`` (a class with no reducer in a dispatch table) pickle as
    ``(copyreg.__newobj__, (cls,), obj.__dict__ or None, None, None)`` with protocol 2 and up,
    unless an instance's own ``__dict__`` holds ``__reduce_ex__`` or ``__getstate__``."""
    if _LAYOUT(cls) != _PLAIN_LAYOUT or issubclass(cls, (type, BaseException)):
        return False
    if any(getattr(cls, name, None) is not method for name, method in _OBJECT_METHODS.items()):
        return False
    if hasattr(cls, "__getnewargs_ex__") or hasattr(cls, "__getnewargs__"):
        return False
    for base in cls.__mro__:
        namespace = vars(base)
        if namespace.get("__slots__") or namespace.get("__slotnames__"):
            return False
        if "__dict__" in namespace:  # the descriptor of instances' __dict__, not anything else
            return type(namespace["__dict__"]) is types.GetSetDescriptorType
    return False


def reducer(otherwise):
    """``reduce(obj)`` for an instance of a class that :func:`pickles_plainly`; ``otherwise(obj)``
    for one whose own ``__dict__`` overrides ``__reduce_ex__`` or ``__getstate__``."""

    def reduce_plain(obj):
        state = obj.__dict__
        if not state:
            return _NEWOBJ, (type(obj),), None, None, None
        if "__reduce_ex__" in state or "__getstate__" in state:
            return otherwise(obj)
        return _NEWOBJ, (type(obj),), state, None, None

    return reduce_plain
