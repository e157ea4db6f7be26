"""Which modules travel by value, and whether one function or class can travel by reference.

An object travels by reference when the loading side can find it again by name: its module is
importable under its own name, the module is not registered by value, and walking the qualified
name from the module leads back to the very same object. Everything else travels by value.
"""
import sys
import types

_BY_VALUE = set()

# Modules whose objects are never found by name on the loading side.
INTERACTIVE_MODULES = frozenset({"__main__", "__mp_main__"})


def register_pickle_by_value(module):
    """Pickle the functions and classes of ``module`` (and of its submodules) by value."""
    name = _imported_module_name(module, "register_pickle_by_value")
    _BY_VALUE.add(name)


def unregister_pickle_by_value(module):
    """Undo :func:`register_pickle_by_value`."""
    _check_module(module, "unregister_pickle_by_value")
    name = module.__name__
    if name not in _BY_VALUE:
        raise ValueError(f"{module} is not registered for pickle by value (registered: "
                         f"{', '.join(sorted(_BY_VALUE)) or 'none'})")
    _BY_VALUE.remove(name)


def list_registry_pickle_by_value():
    """The names of the modules registered by value (a new set)."""
    return set(_BY_VALUE)


def _imported_module_name(module, caller):
    _check_module(module, caller)
    name = module.__name__
    if sys.modules.get(name) is not module:
        raise ValueError(f"{module} was not imported correctly, have you used an `import` "
                         f"statement to access it? ({caller} needs it in sys.modules as {name!r})")
    return name


def _check_module(module, caller):
    if not isinstance(module, types.ModuleType):
        raise ValueError(f"Input should be a module object, got {module} instead ({caller} was "
                         f"given a {type(module).__name__}; pass the module itself, e.g. "
                         f"{caller}(importlib.import_module(name)))")


def is_registered_by_value(module_name):
    """Whether ``module_name`` or one of its parent packages is registered by value."""
    if not _BY_VALUE or module_name is None:
        return False
    if module_name in _BY_VALUE:
        return True
    dot = module_name.find(".")
    while dot != -1:
        if module_name[:dot] in _BY_VALUE:
            return True
        dot = module_name.find(".", dot + 1)
    return False


def travels_by_reference(obj, module_name, qualname):
    """Whether ``obj`` (a function or class) can be found again as ``module_name.qualname``."""
    if module_name is None or module_name in INTERACTIVE_MODULES:
        return False
    if "<locals>" in qualname or "<lambda>" in qualname:
        return False
    if is_registered_by_value(module_name):
        return False
    found = sys.modules.get(module_name)
    if found is None:
        return False
    for part in qualname.split("."):
        found = getattr(found, part, _MISSING)
        if found is _MISSING:
            return False
    return found is obj


def module_travels_by_reference(module):
    """Whether ``module`` is importable under its own name and not registered by value."""
    name = module.__name__
    return sys.modules.get(name) is module and not is_registered_by_value(name)


_MISSING = object()
