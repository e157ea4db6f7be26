"""Type variables (``TypeVar``, ``ParamSpec``, ``TypeVarTuple``) and ``type`` aliases defined
dynamically: pickle sends them by name, which the loading side cannot find.

Type variables are tracked like classes (see ``identity``), so ``Generic[T]`` classes loaded from two
payloads share one ``T``. From 3.12 the types live in the C module ``_typing`` (PEP 695 makes them
without importing ``typing``); before, they exist only once ``typing`` is imported.

An alias made by a ``type`` statement evaluates its value lazily, so it may refer to itself
(``type Tree = int | list[Tree]``). It is made again by a ``type`` statement, whose value (and its
type parameters' bounds, constraints and defaults) come from the payload's state, pickled once the
alias is in the pickle memo. Its type parameters are the statement's own, so the payload names them
through the alias (``alias.__type_params__[i]``).
"""
import gc
import operator
import pickle
import sys
import types

from . import identity
from .names import private, private_keys
from .registry import travels_by_reference


def reduce_type_param(pickler, param):
    owner = None if pickler is None else pickler.alias_params.get(id(param))
    if owner is not None:
        return operator.getitem, owner
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
    args = (type(param), private(param.__name__), constraints, private_keys(options),
            private(param.__module__), identity.tracking_id(param, _fingerprint))
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
    if not _made_by_statement(alias):  # TypeAliasType(...): its value exists before it does
        return _rebuild_type_alias, (alias.__name__, alias.__value__, alias.__type_params__,
                                     alias.__module__)
    if pickler is None:  # the C pickler alone cannot tell the parameters' owner: Pickler will
        return NotImplemented
    owned = _TypeParamsOf(alias)
    shapes, parts = [], {_VALUE: alias.__value__}
    for index, param in enumerate(alias.__type_params__):
        pickler.alias_params[id(param)] = (owned, index)
        shapes.append(_param_shape(param, index, parts))
    args = (private(alias.__name__), tuple(shapes), private(alias.__module__))
    return _rebuild_statement_alias, args, parts, None, None, _set_alias_parts


def _made_by_statement(alias):
    """Whether a ``type`` statement made ``alias``: it then holds the function computing its value."""
    return any(type(ref) is types.FunctionType for ref in gc.get_referents(alias))


class _TypeParamsOf:
    """Stands for ``alias.__type_params__``, for an alias earlier in the payload."""

    __slots__ = ("alias",)

    def __init__(self, alias):
        self.alias = alias

    def __reduce__(self):
        return getattr, (self.alias, _TYPE_PARAMS)


_PREFIXES = {"TypeVar": "", "TypeVarTuple": "*", "ParamSpec": "**"}
_TYPE_PARAMS = private("__type_params__")
_PARTS = "__cloudpickle_ipy_alias_parts__"  # the global the statement reads its parts from
# Keys of the parts (numbers: no string the user's data might share, see names).
_VALUE, _BOUND, _CONSTRAINT, _DEFAULT = range(4)


def _param_shape(param, index, parts):
    """``(kind, name, number of constraints or -1 for a bound, has a default)`` of a statement's
    type parameter; its bound, constraints and default go into ``parts``."""
    kind = type(param).__name__
    bound, constraints = getattr(param, "__bound__", None), getattr(param, "__constraints__", ())
    if constraints:
        parts.update(((_CONSTRAINT, index, i), c) for i, c in enumerate(constraints))
        bounds = len(constraints)
    elif bound is not None:
        parts[_BOUND, index] = bound
        bounds = -1
    else:
        bounds = 0
    has_default = bool(getattr(param, "has_default", None) and param.has_default())
    if has_default:
        parts[_DEFAULT, index] = param.__default__
    return private(kind), private(param.__name__), bounds, has_default


def _rebuild_statement_alias(name, shapes, module):
    if not all(n.isidentifier() for n in [name] + [shape[1] for shape in shapes]):
        raise pickle.UnpicklingError(f"type alias {name!r}: names in the payload are not "
                                     f"identifiers; the payload is damaged")
    declared = []
    for index, (kind, param, bounds, has_default) in enumerate(shapes):
        text = _PREFIXES[kind] + param
        if bounds == -1:
            text += f": {_PARTS}[{_BOUND}, {index}]"
        elif bounds:
            text += ": (" + ", ".join(f"{_PARTS}[{_CONSTRAINT}, {index}, {i}]"
                                      for i in range(bounds)) + ")"
        if has_default:
            text += f" = {_PARTS}[{_DEFAULT}, {index}]"
        declared.append(text)
    params = f"[{', '.join(declared)}]" if declared else ""
    namespace = {"__name__": module, _PARTS: {}}
    exec(f"type {name}{params} = {_PARTS}[{_VALUE}]", namespace)
    return namespace[name]


def _set_alias_parts(alias, parts):
    """Give the statement what it evaluates lazily (through the function that computes its value,
    whose globals hold the parts)."""
    compute = next(ref for ref in gc.get_referents(alias) if type(ref) is types.FunctionType)
    compute.__globals__[_PARTS].update(parts)
    return alias


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
