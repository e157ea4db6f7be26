"""Type variables (``TypeVar``, ``ParamSpec``, ``TypeVarTuple``) and ``type`` aliases defined
dynamically: pickle sends them by name, which the loading side cannot find.

Type variables are tracked like classes (see ``identity``), so ``Generic[T]`` classes loaded from two
payloads share one ``T``. From 3.12 the types live in the C module ``_typing`` (PEP 695 makes them
without importing ``typing``); before, they exist only once ``typing`` is imported.
"""
import sys

from . import identity
from .registry import travels_by_reference


def reduce_type_param(pickler, param):
    if travels_by_reference(param, param.__module__, param.__name__):
        return NotImplemented
    options = {}
    if getattr(param, "__bound__", None) is not None:
        options["bound"] = param.__bound__
    for flag in ("__covariant__", "__contravariant__", "__infer_variance__"):
        if getattr(param, flag, False):
            options[flag.strip("_")] = True
    if getattr(param, "has_default", None) and param.has_default():
        options["default"] = param.__default__
    constraints = getattr(param, "__constraints__", ())
    args = (type(param), param.__name__, constraints, options, param.__module__,
            identity.tracking_id(param, _fingerprint))
    return _rebuild_type_param, args


def _fingerprint(param):
    return identity.digest(type(param).__qualname__, param.__module__, param.__name__)


def _rebuild_type_param(kind, name, constraints, options, module, tracking_id):
    with identity.lock:
        param = identity.tracked(tracking_id)
        if param is None:
            param = kind(name, *constraints, **options)
            param.__module__ = module
            identity.track(param, tracking_id)
        return param


def reduce_type_alias(pickler, alias):
    if travels_by_reference(alias, alias.__module__, alias.__name__):
        return NotImplemented
    return _rebuild_type_alias, (alias.__name__, alias.__value__, alias.__type_params__,
                                 alias.__module__)


def _rebuild_type_alias(name, value, type_params, module):
    # An alias takes its __module__ from the calling frame's globals, and it is read-only.
    return eval("TypeAliasType(name, value, type_params=type_params)",
                {"__name__": module, "TypeAliasType": _c_typing.TypeAliasType},
                {"name": name, "value": value, "type_params": type_params})


def _reducers(source):
    table = {}
    for name in ("TypeVar", "ParamSpec", "TypeVarTuple"):
        kind = getattr(source, name, None)
        if kind is not None:
            table[kind] = reduce_type_param
    if hasattr(source, "TypeAliasType"):
        table[source.TypeAliasType] = reduce_type_alias
    return table


def typing_reducers():
    """Reducers for the type-parameter types of ``typing`` (called once it is imported)."""
    return _reducers(sys.modules["typing"])


try:
    import _typing as _c_typing  # 3.12+: the types are here
except ImportError:  # 3.9
    _c_typing = None
REDUCERS = _reducers(_c_typing)
