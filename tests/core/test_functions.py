"""Functions travel by value: lambdas, ``__main__`` functions and closures, functions nested in
an importable module's function, recursion through cells and globals, empty and shared cells, and
the function metadata users rely on (defaults, keyword-only / positional-only arguments,
annotations, docstring, ``__dict__``, names, ``__module__``, ``functools.wraps``).

Every payload is loaded in a fresh interpreter where the defining code does not exist.
"""
import importlib
import pickle
import sys
import textwrap

import pytest

import cloudpickle_ipy
from tests.fresh import define, load_fresh

PROTOCOLS = list(range(2, pickle.HIGHEST_PROTOCOL + 1))


@pytest.fixture
def importable_module(tmp_path, monkeypatch):
    """Write a module file into ``tmp_path`` and import it here only (never in the loader)."""
    names = []

    def make(name, source):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        monkeypatch.syspath_prepend(str(tmp_path))
        names.append(name)
        return importlib.import_module(name)

    yield make
    for name in names:
        sys.modules.pop(name, None)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_lambda_travels_by_value(protocol):
    f = define("f = lambda x, y=3: x * y + 1").f
    payload = cloudpickle_ipy.dumps(f, protocol=protocol)
    assert load_fresh(payload, "(obj(2), obj(2, 5), obj.__name__)") == (f(2), f(2, 5), "<lambda>")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_main_function_travels_by_value(protocol):
    ns = define("""
        def shout(word, times=2):
            return (word.upper() + "!") * times
    """)
    payload = cloudpickle_ipy.dumps(ns.shout, protocol=protocol)
    assert load_fresh(payload, "(obj('hi'), obj('yo', 3), obj.__module__)") == (
        ns.shout("hi"), ns.shout("yo", 3), "__main__")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_main_closure_keeps_its_cell_value(protocol):
    ns = define("""
        def make_adder(n):
            def add(x):
                return x + n
            return add
        add5 = make_adder(5)
    """)
    payload = cloudpickle_ipy.dumps(ns.add5, protocol=protocol)
    assert load_fresh(payload, "(obj(1), obj.__closure__[0].cell_contents, obj.__code__.co_freevars)"
                      ) == (ns.add5(1), 5, ("n",))


def test_function_nested_in_importable_module_travels_by_value(importable_module):
    mod = importable_module("cpipy_nested_helper", """
        SCALE = 10

        def outer(k):
            def inner(x):
                return x * k * SCALE
            return inner
    """)
    inner = mod.outer(3)
    assert inner.__qualname__ == "outer.<locals>.inner"
    payload = cloudpickle_ipy.dumps(inner)
    # The loader cannot import cpipy_nested_helper: the function must carry its code and globals.
    check = "(obj(2), obj.__module__, obj.__qualname__, 'cpipy_nested_helper' in sys.modules)"
    assert load_fresh(payload, check) == (inner(2), "cpipy_nested_helper",
                                          "outer.<locals>.inner", False)


def test_closure_calling_itself_through_its_cell():
    ns = define("""
        def make_fact():
            def fact(n):
                return 1 if n <= 1 else n * fact(n - 1)
            return fact
        fact = make_fact()
    """)
    payload = cloudpickle_ipy.dumps(ns.fact)
    assert load_fresh(payload, "(obj(6), obj.__closure__[0].cell_contents is obj)") == (
        ns.fact(6), True)


def test_mutually_recursive_closures():
    ns = define("""
        def make_parity():
            def is_even(n):
                return True if n == 0 else is_odd(n - 1)
            def is_odd(n):
                return False if n == 0 else is_even(n - 1)
            return is_even, is_odd
        is_even, is_odd = make_parity()
    """)
    payload = cloudpickle_ipy.dumps((ns.is_even, ns.is_odd))
    check = ("(obj[0](10), obj[0](7), obj[1](7), "
             "obj[0].__closure__[0].cell_contents is obj[1], "
             "obj[1].__closure__[0].cell_contents is obj[0])")
    assert load_fresh(payload, check) == (ns.is_even(10), ns.is_even(7), ns.is_odd(7), True, True)


def test_nested_closures_three_levels_deep():
    ns = define("""
        def level1(a):
            def level2(b):
                def level3(c):
                    return a * 100 + b * 10 + c
                return level3
            return level2
        f = level1(1)(2)
    """)
    payload = cloudpickle_ipy.dumps(ns.f)
    assert load_fresh(payload, "obj(3)") == ns.f(3)


def test_module_level_recursive_function_through_globals():
    ns = define("""
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
    """)
    payload = cloudpickle_ipy.dumps(ns.fib)
    assert load_fresh(payload, "(obj(15), obj.__globals__['fib'] is obj)") == (ns.fib(15), True)


def test_empty_cell_still_raises_name_error():
    ns = define("""
        def make():
            def f():
                return never_assigned
            if False:
                never_assigned = 1
            return f
        f = make()
    """)
    with pytest.raises(NameError):
        ns.f()
    payload = cloudpickle_ipy.dumps(ns.f)
    check = textwrap.dedent("""
        try:
            obj()
        except NameError:
            called = "NameError"
        else:
            called = "no error"
        try:
            obj.__closure__[0].cell_contents
        except ValueError:
            cell = "empty"
        else:
            cell = "filled"
        result = (called, cell, len(obj.__closure__))
    """)
    assert load_fresh(payload, check) == ("NameError", "empty", 1)


def test_function_without_free_variables_keeps_closure_none():
    ns = define("""
        def plain(x):
            return x + 1
    """)
    assert ns.plain.__closure__ is None
    payload = cloudpickle_ipy.dumps(ns.plain)
    assert load_fresh(payload, "(obj(1), obj.__closure__ is None)") == (2, True)


def test_closures_sharing_a_cell_still_share_it():
    ns = define("""
        def make_counter():
            count = 0
            def inc():
                nonlocal count
                count += 1
            def get():
                return count
            return inc, get
        inc, get = make_counter()
        inc()
    """)
    payload = cloudpickle_ipy.dumps([ns.inc, ns.get])
    check = ("obj[0](); obj[0](); "
             "result = (obj[1](), obj[0].__closure__[0] is obj[1].__closure__[0])")
    assert load_fresh(payload, check) == (ns.get() + 2, True)


def test_defaults_keyword_only_and_positional_only_arguments():
    ns = define("""
        def f(a, b=2, /, c=3, *, d=4, e=5):
            return (a, b, c, d, e)
    """)
    payload = cloudpickle_ipy.dumps(ns.f)
    check = textwrap.dedent("""
        try:
            obj(a=1)
        except TypeError:
            posonly = "enforced"
        else:
            posonly = "ignored"
        result = (obj(1), obj(1, 9, c=8, d=7, e=6), obj.__defaults__, obj.__kwdefaults__,
                  obj.__code__.co_posonlyargcount, obj.__code__.co_kwonlyargcount, posonly)
    """)
    assert load_fresh(payload, check) == (
        ns.f(1), ns.f(1, 9, c=8, d=7, e=6), (2, 3), {"d": 4, "e": 5}, 2, 2, "enforced")


def test_kwdefaults_changed_after_definition_are_kept():
    ns = define("""
        def f(*, scale=1):
            return 10 * scale
        f.__kwdefaults__ = {"scale": 7}
        f.__defaults__ = None
    """)
    payload = cloudpickle_ipy.dumps(ns.f)
    assert load_fresh(payload, "(obj(), obj.__kwdefaults__)") == (ns.f(), {"scale": 7})


def test_annotations_doc_dict_and_names_are_preserved():
    ns = define("""
        import collections

        def describe(x: int, y: "list[str]" = None) -> collections.OrderedDict:
            '''Describe x.'''
            return x * 2

        describe.tag = {"owner": "alice", "version": [1, 2]}
        describe.counter = 3
    """)
    f = ns.describe
    payload = cloudpickle_ipy.dumps(f)
    check = ("(obj(4), obj.__annotations__ == {'x': int, 'y': 'list[str]', "
             "'return': __import__('collections').OrderedDict}, obj.__doc__, obj.tag, obj.counter,"
             " obj.__name__, obj.__qualname__, obj.__module__)")
    assert load_fresh(payload, check) == (f(4), True, f.__doc__, f.tag, f.counter,
                                          "describe", "describe", "__main__")


def test_renamed_function_keeps_new_name_and_qualname():
    ns = define("""
        def make():
            def helper(x):
                return -x
            return helper
        f = make()
        f.__name__ = "negate"
        f.__qualname__ = "Tools.negate"
    """)
    payload = cloudpickle_ipy.dumps(ns.f)
    assert load_fresh(payload, "(obj(3), obj.__name__, obj.__qualname__)") == (
        -3, "negate", "Tools.negate")


def test_closure_qualname_and_module_preserved():
    ns = define("""
        def make_adder(n):
            def add(x):
                return x + n
            return add
        add1 = make_adder(1)
    """)
    payload = cloudpickle_ipy.dumps(ns.add1)
    assert load_fresh(payload, "(obj.__name__, obj.__qualname__, obj.__module__)") == (
        "add", "make_adder.<locals>.add", "__main__")


def test_functools_wraps_metadata_preserved():
    ns = define("""
        import functools

        def deco(fn):
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                return ("wrapped", fn(*args, **kwargs))
            return wrapper

        @deco
        def target(x):
            '''Double x.'''
            return x * 2
    """)
    f = ns.target
    payload = cloudpickle_ipy.dumps(f)
    check = ("(obj(4), obj.__name__, obj.__qualname__, obj.__doc__, obj.__wrapped__(4), "
             "obj.__wrapped__ is obj.__closure__[0].cell_contents, "
             "str(__import__('inspect').signature(obj)))")
    assert load_fresh(payload, check) == (f(4), "target", "target", "Double x.",
                                          f.__wrapped__(4), True, "(x)")
