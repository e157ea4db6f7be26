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

Reducers of the user's go into the table on top of ours. The C pickler never consults the table for
a plain class or function (it saves them by name), so when the user has a reducer for ``type`` or
for functions, it dumps with builtins that refuse every import: any reference by name falls back.
"""
import builtins
import copyreg
import operator
import pickle
import types

from .exceptions import rebuilt_without_init, reduce_exception
from .instances import finder
from .registry import INTERACTIVE_MODULES, is_registered_by_value
from .user_reducers import REGISTERED


def _import_unless_by_value(name, globals=None, locals=None, fromlist=(), level=0):
    if name in INTERACTIVE_MODULES or name == __name__ or is_registered_by_value(name):
        raise ImportError(f"{name} travels by value")  # the full Pickler takes over
    # The real one, named in full: on Python 3.9 this module's own frames may find a bare
    # ``__import__`` in the dict below, which is this function.
    return builtins.__import__(name, globals, locals, fromlist, level)


__builtins__ = dict(builtins.__dict__, __import__=_import_unless_by_value)


def _import_nothing(name, *args, **kwargs):
    raise ImportError(f"{name}: a reducer of the user's may want what would be found in it")


def _dump(pickler, obj):
    pickler.dump(obj)


# _dump, in globals whose builtins refuse every import.
_dump_importing_nothing = types.FunctionType(
    _dump.__code__, {"__builtins__": {"__import__": _import_nothing}})

# Saved by name by the C pickler whatever its dispatch table holds.
_SAVED_BY_NAME = frozenset({type, types.FunctionType})


def dumps(obj, protocol, reducers, call_reducers):
    """The C pickler's bytes for ``obj`` if they are what Pickler would write, else None.

    ``reducers`` are ours, ``reduce(pickler, obj)``; the user's, ``reduce(obj)``, registered or
    given for this call (``call_reducers``, or None), win over them.
    """
    if not _GUARD_WORKS:
        return None
    made = _made.get(protocol)
    if made is None or made[0] != len(reducers) or made[1] != len(copyreg.dispatch_table):
        made = _made[protocol] = _alone(protocol, reducers)
    entries, refuse_names = made[2], made[3]
    if call_reducers:
        refuse_names = refuse_names or not _SAVED_BY_NAME.isdisjoint(call_reducers)
    output = Output()
    pickler = pickle.Pickler(output, protocol)
    pickler.dispatch_table = _DispatchTable(protocol, entries, call_reducers)
    try:
        if refuse_names:
            _dump_importing_nothing(pickler, obj)
        else:
            pickler.dump(obj)
    except Exception:
        return None
    return output.getvalue()


class Output(list):
    """What the C pickler writes, as one bytes object. The pickler hands over each frame (64 KiB)
    as the bytes object it built, which the list keeps as it is; joining them copies each byte once,
    into one buffer of the right size, and returns a payload of one frame itself. (A BytesIO grows
    by an eighth at a time: where its buffer cannot grow in place, it copies it again and again.)"""

    __slots__ = ()
    write = list.append

    def getvalue(self):
        return b"".join(self)


class _DispatchTable(dict):
    """copyreg's reducers, ours and the user's; a type with none gets, when first met, what pickle
    would do without a table (by way of ``instances`` where the class decides it), so that
    the C pickler never has to raise and clear a KeyError per object."""

    def __init__(self, protocol, entries, call_reducers):
        super().__init__(copyreg.dispatch_table)
        self.update(entries)
        if call_reducers:
            self.update(call_reducers)
        self._protocol = protocol
        self._reduce_ex = operator.methodcaller("__reduce_ex__", protocol)
        self._find = finder(self._reduce_ex)

    def __missing__(self, kind):
        if issubclass(kind, type):
            reduce = _by_name
        elif issubclass(kind, BaseException) and rebuilt_without_init(kind):
            reduce = _reduce_exception_alone
        else:
            reduce = self._find(kind, self._protocol) or self._reduce_ex
        self[kind] = reduce
        return reduce


def _reduce_exception_alone(exc):
    return reduce_exception(None, exc)


def _by_name(cls):
    """A class whose metaclass is not ``type``: by name, as pickle does (a string means a global)."""
    return cls.__qualname__


# protocol -> (how many of ours and of copyreg's reducers it was made from (ours join once their
# module is imported, copyreg's when a metaclass is registered there), dispatch entries, whether a
# registered reducer needs every reference by name refused)
_made = {}


def forget_tables():
    """Make the tables again at the next dump: a reducer was registered."""
    _made.clear()


def _alone(protocol, reducers):
    # Pickler's reducer_override takes every class before copyreg is asked, so a reducer that
    # copyreg has for a metaclass (wrappers' has one) must not take the classes here either.
    entries = {kind: _by_name for kind in copyreg.dispatch_table
               if isinstance(kind, type) and issubclass(kind, type)}
    entries.update({kind: _called_alone(reduce, protocol) for kind, reduce in reducers.items()})
    entries.update(REGISTERED)
    refuse_names = not _SAVED_BY_NAME.isdisjoint(REGISTERED)
    return len(reducers), len(copyreg.dispatch_table), entries, refuse_names


def _called_alone(reduce, protocol):
    """``reduce`` as a dispatch-table entry: no pickler, and no NotImplemented."""
    def reduce_alone(obj):
        reduced = reduce(None, obj)
        return obj.__reduce_ex__(protocol) if reduced is NotImplemented else reduced
    return reduce_alone


def _probe():
    """Found by name in this module, which the guard refuses: pickling it must fail."""


_GUARD_WORKS = True
_GUARD_WORKS = (dumps(_probe, pickle.DEFAULT_PROTOCOL, {}, None) is None
                and dumps(types.SimpleNamespace, pickle.DEFAULT_PROTOCOL, {}, None) is not None
                and dumps(types.SimpleNamespace, pickle.DEFAULT_PROTOCOL, {}, {type: repr}) is None)
