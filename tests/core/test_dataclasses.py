"""Dataclasses defined in ``__main__`` travel by value with their fields: defaults,
``default_factory``, ``InitVar``, ``ClassVar``, ``frozen=True`` and the other options, and
``dataclasses.fields()`` still works after the load.

The sentinels ``dataclasses`` compares by identity (``MISSING`` above all) load as themselves, so a
dataclass defined in the fresh process on top of a loaded one keeps the inherited required fields
required.
"""
import sys
import textwrap

import pytest

from cloudpickle_ipy.core import dumps
from tests.fresh import define, load_fresh


def test_fields_defaults_factories_initvar_and_classvar():
    ns = define("""
        import dataclasses
        from dataclasses import InitVar, dataclass, field
        from typing import ClassVar

        @dataclass
        class Item:
            name: str
            price: float = 1.0
            tags: list = field(default_factory=list)
            stamp: tuple = field(default_factory=lambda: ("made", 1))
            discount: InitVar[float] = 0.0
            made: ClassVar[int] = 0

            def __post_init__(self, discount):
                self.price -= discount
    """)
    payload = dumps(ns.Item)
    check = """
import dataclasses
item = obj("pen", 2.0, discount=0.5)
a, b = obj("a"), obj("b")
a.tags.append(1)
result = (item.price, item.tags, item.stamp, b.tags, obj.made, repr(obj("x")),
          [f.name for f in dataclasses.fields(obj)], [f.name for f in dataclasses.fields(item)],
          dataclasses.asdict(item), item == obj("pen", 1.5), dataclasses.is_dataclass(obj))
"""
    assert load_fresh(payload, check) == (
        1.5, [], ("made", 1), [], 0, "Item(name='x', price=1.0, tags=[], stamp=('made', 1))",
        ["name", "price", "tags", "stamp"], ["name", "price", "tags", "stamp"],
        {"name": "pen", "price": 1.5, "tags": [], "stamp": ("made", 1)}, True, True)


def test_instance_travels_with_its_dataclass():
    ns = define("""
        from dataclasses import dataclass, field

        @dataclass
        class Order:
            id: int
            lines: list = field(default_factory=list)
    """)
    payload = dumps(ns.Order(7, ["a", "b"]))
    check = "import dataclasses; result = (repr(obj), dataclasses.astuple(obj))"
    assert load_fresh(payload, check) == ("Order(id=7, lines=['a', 'b'])", (7, ["a", "b"]))


def test_frozen_dataclass_refuses_assignment():
    ns = define("""
        from dataclasses import dataclass

        @dataclass(frozen=True)
        class Point:
            x: int
            y: int = 0
    """)
    payload = dumps([ns.Point, ns.Point(1, 2)])
    check = """
import dataclasses
cls, p = obj
try:
    p.x = 5
except dataclasses.FrozenInstanceError:
    assigned = "FrozenInstanceError"
else:
    assigned = "assigned"
result = (assigned, p.x, hash(p) == hash(cls(1, 2)), dataclasses.replace(p, y=3).y)
"""
    assert load_fresh(payload, check) == ("FrozenInstanceError", 1, True, 3)


# A dataclass with a required field and a defaulted one.
BASE = """
    from dataclasses import dataclass

    @dataclass
    class Base:
        x: int
        y: int = 1
"""


def test_missing_sentinel_keeps_its_identity():
    ns = define(BASE)
    payload = dumps(ns.Base)
    check = """
import dataclasses
x = obj.__dataclass_fields__["x"]
result = (x.default is dataclasses.MISSING, x.default_factory is dataclasses.MISSING,
          obj.__dataclass_fields__["y"].default)
"""
    assert load_fresh(payload, check) == (True, True, 1)


def test_subclass_made_after_load_keeps_inherited_fields_required():
    ns = define(BASE)
    payload = dumps(ns.Base)
    check = """
import dataclasses
namespace = {"__annotations__": {"z": int}, "z": 0, "__module__": "__main__"}
B = dataclasses.dataclass(type("B", (obj,), namespace))
try:
    B()
except TypeError:
    missing = "TypeError"
else:
    missing = "constructed"
b = B(5)
result = (missing, [f.name for f in dataclasses.fields(B)], (b.x, b.y, b.z))
"""
    assert load_fresh(payload, check) == ("TypeError", ["x", "y", "z"], (5, 1, 0))


# Dataclass options, only those this Python has: (source defining ``cls`` and an instance
# ``sample``, check run on ``obj = (cls, sample)``, expected result).
OPTIONS = {
    "order": ("""
        @dataclass(order=True)
        class Version:
            major: int
            minor: int = 0
        cls, sample = Version, Version(1, 5)
    """, """
cls, sample = obj
result = [(v.major, v.minor) for v in sorted([cls(2), sample, cls(1)])]
""", [(1, 0), (1, 5), (2, 0)]),
    "unsafe_hash": ("""
        @dataclass(unsafe_hash=True)
        class Key:
            name: str
        cls, sample = Key, Key("a")
    """, """
cls, sample = obj
result = (len({sample, cls("a"), cls("b")}), hash(sample) == hash(cls("a")))
""", (2, True)),
}
if sys.version_info >= (3, 10):
    OPTIONS["kw_only"] = ("""
        @dataclass(kw_only=True)
        class Options:
            verbose: bool
            level: int = 1
        cls, sample = Options, Options(verbose=False, level=3)
    """, """
import dataclasses
cls, sample = obj
try:
    cls(True)
except TypeError:
    positional = "TypeError"
else:
    positional = "accepted"
o = cls(verbose=True)
result = (positional, (o.verbose, o.level), (sample.verbose, sample.level),
          [f.kw_only for f in dataclasses.fields(cls)])
""", ("TypeError", (True, 1), (False, 3), [True, True]))
    OPTIONS["KW_ONLY"] = ("""
        from dataclasses import KW_ONLY

        @dataclass
        class Mixed:
            a: int
            _: KW_ONLY
            b: int = 0
            c: int
        cls, sample = Mixed, Mixed(1, c=3)
    """, """
import dataclasses
cls, sample = obj
try:
    cls(1, 2)
except TypeError:
    positional = "TypeError"
else:
    positional = "accepted"
result = (positional, (sample.a, sample.b, sample.c), cls(5, c=6, b=7).b,
          [(f.name, f.kw_only) for f in dataclasses.fields(cls)])
""", ("TypeError", (1, 0, 3), 7, [("a", False), ("b", True), ("c", True)]))
    OPTIONS["slots"] = ("""
        @dataclass(slots=True)
        class Slotted:
            x: int
            y: int = 0
        cls, sample = Slotted, Slotted(1, 2)
    """, """
cls, sample = obj
try:
    sample.z = 3
except AttributeError:
    extra = "refused"
else:
    extra = "accepted"
result = (cls.__slots__, hasattr(sample, "__dict__"), (sample.x, sample.y), extra, cls(4).x)
""", (("x", "y"), False, (1, 2), "refused", 4))
    OPTIONS["slots_frozen"] = ("""
        import dataclasses

        @dataclass(slots=True, frozen=True)
        class Frozen:
            x: int
            y: int = 0
        cls, sample = Frozen, Frozen(3, 4)
    """, """
import dataclasses
cls, sample = obj
try:
    sample.x = 0
except dataclasses.FrozenInstanceError:
    assigned = "FrozenInstanceError"
else:
    assigned = "assigned"
result = (assigned, (sample.x, sample.y), hasattr(sample, "__dict__"), sample == cls(3, 4))
""", ("FrozenInstanceError", (3, 4), False, True))


@pytest.mark.parametrize("option", list(OPTIONS))
def test_dataclass_options(option):
    source, check, expected = OPTIONS[option]
    ns = define("from dataclasses import dataclass\n" + textwrap.dedent(source))
    assert load_fresh(dumps((ns.cls, ns.sample)), check) == expected
