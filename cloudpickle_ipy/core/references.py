"""How a payload names the modules it imports and the functions and types that loading calls.

The unpickler resolves each global it meets (``module.qualname``) with ``PyImport_Import``: about a
microsecond each (more for ``builtins``, whose import raises and clears an error each time), the
largest part of loading a small payload (one task, one cell's function) when it names several. So
our reductions name one global, ``builtins.getattr``, and reach the rest through it in calls that
the unpickler makes in C, once per payload (the memo shares the results):

- the builtins module is ``getattr.__self__``, and ``__import__`` its attribute;
- a top-level module is ``__import__(name)``, which looks in ``sys.modules`` first and waits for a
  module that another thread is still importing, as an import statement does;
- a submodule is ``_import_submodule(name)``: ``__import__`` returns its top-level package, and
  asking that for the submodule would find any attribute that shadows it;
- a module of this package is an attribute of ``cloudpickle_ipy.core``, which imports them all and
  names no attribute after one of them;
- a function or type is ``getattr(module, name)``.

The names in a payload are import paths all the same: keep them stable.
"""
import builtins
import sys

_CORE = __name__.rpartition(".")[0]


class Reduced:
    """Stands for what loading ``reduced`` (a reduction) gives, where the memo should share it."""

    __slots__ = ("reduced",)

    def __init__(self, reduced):
        self.reduced = reduced

    def __reduce__(self):
        return self.reduced


class Reference(Reduced):
    """Stands for ``obj`` where a reduction names a callable (its first item, or its state setter):
    travels as ``reduced``, and loads as ``obj`` itself."""

    __slots__ = ("obj",)

    def __init__(self, obj, reduced):
        super().__init__(reduced)
        self.obj = obj

    def __call__(self, *args, **kwargs):  # pickle takes only callables where these stand
        return self.obj(*args, **kwargs)

    def __repr__(self):
        return f"<reference to {self.obj!r}>"


BUILTINS = Reduced((getattr, (getattr, "__self__")))  # the builtins module
_IMPORT = Reference(builtins.__import__, (getattr, (BUILTINS, "__import__")))
# The core package: __import__ of a dotted name returns the top-level package.
_CORE_PACKAGE = Reduced((getattr, (Reduced((_IMPORT, (_CORE,))), _CORE.rpartition(".")[2])))


def import_of(name):
    """The reduction that loads as the (importable) module called ``name``."""
    if name == "builtins":
        return BUILTINS.reduced
    if "." in name:
        return IMPORT_SUBMODULE, (name,)
    return _IMPORT, (name,)


def import_through(name):
    """The reduction that imports the submodule ``name`` and loads as its top-level package."""
    return _IMPORT, (name,)


def _import_submodule(name):
    __import__(name)
    return sys.modules[name]


_modules = {}


def reference(obj, module=None, name=None):
    """A :class:`Reference` to ``obj``, found as ``module.name`` (by default its own module and
    qualified name, which must be a plain name)."""
    module = module or obj.__module__
    found = _modules.get(module)
    if found is None:
        package, _, attribute = module.rpartition(".")
        found = _modules[module] = Reduced(
            (getattr, (_CORE_PACKAGE, attribute)) if package == _CORE else import_of(module))
    return Reference(obj, (getattr, (found, name or obj.__qualname__)))


IMPORT_SUBMODULE = reference(_import_submodule)


def reduce_stand_in(pickler, stand_in):
    return stand_in.reduced


REDUCERS = {Reduced: reduce_stand_in, Reference: reduce_stand_in}
