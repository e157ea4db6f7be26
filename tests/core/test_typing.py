"""``typing`` constructs defined in ``__main__`` travel by value: type variables (``TypeVar``,
``ParamSpec``, ``TypeVarTuple``), tracked like classes so one process loads one ``T``; ``Generic``
subclasses; ``Protocol``; ``NamedTuple`` and ``collections.namedtuple``; annotations with
``Literal``, ``Final``, ``ClassVar`` and ``Callable`` over dynamic classes; and, on 3.12+, PEP 695
type parameters (``def f[T]``, ``class C[T]``, ``type Alias = ...``).
"""
import pickle
import sys

import pytest

from cloudpickle_ipy.core import dumps
from tests.fresh import define, load_fresh

# Type variables of each kind this Python has: (source defining ``param``, check, expected).
TYPE_VARIABLES = {
    "TypeVar-bound": (
        "param = TypeVar('T', bound=int)",
        "(obj.__name__, obj.__bound__ is int, obj.__constraints__, obj.__covariant__)",
        ("T", True, (), False)),
         "TypeVar-constraints": (
        "param = TypeVar('S', int, str)",
        "(obj.__name__, obj.__bound__, obj.__constraints__ == (int, str))",
        ("S", None, True)),
         "TypeVar-covariant": (
        "param = TypeVar('T_co', covariant=True)",
        "(obj.__name__, obj.__covariant__, obj.__contravariant__)",
        ("T_co", True, False)),
}
if sys.version_info >= (3, 10):
    TYPE_VARIABLES["ParamSpec"] = (
        "param = ParamSpec('P')",
        ("(obj.__name__, obj.args.__origin__ is obj, obj.kwargs.__origin__ is obj, "
         "typing.Callable[obj, int].__parameters__ == (obj,))"),
        ("P", True, True, True))
if sys.version_info >= (3, 11):
    TYPE_VARIABLES["TypeVarTuple"] = (
        "param = TypeVarTuple('Ts')",
        ("(obj.__name__, typing.Unpack[obj].__args__[0] is obj, "
         "typing.Tuple[typing.Unpack[obj]].__parameters__ == (obj,))"),
        ("Ts", True, True))


@pytest.mark.parametrize("kind", list(TYPE_VARIABLES))
def test_type_variable_travels_by_value(kind):
    source, check, expected = TYPE_VARIABLES[kind]
    param = define("from typing import *\n" + source).param
    assert param.__module__ == "__main__"
    assert load_fresh(dumps(param), "import typing; result = " + check) == expected


@pytest.mark.parametrize("kind", list(TYPE_VARIABLES))
def test_type_variable_loaded_from_two_payloads_is_one(kind):
    param = define("from typing import *\n" + TYPE_VARIABLES[kind][0]).param
    payloads = [dumps(param), dumps([param])]
    check = """
first, (second,) = [pickle.loads(p) for p in obj]
result = (first is second, first.__module__)
"""
    assert load_fresh(pickle.dumps(payloads), check) == (True, "__main__")


def test_generic_subclass_shares_the_loaded_type_variable():
    ns = define("""
        from typing import Generic, TypeVar, get_type_hints

        T = TypeVar("T")

        class Box(Generic[T]):
            def __init__(self, item: T):
                self.item = item

            def get(self) -> T:
                return self.item

        sample = Box[int](5)
    """)
    payloads = [dumps(ns.Box), dumps(ns.T), dumps(ns.sample)]
    check = """
import typing
box, t, sample = [pickle.loads(p) for p in obj]
alias = box[int]
result = (box.__parameters__ == (t,), box.__parameters__[0].__name__, alias.__origin__ is box,
          alias.__args__ == (int,), alias(3).get(), typing.get_type_hints(box.get)["return"] is t,
          type(sample) is box, sample.get(), sample.__orig_class__ == box[int])
"""
    assert load_fresh(pickle.dumps(payloads), check) == (
        True, "T", True, True, 3, True, True, 5, True)


def test_protocol_and_runtime_checkable_protocol():
    ns = define("""
        from typing import Protocol, runtime_checkable

        @runtime_checkable
        class Closable(Protocol):
            def close(self):
                ...

        class Drawable(Protocol):
            def draw(self):
                ...

        class Resource:
            def close(self):
                return "closed"
    """)
    payload = dumps([ns.Closable, ns.Drawable, ns.Resource])
    check = """
__name__ = "__main__"  # typing reads the caller's module name in a non-runtime Protocol check
closable, drawable, resource = obj
try:
    isinstance(resource(), drawable)
except TypeError:
    plain = "TypeError"
else:
    plain = "checked"
result = (isinstance(resource(), closable), isinstance(42, closable), plain,
          resource().close())
"""
    assert load_fresh(payload, check) == (True, False, "TypeError", "closed")


def test_typing_namedtuple_class():
    ns = define("""
        from typing import NamedTuple

        class Point(NamedTuple):
            x: int
            y: int = 0

            def norm2(self):
                return self.x ** 2 + self.y ** 2
    """)
    payload = dumps([ns.Point, ns.Point(3, 4)])
    check = """
cls, p = obj
result = (type(p) is cls, tuple(p), p.norm2(), cls._fields, cls._field_defaults, tuple(cls(1)),
          tuple(p._replace(y=0)), p.x, cls.__annotations__, repr(p))
"""
    assert load_fresh(payload, check) == (
        True, (3, 4), 25, ("x", "y"), {"y": 0}, (1, 0), (3, 0), 3, {"x": int, "y": int},
        "Point(x=3, y=4)")


def test_collections_namedtuple_made_in_main():
    ns = define("""
        from collections import namedtuple

        Pair = namedtuple("Pair", "left right", defaults=(0,))
    """)
    assert ns.Pair.__module__ == "__main__"
    payload = dumps([ns.Pair, ns.Pair(1, 2)])
    check = """
cls, p = obj
result = (type(p) is cls, tuple(p), cls._fields, cls._field_defaults, tuple(cls(5)),
          tuple(p._replace(left=9)), p._asdict(), cls.__module__)
"""
    assert load_fresh(payload, check) == (
        True, (1, 2), ("left", "right"), {"right": 0}, (5, 0), (9, 2),
        {"left": 1, "right": 2}, "__main__")


def test_annotations_with_special_forms_over_dynamic_classes():
    ns = define("""
        from typing import Callable, ClassVar, Dict, Final, Literal, Optional

        class Node:
            pass

        class Config:
            mode: Literal["fast", "slow"]
            limit: Final[int] = 10
            nodes: ClassVar[Dict[str, Node]] = {}
            callback: Callable[[Node], int]
            parent: Optional[Node] = None

        def handle(node: Node, callback: Callable[[Node], int]) -> Literal[1, 2]:
            return callback(node)
    """)
    payload = dumps([ns.Config, ns.Node, ns.handle])
    check = """
import typing
from typing import Callable, ClassVar, Dict, Final, Literal, Optional
config, node, handle = obj
hints = typing.get_type_hints(config)
fhints = typing.get_type_hints(handle)
result = (list(config.__annotations__), hints["mode"] == Literal["fast", "slow"],
          hints["limit"] == Final[int], hints["nodes"] == ClassVar[Dict[str, node]],
          hints["callback"] == Callable[[node], int], hints["parent"] == Optional[node],
          fhints == {"node": node, "callback": Callable[[node], int], "return": Literal[1, 2]},
          handle(node(), lambda n: 2))
"""
    assert load_fresh(payload, check) == (
        ["mode", "limit", "nodes", "callback", "parent"], True, True, True, True, True, True, 2)


# Generic definitions: (source defining ``target``, check, expected). The classic spellings exist on
# every version; PEP 695 syntax only compiles on 3.12+, so its source is only used there.
GENERICS = {
    "typevar-function": ("""
        from typing import TypeVar
        T = TypeVar("T")

        def target(x: T) -> T:
            return x
    """, ("(obj(5), obj.__annotations__['x'].__name__, "
          "obj.__annotations__['x'] is obj.__annotations__['return'])"), (5, "T", True)),
    "generic-class": ("""
        from typing import Generic, TypeVar
        T = TypeVar("T")

        class target(Generic[T]):
            def __init__(self, item: T):
                self.item = item
    """, ("([p.__name__ for p in obj.__parameters__], obj[int].__args__ == (int,), "
          "obj[int].__origin__ is obj, obj(3).item)"), (["T"], True, True, 3)),
}
if sys.version_info >= (3, 12):
    GENERICS["pep695-function"] = ("""
        def target[T](x: T) -> T:
            return x
    """, ("(obj(5), [p.__name__ for p in obj.__type_params__], "
          "obj.__annotations__['x'] is obj.__type_params__[0], "
          "obj.__annotations__['return'] is obj.__type_params__[0])"), (5, ["T"], True, True))
    GENERICS["pep695-class"] = ("""
        class target[T]:
            def __init__(self, item: T):
                self.item = item
    """, ("([p.__name__ for p in obj.__type_params__], obj.__parameters__ == obj.__type_params__, "
          "obj[int].__args__ == (int,), obj[int].__origin__ is obj, obj(3).item)"),
        (["T"], True, True, True, 3))
    GENERICS["pep695-alias"] = ("""
        type Alias = list[int]
        target = Alias
    """, "(obj.__name__, obj.__value__ == list[int], obj.__module__, obj.__type_params__)",
        ("Alias", True, "__main__", ()))
    GENERICS["pep695-generic-alias"] = ("""
        type Pair[K] = tuple[K, K]
        target = Pair
    """, ("(obj.__name__, [p.__name__ for p in obj.__type_params__], "
          "obj.__value__ == tuple[obj.__type_params__[0], obj.__type_params__[0]], "
          "obj[int].__args__ == (int,), obj[int].__origin__ is obj, obj.__module__)"),
        ("Pair", ["K"], True, True, True, "__main__"))


@pytest.mark.parametrize("kind", list(GENERICS))
def test_generic_definition_keeps_its_type_parameters(kind):
    source, check, expected = GENERICS[kind]
    target = define(source).target
    assert load_fresh(dumps(target), check) == expected
