"""Modules: importable ones travel by name, the others (made with ``types.ModuleType``, or
registered by value) as a new module.

A module pickled as such travels with all its attributes, and the functions pickled with it use the
rebuilt module's dict as their globals, as they used the original's. A by-value module that a
function only reaches (``util.double(x)`` with a global ``util``) travels with only the attributes
the function's code names, added by each function that reaches it: the module's other attributes
may be anything, such as a lock or a connection the function never touches.
"""
import builtins
import types

from .names import private
from .references import Reduced, import_of, import_through, reference
from .registry import module_travels_by_reference

# Import machinery of the pickling process, and builtins that the loading side has its own of.
_NOT_SHIPPED = frozenset({"__builtins__", "__loader__", "__spec__", "__cached__"})


def reduce_module(pickler, module):
    """An importable module travels as its import (see ``references``; payloads written before
    name ``importlib.import_module``), any other as a new module with the attributes it has."""
    name = private(module.__name__)
    if module_travels_by_reference(module):
        return import_of(name)
    namespace = vars(module)
    if pickler is not None:
        pickler.globals_bases.setdefault(id(namespace), ModuleNamespace(module))
        pickler.module_subsets.setdefault(id(module), module)  # it has every attribute already
    state = {private(k): v for k, v in namespace.items() if k not in _NOT_SHIPPED}
    return REBUILD_MODULE, (name,), state, None, None, RESTORE_MODULE


def _rebuild_module(name):
    module = types.ModuleType(name)
    module.__builtins__ = builtins  # as for a module run by the import system or exec
    return module


def _restore_module(module, state):
    vars(module).update(state)
    return module


REBUILD_MODULE, RESTORE_MODULE, _VARS = map(reference, (_rebuild_module, _restore_module, vars))


class ModuleNamespace:
    """Stands for the dict of a module that the same payload rebuilds: the globals of its functions."""

    __slots__ = ("module",)

    def __init__(self, module):
        self.module = module

    def __reduce__(self):
        return _VARS, (self.module,)


class ModuleSubset:
    """Stands for a by-value module reached through a function: it loads empty, and each function
    that reaches it adds the attributes it names (see :func:`reach`)."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        return REBUILD_MODULE, (self.name,)


def reach(pickler, modules, attribute_names):
    """What loading a function needs of the modules it holds (``modules``, from its globals and
    closure) and reaches through the attributes its code names (``attribute_names``, a dict used
    as an ordered set).

    The code may reach loaded submodules of importable modules (``xml.etree`` for a global ``xml``
    and the attribute ``etree``), which importing the module does not import. A top-level package
    whose reached submodules are one chain travels as the import of the last (``__import__("a.b.c")``
    imports ``a.b`` and ``a.b.c`` and gives ``a``); other such submodules are imported separately.

    Returns ``(stand_ins, imports, attributes)``: ``stand_ins`` maps the id of each module that
    travels as something else (a by-value module, a package with its submodules) to what travels in
    its place, ``imports`` lists the submodules to import separately, and ``attributes`` pairs each
    by-value module's stand-in with the attributes the code names.
    """
    stand_ins, imports, attributes = {}, [], []
    seen = set()
    pending = list(modules)
    for module in pending:  # by-value modules add the modules they hold as they are met
        if id(module) in seen:
            continue
        seen.add(id(module))
        if module_travels_by_reference(module):
            if "__path__" not in vars(module):  # not a package: no submodules
                continue
            reached = []
            _loaded_submodules(module, attribute_names, reached)
            stand_in = _package_import(pickler, module, reached) if reached else None
            if stand_in is not None:
                stand_ins[id(module)] = stand_in
            else:
                imports += [submodule for submodule in reached if submodule not in imports]
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


def _package_import(pickler, package, submodules):
    """The stand-in for ``package`` that imports ``submodules`` as it loads, if ``package`` is a
    top-level package and ``submodules`` one chain of its descendants; else None."""
    name = package.__name__
    if "." in name:
        return None
    for submodule in submodules:
        if submodule.__name__.rpartition(".")[0] != name:
            return None
        name = submodule.__name__
    stand_in = pickler.package_imports.get(name)
    if stand_in is None:
        stand_in = pickler.package_imports[name] = Reduced(import_through(private(name)))
    return stand_in


def _loaded_submodules(module, attribute_names, found):
    """Collect the importable loaded submodules of ``module`` named by ``attribute_names``, in
    their order: the import system sets each as an attribute of its package, so only module
    attributes are asked. A module that the package itself set under another name (``os.path`` is
    ``posixpath``) comes with the package."""
    namespace = vars(module)
    if "__path__" not in namespace:  # not a package: no submodules
        return
    named = [name for name in namespace.keys() & attribute_names.keys()
             if type(namespace[name]) is types.ModuleType]
    if not named:
        return
    for name in [name for name in attribute_names if name in named]:
        submodule = namespace[name]
        if submodule not in found and submodule.__name__ == f"{module.__name__}.{name}" and \
                module_travels_by_reference(submodule):
            found.append(submodule)
            _loaded_submodules(submodule, attribute_names, found)


def restore_attributes(attributes):
    """Give each rebuilt module the attributes a function named (the loading half of :func:`reach`)."""
    for module, named in attributes:
        vars(module).update(named)


REDUCERS = {types.ModuleType: reduce_module}
