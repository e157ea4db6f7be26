"""``functools`` descriptors inside classes that travel by value.

``functools.cached_property`` (which holds a lock on 3.9-3.11) and
``functools.singledispatchmethod`` (which holds a cache of weak references) pickle with their
class, and behave in the fresh process: the cached value is stored in the instance after the
first access, and dispatch follows the registrations, annotated or explicit, on builtin and
dynamic classes.
"""
from cloudpickle_ipy.core import dumps
from tests.fresh import define, load_fresh

CIRCLE = """
    from functools import cached_property

    class Circle:
        def __init__(self, r):
            self.r = r
            self.calls = 0

        @cached_property
        def area(self):
            "Computed once."
            self.calls += 1
            return 3 * self.r ** 2
"""


def test_cached_property_caches_in_the_instance_after_load():
    Circle = define(CIRCLE).Circle
    payload = dumps(Circle)
    check = """
c = obj(2)
first, second = c.area, c.area
result = (first, second, c.calls, vars(c).get("area"), obj.area.attrname, obj.area.__doc__)
"""
    assert load_fresh(payload, check) == (12, 12, 1, 12, "area", "Computed once.")


def test_instance_with_cached_value_keeps_it():
    Circle = define(CIRCLE).Circle
    warm, cold = Circle(1), Circle(3)
    assert warm.area == 3
    payload = dumps([warm, cold])
    check = """
warm, cold = obj
cached_before = "area" in vars(cold)
result = (warm.area, warm.calls, cached_before, cold.area, cold.area, cold.calls,
          type(warm) is type(cold))
"""
    assert load_fresh(payload, check) == (3, 1, False, 27, 27, 1, True)


def test_singledispatchmethod_dispatches_after_load():
    ns = define("""
        from functools import singledispatchmethod

        class Shape:
            pass

        class Marker:
            pass

        class Formatter:
            def __init__(self, prefix):
                self.prefix = prefix

            @singledispatchmethod
            def fmt(self, arg):
                return self.prefix + "other"

            @fmt.register
            def _(self, arg: int):
                return self.prefix + f"int {arg}"

            @fmt.register(str)
            def _(self, arg):
                return self.prefix + f"str {arg}"

            @fmt.register
            def _(self, arg: Shape):
                return self.prefix + "shape"

            @fmt.register(Marker)
            def _(self, arg):
                return self.prefix + "marker"
    """)
    f = ns.Formatter("> ")
    assert f.fmt(1) == "> int 1" and f.fmt(ns.Shape()) == "> shape"  # fills the dispatch cache
    payload = dumps([ns.Formatter, ns.Shape, ns.Marker, f])
    check = """
formatter, shape, marker, f = obj
class SubShape(shape):
    pass
g = formatter("# ")
result = [g.fmt(1), g.fmt(True), g.fmt("a"), g.fmt(2.5), g.fmt(shape()), g.fmt(SubShape()),
          g.fmt(marker()), f.fmt(7), f.fmt(shape())]
"""
    assert load_fresh(payload, check) == [
        "# int 1", "# int True", "# str a", "# other", "# shape", "# shape", "# marker",
        "> int 7", "> shape"]
