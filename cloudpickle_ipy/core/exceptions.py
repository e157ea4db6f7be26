"""Exceptions whose class defines its own ``__init__``.

Pickle rebuilds an exception by calling its class with ``exc.args``, which fails when ``__init__``
takes other arguments (``def __init__(self, msg, *, code)``: "missing 1 required keyword-only
argument"), so the error a shipped cell raises could not come back. Such an exception travels as its
class, its ``args`` and its attributes, and is rebuilt without calling ``__init__``, as pickle
rebuilds other objects. Classes that pickle their exceptions their own way keep it.
"""
import copyreg
import types

_BASE_REDUCE = BaseException.__reduce__
_OBJECT_REDUCE_EX = object.__reduce_ex__


def reduce_exception(pickler, exc):
    cls = type(exc)
    if not rebuilt_without_init(cls):
        return NotImplemented
    table = getattr(pickler, "dispatch_table", copyreg.dispatch_table)
    if cls in table:
        return NotImplemented
    return _rebuild_exception, (cls, exc.args), exc.__dict__ or None


def rebuilt_without_init(cls):
    """Whether instances of ``cls`` travel as args and attributes: it has a Python ``__init__`` and
    pickles through ``BaseException.__reduce__``."""
    return (type(cls.__init__) is types.FunctionType and cls.__reduce__ is _BASE_REDUCE
            and cls.__reduce_ex__ is _OBJECT_REDUCE_EX)


def _rebuild_exception(cls, args):
    # The __new__ of the nearest class defined in C: what the class statement's __new__ ends in
    # (ExceptionGroup's, say), without a Python __new__ that might want other arguments too.
    for base in cls.__mro__:
        if not base.__flags__ & _HEAPTYPE:
            return base.__new__(cls, *args)


_HEAPTYPE = 1 << 9
