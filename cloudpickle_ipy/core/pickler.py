"""The Pickler: for each object the C pickler cannot handle alone, decide how it travels.

``reducer_override`` runs for every such object, so it is one dict lookup on the object's type and
an ``isinstance`` check for metaclasses; everything else is left to the C pickler.
"""
import io
import pickle
import sys

from . import (
    classes,
    decorated,
    descriptors,
    functions,
    locate,
    modules,
    plain,
    sentinels,
    stdlib,
    typevars,
)
from .classes import reduce_class
from .exceptions import reduce_exception

DEFAULT_PROTOCOL = pickle.HIGHEST_PROTOCOL

# How each kind of object travels, by exact type; each module contributes its own kinds.
_REDUCERS = {**functions.REDUCERS, **classes.REDUCERS, **descriptors.REDUCERS, **modules.REDUCERS,
             **stdlib.REDUCERS, **typevars.REDUCERS, **decorated.REDUCERS}

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
        # Per payload: one rebuilt globals dict per module, one rebuilt cell per closure cell, each
        # code file name as it travels (see sources), what travels for each by-value module (see
        # modules), the type parameters of the type statements already pickled (see typevars).
        self.globals_bases = {}
        self.empty_cells = {}
        self.source_files = {}
        self.module_subsets = {}
        self.alias_params = {}

    def reducer_override(self, obj):
        reduce = _REDUCERS.get(type(obj))
        if reduce is not None:
            return reduce(self, obj)
        if isinstance(obj, type):
            return reduce_class(self, obj)
        if isinstance(obj, BaseException):
            return reduce_exception(self, obj)
        return NotImplemented

    def dump(self, obj):
        try:
            return super().dump(obj)
        except RecursionError as e:
            raise pickle.PicklingError(
                f"Could not pickle object as excessively deep recursion required. The "
                f"{type(obj).__name__!r} object holds objects nested deeper than the "
                f"interpreter's recursion limit allows: flatten the structure, or raise the "
                f"limit with sys.setrecursionlimit where it applies") from e
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
        if _ONCE_IMPORTED:
            _add_reducers_of_imported_modules()
        data = plain.dumps(obj, protocol, _REDUCERS)
        if data is not None:
            return data
    with io.BytesIO() as file:
        Pickler(file, protocol, buffer_callback=buffer_callback).dump(obj)
        return file.getvalue()
