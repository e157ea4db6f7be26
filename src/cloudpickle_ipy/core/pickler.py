"""The Pickler: for each object the C pickler cannot handle alone, decide how it travels.

``reducer_override`` runs for every such object, so it is one dict lookup on the object's type and
an ``isinstance`` check for metaclasses; everything else is left to the C pickler.
"""
import io
import pickle
import types

from .classes import reduce_class, reduce_classmethod, reduce_property
from .functions import reduce_cell, reduce_code, reduce_function
from .modules import reduce_module
from .registry import travels_by_reference

DEFAULT_PROTOCOL = pickle.HIGHEST_PROTOCOL


def _reduce_function_or_refer(pickler, func):
    if travels_by_reference(func, func.__module__, func.__qualname__):
        return NotImplemented
    return reduce_function(pickler, func)


_REDUCERS = {
    types.FunctionType: _reduce_function_or_refer,
    type: reduce_class,
    types.CodeType: reduce_code,
    types.CellType: reduce_cell,
    types.ModuleType: reduce_module,
    classmethod: reduce_classmethod,
    staticmethod: reduce_classmethod,
    property: reduce_property,
}


class Pickler(pickle.Pickler):
    """A pickle.Pickler that ships interactive and by-value code by value.

    Subclasses may define ``reducer_override`` (calling ``super().reducer_override(obj)`` for what
    they do not handle) and ``dispatch_table``, as documented for :class:`pickle.Pickler`.
    """

    def __init__(self, file, protocol=None, buffer_callback=None):
        super().__init__(file, DEFAULT_PROTOCOL if protocol is None else protocol,
                         buffer_callback=buffer_callback)
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


CloudPickler = Pickler


def dump(obj, file, protocol=None, buffer_callback=None):
    """Pickle ``obj`` to the binary ``file``, by value where needed."""
    Pickler(file, protocol, buffer_callback=buffer_callback).dump(obj)


def dumps(obj, protocol=None, buffer_callback=None):
    """Return the pickle of ``obj`` as bytes, by value where needed."""
    with io.BytesIO() as file:
        Pickler(file, protocol, buffer_callback=buffer_callback).dump(obj)
        return file.getvalue()
