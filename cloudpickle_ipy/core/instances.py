"""Instances whose reduction their class decides: reduced without asking each of them.

The C pickler reduces an instance through a dozen attribute lookups per object: its
``__reduce_ex__``, and inside object's, ``__reduce__``, ``__getnewargs_ex__``, ``__getnewargs__``,
``__getstate__``, the slots' names, copyreg's ``__newobj__``. For four kinds of class the result
is known from the class, and building it in one call is cheaper (the fast path for data and
Pickler do it; the bytes stay pickle's own):

- **plain**: a class that keeps object's ``__reduce_ex__``, ``__reduce__`` and ``__getstate__``,
  defines no ``__getnewargs__``, ``__getnewargs_ex__`` or ``__slots__`` and has the layout of a
  class statement's (a ``__dict__``, nothing stored in C). ``obj.__reduce_ex__(protocol)`` is
  ``(copyreg.__newobj__, (cls,), obj.__dict__ or None, None, None)`` for every protocol from 2 up.
  Most classes of data are plain.
- **with state**: the same, but with slots, or a ``__getstate__`` of its own, made of class
  statements only (so nothing is stored in C and ``__new__`` exists): the reduction is
  ``(copyreg.__newobj__, (cls,), obj.__getstate__(), None, None)``, object's ``__getstate__``
  being the one pickle uses when the class has none (Python 3.11 and later; before, only classes
  with their own qualify).
- **made from arguments**: a class that keeps object's ``__reduce_ex__``, ``__reduce__`` and
  ``__getstate__``, defines ``__getnewargs__`` (not ``__getnewargs_ex__``), and whose instances
  hold nothing else (no ``__dict__``, no slots; named tuples): ``(copyreg.__newobj__, (cls,
  *obj.__getnewargs__()), None, None, None)`` for protocols from 2 up.
- **reduced**: a class that keeps object's ``__reduce_ex__`` but defines ``__reduce__``, whose
  instances have no ``__dict__`` (``Decimal``, ``date``, ``timedelta``, ``Fraction``, slotted
  classes): object's ``__reduce_ex__`` returns ``obj.__reduce__()`` for every protocol, so the
  class's ``__reduce__`` is the reducer.

Everything else (its own ``__reduce_ex__``, builtin bases, state beside new arguments) is asked.
"""
import copyreg
import operator
import pickle
import sys
import types

_NEWOBJ = copyreg.__newobj__
_OBJECT_METHODS = {name: getattr(object, name, None)
                   for name in ("__reduce_ex__", "__reduce__", "__getstate__")}
_NEWARGS = ("__getnewargs_ex__", "__getnewargs__")
# Made by a class statement (or type()): a heap type that C code did not make immutable.
_HEAPTYPE, _IMMUTABLETYPE = 1 << 9, 1 << 8
# Saved by the C pickler itself (with some protocols): never reduced here.
_SAVED_BY_PICKLE = frozenset({tuple, list, dict, set, frozenset, str, bytes, bytearray, int, float,
                              pickle.PickleBuffer})
# Before 3.11 object has no __getstate__: pickle computes the default state itself.
_DEFAULT_GETSTATE = sys.version_info >= (3, 11)


class _Probe:
    pass


_LAYOUT = operator.attrgetter("__basicsize__", "__itemsize__", "__dictoffset__", "__weakrefoffset__")
_PLAIN_LAYOUT = _LAYOUT(_Probe)


def _keeps_object_methods(cls, names=tuple(_OBJECT_METHODS)):
    """Whether ``cls`` has object's own ``names`` (of ``__reduce_ex__``, ``__reduce__`` and
    ``__getstate__``)."""
    return all(getattr(cls, name, None) is _OBJECT_METHODS[name] for name in names)


def _has_new_arguments(cls):
    return any(hasattr(cls, name) for name in _NEWARGS)


def _declares_slots(base):
    namespace = vars(base)
    return bool(namespace.get("__slots__") or namespace.get("__slotnames__"))


def pickles_plainly(cls):
    """Whether instances of ``cls`` (a class with no reducer in a dispatch table) pickle as
    ``(copyreg.__newobj__, (cls,), obj.__dict__ or None, None, None)`` with protocol 2 and up,
    unless an instance's own ``__dict__`` holds ``__reduce_ex__`` or ``__getstate__``."""
    if _LAYOUT(cls) != _PLAIN_LAYOUT or issubclass(cls, (type, BaseException)):
        return False
    if not _keeps_object_methods(cls) or _has_new_arguments(cls):
        return False
    for base in cls.__mro__:
        if _declares_slots(base):
            return False
        namespace = vars(base)
        if "__dict__" in namespace:  # the descriptor of instances' __dict__, not anything else
            return type(namespace["__dict__"]) is types.GetSetDescriptorType
    return False


def _pickles_with_state(cls):
    """Whether instances of ``cls`` (not plain) pickle as ``(copyreg.__newobj__, (cls,),
    obj.__getstate__(), None, None)`` with protocol 2 and up (the module docstring)."""
    if not _keeps_object_methods(cls, ("__reduce_ex__", "__reduce__")) or _has_new_arguments(cls):
        return False
    if not all(base.__flags__ & _HEAPTYPE and not base.__flags__ & _IMMUTABLETYPE
               for base in cls.__mro__[:-1]):
        return False
    getstate = getattr(cls, "__getstate__", None)
    return getstate is not None and (_DEFAULT_GETSTATE or getstate is not _OBJECT_METHODS[
        "__getstate__"])


def _made_from_arguments(cls):
    """Whether instances of ``cls`` pickle as ``(copyreg.__newobj__, (cls,
    *obj.__getnewargs__()), None, None, None)`` with protocol 2 and up (the module docstring)."""
    if not _keeps_object_methods(cls) or not hasattr(cls, "__getnewargs__"):
        return False
    if hasattr(cls, "__getnewargs_ex__"):
        return False
    return not (cls.__dictoffset__ or issubclass(cls, (list, dict))
                or any(map(_declares_slots, cls.__mro__)))


def _own_reduce(cls):
    """``cls.__reduce__`` if object's ``__reduce_ex__`` returns ``cls.__reduce__(obj)`` for every
    instance (a function or a C method, not a static or class method), else None."""
    if (cls.__reduce_ex__ is not _OBJECT_METHODS["__reduce_ex__"] or cls.__dictoffset__
            or cls.__reduce__ is _OBJECT_METHODS["__reduce__"]):
        return None
    reduce = next(vars(base)["__reduce__"] for base in cls.__mro__ if "__reduce__" in vars(base))
    return reduce if type(reduce) in (types.FunctionType, types.MethodDescriptorType) else None


def _with_state(obj):
    return _NEWOBJ, (type(obj),), obj.__getstate__(), None, None


def finder(otherwise):
    """``find(cls, protocol)``: a ``reduce(obj)`` for the instances of ``cls`` (a class with no
    reducer in a dispatch table) that returns what ``obj.__reduce_ex__(protocol)`` would, or None
    when only each object can say. ``otherwise(obj)`` reduces an instance whose own ``__dict__``
    overrides ``__reduce_ex__`` or ``__getstate__``."""

    def reduce_plain(obj):
        state = obj.__dict__
        if not state:
            return _NEWOBJ, (type(obj),), None, None, None
        if "__reduce_ex__" in state or "__getstate__" in state:
            return otherwise(obj)
        return _NEWOBJ, (type(obj),), state, None, None

    def reduce_with_state(obj):
        state = obj.__dict__
        if "__reduce_ex__" in state or "__getstate__" in state:
            return otherwise(obj)
        return _NEWOBJ, (type(obj),), obj.__getstate__(), None, None

    def reduce_from_arguments(obj):
        arguments = obj.__getnewargs__()
        if type(arguments) is not tuple:  # refused by pickle, and said how
            return otherwise(obj)
        return _NEWOBJ, (type(obj), *arguments), None, None, None

    def find(cls, protocol):
        if cls in _SAVED_BY_PICKLE or issubclass(cls, (type, BaseException)):
            return None
        reduce = _own_reduce(cls)
        if reduce is not None:
            return reduce
        if protocol < 2:
            return None
        if pickles_plainly(cls):
            return reduce_plain
        if _pickles_with_state(cls):
            return reduce_with_state if cls.__dictoffset__ else _with_state
        if _made_from_arguments(cls):
            return reduce_from_arguments
        return None

    return find
