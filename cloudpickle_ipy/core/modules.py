"""Modules: importable ones travel by name, the others (made with ``types.ModuleType``, or
registered by value) as a new module.

A module pickled as such travels with all its attributes, and the functions pickled with it use the
rebuilt module's dict as their globals, as they used the original's. A by-value module that a
function only reaches (``util.double(x)`` with a global ``util``) travels with only the attributes
the function's code names, added by each function that reaches it: the module's other attributes
may be anything, such as a lock or a connection the function never touches.
"""
import builtins
import importlib
import sys
import types

from .names import private
from .registry import module_travels_by_reference

# Import machinery of the pickling process, and builtins that the loading side has its own of.
_NOT_SHIPPED = frozenset({"__builtins__", "__loader__", "__spec__", "__cached__"})


def reduce_module(pickler, module):
    name = private(module.__name__)
    if module_travels_by_reference(module):
        return importlib.import_module, (name,)
    namespace = vars(module)
    if pickler is not None:
        pickler.globals_bases.setdefault(id(namespace), ModuleNamespace(module))
        pickler.module_subsets.setdefault(id(module), module)  # it has every attribute already
    state = {private(k): v for k, v in namespace.items() if k not in _NOT_SHIPPED}
    return _rebuild_module, (name,), state, None, None, _restore_module


def _rebuild_module(name):
    module = types.ModuleType(name)
    module.__builtins__ = builtins  # as for a module run by the import system or exec
    return module


def _restore_module(module, state):
    vars(module).update(state)
    return module


class ModuleNamespace:
    """Stands for the dict of a module that the same payload rebuilds: the globals of its functions."""

    __slots__ = ("module",)

    def __init__(self, module):
        self.module = module

    def __reduce__(self):
        return vars, (self.module,)


class ModuleSubset:
    """Stands for a by-value module reached through a function: it loads empty, and each function
    that reaches it adds the attributes it names (see :func:`reach`)."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        return _rebuild_module, (self.name,)


def reach(pickler, modules, attribute_names):
    """What loading a function needs of the modules it holds (``modules``, from its globals and
    closure) and reaches through the attributes its code names (``attribute_names``, in order).

    Returns ``(stand_ins, imports, attributes)``: ``stand_ins`` maps the id of each by-value module to
    what travels in its place, ``imports`` lists the loaded submodules of importable modules that the
    code reaches (``xml.etree`` for a global ``xml`` and the attribute ``etree``: importing ``xml``
    does not import it), and ``attributes`` pairs each stand-in with the attributes the code names.
    """
    stand_ins, imports, attributes = {}, [], []
    seen = set()
    pending = list(modules)
    while pending:
        module = pending.pop(0)
        if id(module) in seen:
            continue
        seen.add(id(module))
        if module_travels_by_reference(module):
            _loaded_submodules(module, attribute_names, imports)
            continue
        stand_in = stand_ins[id(module)] = _stand_in(pickler, module)
        namespace = vars(module)
        named = {}
        for name in attribute_names:
            if name in namespace and name not in _NOT_SHIPPED:
                value = namespace[name]
                if type(value) is types.ModuleType:
                    pending.append(value)
                named[private(name)] = value
        if named:
            attributes.append((stand_in, named))
    for _, named in attributes:  # by-value modules among the attributes travel as their stand-ins
        for name, value in named.items():
            if type(value) is types.ModuleType and id(value) in stand_ins:
                named[name] = stand_ins[id(value)]
    return stand_ins, imports, attributes


def _stand_in(pickler, module):
    """One stand-in per module and payload, whose dict is the globals of the module's functions."""
    stand_in = pickler.module_subsets.get(id(module))
    if stand_in is None:
        stand_in = pickler.module_subsets[id(module)] = ModuleSubset(private(module.__name__))
        pickler.globals_bases.setdefault(id(vars(module)), ModuleNamespace(stand_in))
    return stand_in


def _loaded_submodules(module, attribute_names, found):
    """Collect the importable loaded submodules of ``module`` named by ``attribute_names``."""
    prefix = module.__name__ + "."
    for name in attribute_names:
        submodule = sys.modules.get(prefix + name)
        if submodule is not None and submodule not in found and \
                module_travels_by_reference(submodule):
            found.append(submodule)
            _loaded_submodules(submodule, attribute_names, found)


def restore_attributes(attributes):
    """Give each rebuilt module the attributes a function named (the loading half of :func:`reach`)."""
    for module, named in attributes:
        vars(module).update(named)


REDUCERS = {types.ModuleType: reduce_module}
