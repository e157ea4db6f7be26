"""The fast path for data: the C pickler alone, where it writes what Pickler would.

``Pickler.reducer_override`` costs a Python call for every object the C pickler cannot save alone
(every instance of every class), which pickle itself does not pay. So ``dumps`` first lets the C
pickler work alone, with our reducers as its dispatch table (consulted in C, by exact type, as
reducer_override does). Its output can then differ from ours only where it finds a function or
class by name (the table is not consulted for those): fine for importable ones, wrong for those of
``__main__`` or of a module registered by value. Before finding anything by name, the C pickler
imports its module with the ``__import__`` of the builtins of the calling frame's globals; this
module's builtins refuse those modules, so such a reference fails like anything else the C pickler
cannot do, and the full Pickler starts over.
"""
import builtins
import copyreg
import io
import operator
import pickle
import types

from .exceptions import rebuilt_without_init, reduce_exception
from .registry import INTERACTIVE_MODULES, is_registered_by_value


def _import_unless_by_value(name, globals=None, locals=None, fromlist=(), level=0):
    if name in INTERACTIVE_MODULES or name == __name__ or is_registered_by_value(name):
        raise ImportError(f"{name} travels by value")  # the full Pickler takes over
    return __import__(name, globals, locals, fromlist, level)


__builtins__ = dict(builtins.__dict__, __import__=_import_unless_by_value)


def dumps(obj, protocol, reducers):
    """The C pickler's bytes for ``obj`` if they are what Pickler would write, else None."""
    if not _GUARD_WORKS:
        return None
    with io.BytesIO() as file:
        pickler = pickle.Pickler(file, protocol)
        pickler.dispatch_table = _DispatchTable(protocol, reducers)
        try:
            pickler.dump(obj)
        except Exception:
            return None
        return file.getvalue()


class _DispatchTable(dict):
    """copyreg's reducers and ours; a type with neither gets, when first met, what pickle would do
    without a table, so that the C pickler never has to raise and clear a KeyError per object."""

    def __init__(self, protocol, reducers):
        super().__init__(copyreg.dispatch_table)
        self.update(_alone(protocol, reducers))
        self._reduce_ex = operator.methodcaller("__reduce_ex__", protocol)

    def __missing__(self, kind):
        if issubclass(kind, type):
            reduce = _by_name
        elif issubclass(kind, BaseException) and rebuilt_without_init(kind):
            reduce = _reduce_exception_alone
        else:
            reduce = self._reduce_ex
        self[kind] = reduce
        return reduce


def _reduce_exception_alone(exc):
    return reduce_exception(None, exc)


def _by_name(cls):
    """A class whose metaclass is not ``type``: by name, as pickle does (a string means a global)."""
    return cls.__qualname__


_made = {}  # protocol -> (how many reducers they were made from, dispatch entries)


def _alone(protocol, reducers):
    made_from, table = _made.get(protocol, (None, None))
    if made_from != len(reducers):  # reducers join once their module is imported
        table = {kind: _called_alone(reduce, protocol) for kind, reduce in reducers.items()}
        _made[protocol] = len(reducers), table
    return table


def _called_alone(reduce, protocol):
    """``reduce`` as a dispatch-table entry: no pickler, and no NotImplemented."""
    def reduce_alone(obj):
        reduced = reduce(None, obj)
        return obj.__reduce_ex__(protocol) if reduced is NotImplemented else reduced
    return reduce_alone


def _probe():
    """Found by name in this module, which the guard refuses: pickling it must fail."""


_GUARD_WORKS = True
_GUARD_WORKS = dumps(_probe, pickle.DEFAULT_PROTOCOL, {}) is None and dumps(
    types.SimpleNamespace, pickle.DEFAULT_PROTOCOL, {}) is not None
