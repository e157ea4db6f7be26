"""Modules: importable ones travel by name, the others (made with ``types.ModuleType``, or
registered by value) as a new module holding their attributes."""
import importlib
import types

from .registry import module_travels_by_reference

# Import machinery of the pickling process, and builtins that the loading side has its own of.
_NOT_SHIPPED = frozenset({"__builtins__", "__loader__", "__spec__", "__cached__"})


def reduce_module(pickler, module):
    if module_travels_by_reference(module):
        return importlib.import_module, (module.__name__,)
    state = {k: v for k, v in vars(module).items() if k not in _NOT_SHIPPED}
    return _rebuild_module, (module.__name__,), state, None, None, _restore_module


def _rebuild_module(name):
    return types.ModuleType(name)


def _restore_module(module, state):
    vars(module).update(state)
    return module


REDUCERS = {types.ModuleType: reduce_module}
