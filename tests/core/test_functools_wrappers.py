"""Functions decorated in ``__main__`` by ``functools`` (issue 12, items 11 and 12): ``lru_cache`` and
``cache`` wrappers travel by value and arrive with an empty cache and their parameters;
``singledispatch`` functions travel with every registered implementation. Importable ones still
travel by reference.
"""
import fnmatch
import sys
import textwrap

import cloudpickle_ipy.core as cloudpickle
from tests.fresh import define, load_fresh

CACHED = """
    import functools

    CALLS = []

    @functools.lru_cache(maxsize=16, typed=True)
    def fib(n):
        CALLS.append(n)
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    @functools.lru_cache
    def square(x):
        "Square, cached."
        return x * x

    square.unit = "m2"

    if hasattr(functools, "cache"):
        @functools.cache
        def unbounded(x):
            return [x]
    else:  # Python 3.8 had no functools.cache
        unbounded = functools.lru_cache(maxsize=None)(lambda x: [x])

    class Grid:
        def __init__(self, n):
            self.n = n

        @functools.lru_cache(maxsize=4)
        def cells(self, k):
            return self.n * k
"""


def test_cached_functions_arrive_with_an_empty_cache_and_their_parameters():
    ns = define(CACHED)
    ns.fib(20), ns.square(3)  # filled here: the caches do not travel
    payload = cloudpickle.dumps([ns.fib, ns.square, ns.unbounded, ns.Grid(3)])
    check = """
fib, square, unbounded, grid = obj
empty = [f.cache_info().currsize for f in (fib, square, unbounded)]
values = [fib(30), fib(3.0), square(4), square(4), unbounded(1) is unbounded(1), grid.cells(2)]
result = [empty, values, fib.cache_parameters(), square.cache_parameters(),
          unbounded.cache_parameters()["maxsize"], fib.cache_info().misses,
          square.cache_info().hits, len(fib.__wrapped__.__globals__["CALLS"]), square.__doc__,
          square.unit, square.__wrapped__(5), type(grid).cells.cache_info().currsize]
fib.cache_clear()
result.append(fib.cache_info().currsize)
"""
    assert load_fresh(payload, check) == [
        [0, 0, 0], [832040, 2.0, 16, 16, True, 6],
        {"maxsize": 16, "typed": True}, {"maxsize": 128, "typed": False}, None, 35, 1,
        21 + 35,  # CALLS travels with the 21 calls made here
        "Square, cached.", "m2", 25, 1, 0]


DISPATCH = """
    import functools
    from numbers import Number

    class Celsius:
        def __init__(self, degrees):
            self.degrees = degrees

    @functools.singledispatch
    def show(value):
        "Describe a value."
        return f"object {value!r}"

    @show.register
    def _(value: int):
        return f"int {value}"

    @show.register(list)
    @show.register(tuple)
    def _(value):
        return "[" + ", ".join(show(item) for item in value) + "]"

    @show.register
    def _(value: Celsius):
        return f"{value.degrees} C"

    @show.register(Number)
    def _(value):
        return f"number {value}"

    show.version = 2
"""


def test_singledispatch_function_travels_with_its_implementations():
    ns = define(DISPATCH)
    payload = cloudpickle.dumps(ns.show)
    check = """
import fractions
show = obj
celsius = [k for k in show.registry if getattr(k, "__name__", "") == "Celsius"][0]
before = show(fractions.Fraction(1, 2))

@show.register(str)
def _(value):
    return f"text {value}"

result = [show(1), show("x"), show(1.5), show([1, (True, celsius(20))]), before, show.version,
          show.__doc__, show.__name__, len(show.registry), show.dispatch(bool).__name__]
"""
    assert load_fresh(payload, check) == [
        "int 1", "text x", "number 1.5", "[int 1, [int True, 20 C]]", "number 1/2", 2,
        "Describe a value.", "show", 7, "_"]


def test_importable_cached_and_dispatching_functions_travel_by_reference(tmp_path):
    (tmp_path / "helpers_mod.py").write_text(textwrap.dedent(CACHED + DISPATCH))
    sys.path.insert(0, str(tmp_path))
    try:
        import helpers_mod
        payload = cloudpickle.dumps([helpers_mod.fib, helpers_mod.show, fnmatch._compile_pattern])
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("helpers_mod", None)
    check = """
import fnmatch, helpers_mod
result = [obj[0] is helpers_mod.fib, obj[1] is helpers_mod.show,
          obj[2] is fnmatch._compile_pattern]
"""
    assert load_fresh(payload, check, sys_path=[tmp_path]) == [True, True, True]
