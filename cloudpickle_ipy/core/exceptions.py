"""Exceptions whose class defines its own ``__init__``.

Pickle rebuilds an exception by calling its class with the arguments that the builtin exception's
``__reduce__`` gives (``exc.args``, for most), which fails when ``__init__`` takes other ones
(``def __init__(self, msg, *, code)``: "missing 1 required keyword-only argument"), so the error a
shipped cell raised could not come back. Such an exception travels as its class, those arguments and
its attributes, and is rebuilt without calling ``__init__``, as pickle rebuilds other objects.
Classes that pickle their exceptions their own way (their own ``__reduce__``) keep it.
"""
import copyreg
import types

from .references import reference

_OBJECT_REDUCE_EX = object.__reduce_ex__
_HEAPTYPE = 1 << 9


def reduce_exception(pickler, exc):
    cls = type(exc)
    if not rebuilt_without_init(cls):
        return NotImplemented
    if cls in getattr(pickler, "dispatch_table", copyreg.dispatch_table):
        return NotImplemented
    func, args, *rest = exc.__reduce__()
    if func is not cls:
        return NotImplemented
    return (REBUILD_EXCEPTION, (cls, args), *rest)


def rebuilt_without_init(cls):
    """Whether instances of ``cls`` travel without calling its ``__init__`` on load: it has one
    written in Python, and pickles through the ``__reduce__`` of a builtin exception."""
    reduce = getattr(cls.__reduce__, "__objclass__", None)  # None for a Python __reduce__
    return (type(cls.__init__) is types.FunctionType and reduce is not None
            and not reduce.__flags__ & _HEAPTYPE and cls.__reduce_ex__ is _OBJECT_REDUCE_EX)


def _rebuild_exception(cls, args):
    # The __new__ and __init__ of the nearest class defined in C (OSError's parse errno and
    # filename), as the class's own would end in, without the Python ones that want other
    # arguments.
    for base in cls.__mro__:
        if not base.__flags__ & _HEAPTYPE:
            exc = base.__new__(cls, *args)
            base.__init__(exc, *args)
            return exc


REBUILD_EXCEPTION = reference(_rebuild_exception)
