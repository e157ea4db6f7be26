"""Dynamic classes and their members: how they are reduced, rebuilt, and kept one class per process.

A class travels as ``_rebuild_class(metaclass, name, bases, skeleton, class_id)`` plus its attributes
as state. ``class_id`` lets a process that loads the same class twice (two payloads, or the class
coming back to the process that defined it) hand out one class object, so ``isinstance`` keeps
working. The id is derived from the class's definition and an ordinal, not drawn at random, so the
same program pickles the same class to the same bytes in every run.
"""
import hashlib
import threading
import types
import weakref

from .registry import travels_by_reference

_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: classes made by a class statement or type()

_lock = threading.RLock()
_id_of_class = weakref.WeakKeyDictionary()
_class_of_id = weakref.WeakValueDictionary()
_next_ordinal = {}  # definition fingerprint -> next free ordinal
_awaiting_state = weakref.WeakSet()  # classes rebuilt here whose attributes are not set yet


def class_id(cls):
    """This process's stable id for ``cls``: ``<fingerprint>-<ordinal>``."""
    try:
        return _id_of_class[cls]
    except KeyError:
        pass
    with _lock:
        if cls in _id_of_class:
            return _id_of_class[cls]
        fingerprint = _fingerprint(cls)
        ordinal = _next_ordinal.get(fingerprint, 0)
        while f"{fingerprint}-{ordinal}" in _class_of_id:
            ordinal += 1
        _next_ordinal[fingerprint] = ordinal + 1
        _track(cls, f"{fingerprint}-{ordinal}")
        return _id_of_class[cls]


def _track(cls, cid):
    _id_of_class[cls] = cid
    _class_of_id[cid] = cls


def _fingerprint(cls):
    """A digest of what defines ``cls``: where it was defined, its bases, its attribute names and
    the bytecode of its methods. Two processes share an id only for the same definition."""
    digest = hashlib.blake2b(digest_size=10)
    digest.update(f"{cls.__module__}\0{cls.__qualname__}\0".encode())
    for base in cls.__bases__:
        digest.update(f"{base.__module__}.{base.__qualname__}\0".encode())
    for name, value in cls.__dict__.items():
        digest.update(name.encode(errors="surrogatepass") + b"\0")
        func = getattr(value, "__func__", getattr(value, "fget", value))
        code = getattr(func, "__code__", None)
        if isinstance(code, types.CodeType):
            digest.update(code.co_code)
            digest.update(f"{code.co_filename}:{code.co_firstlineno}\0".encode(
                errors="surrogatepass"))
    return digest.hexdigest()


# Entries of a class's __dict__ that the class statement makes by itself.
_MADE_BY_TYPE = (types.MemberDescriptorType, types.GetSetDescriptorType)
_NOT_SHIPPED = frozenset({"__module__", "__slots__", "_abc_impl"})


def reduce_class(pickler, cls):
    qualname = cls.__qualname__
    if travels_by_reference(cls, cls.__module__, qualname) or not cls.__flags__ & _HEAPTYPE:
        return NotImplemented
    namespace = cls.__dict__
    skeleton = {"__module__": cls.__module__, "__qualname__": qualname}
    if "__slots__" in namespace:
        skeleton["__slots__"] = namespace["__slots__"]
    state = {
        name: value for name, value in namespace.items()
        if name not in _NOT_SHIPPED
        and not (isinstance(value, _MADE_BY_TYPE) and value.__objclass__ is cls)
    }
    args = (type(cls), cls.__name__, cls.__bases__, skeleton, class_id(cls))
    return _rebuild_class, args, state, None, None, _restore_class


def _rebuild_class(metaclass, name, bases, skeleton, cid):
    with _lock:
        cls = _class_of_id.get(cid)
        if cls is not None:
            return cls
        cls = types.new_class(name, bases, {"metaclass": metaclass},
                              lambda namespace: namespace.update(skeleton))
        _track(cls, cid)
        fingerprint, _, ordinal = cid.rpartition("-")
        if ordinal.isdigit():
            _next_ordinal[fingerprint] = max(_next_ordinal.get(fingerprint, 0), int(ordinal) + 1)
        _awaiting_state.add(cls)
        return cls


def _restore_class(cls, state):
    """Set the attributes of a class rebuilt by this load; a class this process already had keeps
    its own."""
    with _lock:
        if cls not in _awaiting_state:
            return cls
        _awaiting_state.discard(cls)
    for name, value in state.items():
        setattr(cls, name, value)
    return cls


# --- what class bodies hold --------------------------------------------------------------------------

def reduce_classmethod(pickler, method):
    return type(method), (method.__func__,)


def reduce_property(pickler, prop):
    return property, (prop.fget, prop.fset, prop.fdel, prop.__doc__)


REDUCERS = {
    type: reduce_class,
    classmethod: reduce_classmethod,
    staticmethod: reduce_classmethod,
    property: reduce_property,
}
