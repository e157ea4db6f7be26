"""Enums defined in ``__main__`` travel by value: ``Enum``, ``IntEnum``, ``Flag`` (composite members
included), functional-API enums, enums with methods, classmethods, ``_missing_``, aliases and
members with extra attributes set in ``__init__``.

Members keep their identity in the fresh process (``Color.RED is Color.RED``, a member shipped next
to its class is that class's member, ``Color(1) is Color.RED``), and an enum sent back to the
process that defined it is the original enum.
"""
import pickle

import pytest

from cloudpickle_ipy.core import dumps, loads
from tests.fresh import define, load_fresh

PROTOCOLS = list(range(2, pickle.HIGHEST_PROTOCOL + 1))

SEND_BACK = "import cloudpickle_ipy.core as c; result = c.dumps(obj)"

COLOR = """
    import enum

    class Color(enum.Enum):
        RED = 1
        GREEN = 2
        BLUE = 3
"""


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_enum_members_keep_identity(protocol):
    Color = define(COLOR).Color
    payload = dumps([Color.RED, Color], protocol=protocol)
    check = """
member, cls = obj
result = (member is cls.RED, cls.RED is cls.RED, cls(1) is cls.RED, cls["GREEN"] is cls.GREEN,
          isinstance(member, cls), [m.name for m in cls], [m.value for m in cls],
          cls.__module__, repr(member))
"""
    assert load_fresh(payload, check) == (
        True, True, True, True, True, ["RED", "GREEN", "BLUE"], [1, 2, 3], "__main__",
        "<Color.RED: 1>")


def test_member_loaded_from_separate_payloads_is_one_member():
    Color = define(COLOR).Color
    payloads = [dumps(Color.RED), dumps(Color), dumps(Color.RED)]
    check = """
first, cls, second = [pickle.loads(p) for p in obj]
result = (first is second, first is cls.RED)
"""
    assert load_fresh(pickle.dumps(payloads), check) == (True, True)


def test_int_enum():
    ns = define("""
        import enum

        class Priority(enum.IntEnum):
            LOW = 1
            HIGH = 2
    """)
    payload = dumps([ns.Priority.HIGH, ns.Priority])
    check = """
high, cls = obj
result = (high is cls.HIGH, high > cls.LOW, high + 1, isinstance(high, int), cls(1) is cls.LOW,
          sorted([cls.HIGH, cls.LOW])[0] is cls.LOW)
"""
    assert load_fresh(payload, check) == (True, True, 3, True, True, True)


def test_flag_with_combined_members():
    ns = define("""
        import enum

        class Perm(enum.Flag):
            R = 4
            W = 2
            X = 1
    """)
    payload = dumps([ns.Perm.R | ns.Perm.W, ns.Perm])
    check = """
rw, cls = obj
result = (rw is (cls.R | cls.W), cls.R in rw, cls.X in rw, rw.value, (rw & cls.W) is cls.W,
          cls(6) is rw, isinstance(rw, cls))
"""
    assert load_fresh(payload, check) == (True, True, False, 6, True, True, True)


def test_functional_api_enum():
    ns = define("""
        import enum

        Color = enum.Enum("Color", "RED GREEN")
    """)
    assert ns.Color.__module__ == "__main__"
    payload = dumps([ns.Color.GREEN, ns.Color])
    check = """
green, cls = obj
result = ([(m.name, m.value) for m in cls], green is cls.GREEN, cls(1) is cls.RED,
          cls.__name__, cls.__module__)
"""
    assert load_fresh(payload, check) == (
        [("RED", 1), ("GREEN", 2)], True, True, "Color", "__main__")


def test_enum_with_methods_classmethod_missing_and_aliases():
    ns = define("""
        import enum

        class Shape(enum.Enum):
            SQUARE = 4
            TRIANGLE = 3
            QUAD = 4

            def describe(self):
                return f"{self.name.lower()} with {self.value} sides"

            @classmethod
            def by_sides(cls, n):
                return cls(n)

            @classmethod
            def _missing_(cls, value):
                if isinstance(value, str):
                    return cls[value.upper()]
                return None
    """)
    payload = dumps(ns.Shape)
    check = """
result = (obj.QUAD is obj.SQUARE, len(obj), list(obj.__members__), obj("triangle") is obj.TRIANGLE,
          obj.by_sides(4) is obj.SQUARE, obj.QUAD.describe(), obj.QUAD.name)
"""
    assert load_fresh(payload, check) == (
        True, 2, ["SQUARE", "TRIANGLE", "QUAD"], True, True, "square with 4 sides", "SQUARE")


def test_enum_members_with_attributes_set_in_init():
    ns = define("""
        import enum

        class Planet(enum.Enum):
            MERCURY = (3.303e23, 2.4397e6)
            EARTH = (5.976e24, 6.37814e6)

            def __init__(self, mass, radius):
                self.mass = mass
                self.radius = radius

            @property
            def surface_gravity(self):
                return 6.673e-11 * self.mass / (self.radius * self.radius)
    """)
    Planet = ns.Planet
    payload = dumps([Planet.EARTH, Planet])
    check = """
earth, cls = obj
result = (earth is cls.EARTH, earth.mass, earth.radius, earth.surface_gravity, earth.value,
          cls((3.303e23, 2.4397e6)) is cls.MERCURY, cls.MERCURY.mass)
"""
    assert load_fresh(payload, check) == (
        True, 5.976e24, 6.37814e6, Planet.EARTH.surface_gravity, (5.976e24, 6.37814e6),
        True, 3.303e23)


def test_enum_sent_back_to_defining_process_is_the_original():
    Color = define(COLOR).Color
    back_class = load_fresh(dumps(Color), SEND_BACK)
    back_member = load_fresh(dumps(Color.BLUE), SEND_BACK)
    assert loads(back_class) is Color
    assert loads(back_member) is Color.BLUE
