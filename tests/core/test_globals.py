"""Globals of by-value functions: only the globals the code (and its nested code) really reads are
shipped, functions pickled together share one globals dict, builtins resolve on the loading side,
module-level imports of submodules work where the submodule is not imported yet, and loading never
touches the loading process's own ``__main__``.
"""
import pickle
import textwrap

import pytest

import cloudpickle_ipy
from tests.fresh import define, load_fresh

PROTOCOLS = list(range(2, pickle.HIGHEST_PROTOCOL + 1))

SHIPPED_NAMES = "sorted(k for k in obj.__globals__ if not k.startswith('__'))"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unused_unpicklable_and_large_globals_are_not_shipped(protocol):
    ns = define("""
        import threading
        lock = threading.Lock()
        big = b"\\x01" * 2_000_000
        used = 40

        def f(x):
            return x + used
    """)
    with pytest.raises(Exception):
        pickle.dumps(ns.lock)
    payload = cloudpickle_ipy.dumps(ns.f, protocol=protocol)
    assert len(payload) < 10_000
    assert load_fresh(payload, f"(obj(2), {SHIPPED_NAMES})") == (ns.f(2), ["used"])


def test_attribute_named_like_an_unpicklable_global_does_not_ship_it():
    ns = define("""
        import threading
        data = threading.Lock()
        acquire = threading.Lock()

        def f(o):
            o.acquire = o.data * 2
            return o.acquire
    """)
    payload = cloudpickle_ipy.dumps(ns.f)
    check = f"import types; result = (obj(types.SimpleNamespace(data=21)), {SHIPPED_NAMES})"
    assert load_fresh(payload, check) == (42, [])


def test_globals_used_only_by_nested_code_are_shipped():
    ns = define("""
        SCALE = 7
        OFFSET = 100
        UNUSED = object()

        def f(xs):
            g = lambda x: x * SCALE
            def h(y):
                return y + OFFSET
            return [h(g(x)) for x in xs]
    """)
    payload = cloudpickle_ipy.dumps(ns.f)
    assert load_fresh(payload, f"(obj([1, 2]), {SHIPPED_NAMES})") == (
        ns.f([1, 2]), ["OFFSET", "SCALE"])


def test_functions_pickled_together_share_their_globals():
    ns = define("""
        counter = 0

        def inc():
            global counter
            counter += 1

        def get():
            return counter
    """)
    ns.inc()
    payload = cloudpickle_ipy.dumps([ns.inc, ns.get])
    check = ("obj[0](); obj[0](); "
             "result = (obj[1](), obj[0].__globals__ is obj[1].__globals__)")
    assert load_fresh(payload, check) == (3, True)


def test_builtins_resolve_in_the_loading_process():
    ns = define("""
        def f(xs):
            print("items:", len(xs))
            return sorted(xs), len(xs), isinstance(xs, list), max(xs)
    """)
    payload = cloudpickle_ipy.dumps(ns.f)
    check = textwrap.dedent("""
        import builtins, contextlib, io
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            value = obj([3, 1, 2])
        b = obj.__globals__.get("__builtins__", builtins)
        result = (value, out.getvalue(), b is builtins or b is builtins.__dict__)
    """)
    assert load_fresh(payload, check) == (ns.f([3, 1, 2]), "items: 3\n", True)


def test_global_shadowing_a_builtin_is_shipped():
    ns = define("""
        def len(x):
            return "shadowed"

        def f(xs):
            return len(xs)
    """)
    payload = cloudpickle_ipy.dumps(ns.f)
    assert load_fresh(payload, "obj([1, 2])") == "shadowed"


def test_submodules_imported_at_module_level_are_available_in_fresh_process():
    ns = define("""
        import concurrent.futures
        import xml.dom.minidom

        def run(n):
            with concurrent.futures.ThreadPoolExecutor(2) as ex:
                return list(ex.map(abs, range(-n, 0)))

        def root_tag(text):
            return xml.dom.minidom.parseString(text).documentElement.tagName
    """)
    # Precondition: an interpreter that imported the package does not have these submodules yet.
    assert load_fresh(pickle.dumps(None), "import cloudpickle_ipy; result = ("
                      "'concurrent.futures' in sys.modules, 'xml.dom' in sys.modules)"
                      ) == (False, False)
    payload = cloudpickle_ipy.dumps((ns.run, ns.root_tag))
    assert load_fresh(payload, "(obj[0](3), obj[1]('<root><a/></root>'))") == (
        ns.run(3), "root")


def test_submodule_global_used_by_single_function():
    ns = define("""
        import xml.dom.minidom

        def root_tag(text):
            return xml.dom.minidom.parseString(text).documentElement.tagName
    """)
    payload = cloudpickle_ipy.dumps(ns.root_tag)
    assert load_fresh(payload, "obj('<doc/>')") == "doc"


def test_loading_never_modifies_the_loaders_main_module():
    ns = define("""
        x = "sender"
        cpipy_shipped_value = 41

        def cpipy_report_origin():
            return x, cpipy_shipped_value + 1
    """)
    payload = cloudpickle_ipy.dumps(ns.cpipy_report_origin)
    check = textwrap.dedent(f"""
        import __main__
        __main__.x = "loader"
        again = pickle.loads({payload!r})
        main_vars = vars(__main__)
        result = (obj(), again(), __main__.x,
                  "cpipy_shipped_value" in main_vars, "cpipy_report_origin" in main_vars,
                  obj.__globals__ is main_vars, again.__globals__ is main_vars)
    """)
    assert load_fresh(payload, check) == (
        ("sender", 42), ("sender", 42), "loader", False, False, False, False)
