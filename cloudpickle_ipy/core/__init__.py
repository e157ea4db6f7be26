"""A by-value pickler with cloudpickle's public API: ``import cloudpickle_ipy.core as cloudpickle``.

Lambdas, closures, and functions and classes defined in ``__main__`` (a script, a shell, a
notebook) or in a module registered by value travel by value; everything importable travels by
reference. Payloads load with the standard ``pickle.loads`` wherever this package is importable.
Needs nothing beyond the standard library.
"""
from pickle import load, loads

from .functions import PythonVersionError
from .pickler import DEFAULT_PROTOCOL, CloudPickler, Pickler, dump, dumps, register
from .registry import (
                       list_registry_pickle_by_value,
                       register_pickle_by_value,
                       unregister_pickle_by_value,
)
from .wrappers import CallableObjectWrapper, CloudpickledObjectWrapper, wrap_non_picklable_objects

__all__ = [
    "CallableObjectWrapper", "CloudPickler", "CloudpickledObjectWrapper", "DEFAULT_PROTOCOL",
    "Pickler", "PythonVersionError", "dump", "dumps", "list_registry_pickle_by_value", "load",
    "loads", "register", "register_pickle_by_value", "unregister_pickle_by_value",
    "wrap_non_picklable_objects",
]
