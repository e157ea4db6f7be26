"""The Pickler: for each object the C pickler cannot handle alone, decide how it travels.

``reducer_override`` runs for every such object, so it is one dict lookup on the object's type and
an ``isinstance`` check for metaclasses; everything else is left to the C pickler.
"""
import copyreg
import io
import operator
import pickle
import sys

from . import (classes, descriptors, functions, locate, modules, registry, sentinels, stdlib,
               typevars)
from .classes import reduce_class

DEFAULT_PROTOCOL = pickle.HIGHEST_PROTOCOL

# How each kind of object travels, by exact type; each module contributes its own kinds.
_REDUCERS = {**functions.REDUCERS, **classes.REDUCERS, **descriptors.REDUCERS, **modules.REDUCERS,
             **stdlib.REDUCERS, **typevars.REDUCERS}

# Kinds from modules too costly to import here: their reducers join once the user has imported them
# (before that, none of their objects can exist).
_ONCE_IMPORTED = {"dataclasses": sentinels.reducers, "typing": typevars.typing_reducers}


def _add_reducers_of_imported_modules():
    for name in [name for name in _ONCE_IMPORTED if name in sys.modules]:
        _REDUCERS.update(_ONCE_IMPORTED.pop(name)())


class Pickler(pickle.Pickler):
    """A pickle.Pickler that ships interactive and by-value code by value.

    Subclasses may define ``reducer_override`` (calling ``super().reducer_override(obj)`` for what
    they do not handle) and ``dispatch_table``, as documented for :class:`pickle.Pickler`.
    """

    def __init__(self, file, protocol=None, buffer_callback=None):
        super().__init__(file, DEFAULT_PROTOCOL if protocol is None else protocol,
                         buffer_callback=buffer_callback)
        if _ONCE_IMPORTED:
            _add_reducers_of_imported_modules()
        # Per payload: one rebuilt globals dict per module, one rebuilt cell per closure cell.
        self.globals_bases = {}
        self.empty_cells = {}

    def reducer_override(self, obj):
        reduce = _REDUCERS.get(type(obj))
        if reduce is not None:
            return reduce(self, obj)
        if isinstance(obj, type):
            return reduce_class(self, obj)
        return NotImplemented

    def dump(self, obj):
        try:
            return super().dump(obj)
        except RecursionError as e:
            raise pickle.PicklingError(
                f"cannot pickle {type(obj).__name__!r} object: it is nested too deeply for the "
                f"recursion limit ({e})") from e
        except Exception as e:
            located = locate.annotate(self, obj, e)
            if located is None:
                raise
            raise located from e


CloudPickler = Pickler


def dump(obj, file, protocol=None, buffer_callback=None):
    """Pickle ``obj`` to the binary ``file``, by value where needed."""
    Pickler(file, protocol, buffer_callback=buffer_callback).dump(obj)


def dumps(obj, protocol=None, buffer_callback=None):
    """Return the pickle of ``obj`` as bytes, by value where needed."""
    protocol = DEFAULT_PROTOCOL if protocol is None else protocol
    if buffer_callback is None:  # a callback's side effects could not be taken back
        data = _dumps_data(obj, protocol)
        if data is not None:
            return data
    with io.BytesIO() as file:
        Pickler(file, protocol, buffer_callback=buffer_callback).dump(obj)
        return file.getvalue()


# --- the fast path for data --------------------------------------------------------------------------
# reducer_override costs a Python call for every object the C pickler cannot save alone (every
# instance of every class), which pickle itself does not pay. So dumps first lets the C pickler work
# alone, with our reducers as its dispatch table (consulted in C, by exact type, as reducer_override
# does). Its output differs from ours only where it finds a function or class by name (the dispatch
# table is not consulted for those): fine when the name is importable, not when it is in __main__ or
# in a module registered by value, whose names then appear in the bytes. Anything else it cannot do
# raises. In both cases the full Pickler starts over.

def _dumps_data(obj, protocol):
    """The C pickler's bytes for ``obj`` if they are what Pickler would write, else None."""
    with io.BytesIO() as file:
        pickler = pickle.Pickler(file, protocol)
        pickler.dispatch_table = _DispatchTable(protocol)
        try:
            pickler.dump(obj)
        except Exception:
            return None
        data = file.getvalue()
    if b"main__" in data and (b"__main__" in data or b"__mp_main__" in data):
        return None
    return None if registry.named_in(data) else data


class _DispatchTable(dict):
    """copyreg's reducers and ours; a type with neither gets, when first met, what pickle would do
    without a table, so that the C pickler never has to raise and clear a KeyError per object."""

    def __init__(self, protocol):
        super().__init__(copyreg.dispatch_table)
        self.update(_our_reducers(protocol))
        self._reduce_ex = operator.methodcaller("__reduce_ex__", protocol)

    def __missing__(self, kind):
        reduce = self[kind] = _by_name if issubclass(kind, type) else self._reduce_ex
        return reduce


def _by_name(cls):
    """A class whose metaclass is not ``type``: by name, as pickle does (a string means a global)."""
    return cls.__qualname__


_our_reducers_made = {}  # protocol -> (how many reducers they were made from, dispatch entries)


def _our_reducers(protocol):
    if _ONCE_IMPORTED:
        _add_reducers_of_imported_modules()
    made_from, table = _our_reducers_made.get(protocol, (None, None))
    if made_from != len(_REDUCERS):  # reducers join once their module is imported
        table = {kind: _called_alone(reduce, protocol) for kind, reduce in _REDUCERS.items()}
        _our_reducers_made[protocol] = len(_REDUCERS), table
    return table


def _called_alone(reduce, protocol):
    """``reduce`` as a dispatch-table entry: no pickler, and no NotImplemented."""
    def reduce_alone(obj):
        reduced = reduce(None, obj)
        return obj.__reduce_ex__(protocol) if reduced is NotImplemented else reduced
    return reduce_alone
