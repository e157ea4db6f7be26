"""A by-value module that a function only reaches travels with what the function uses (issue 12,
item 14): a function of a package registered by value that calls ``util.double`` pickles even when
the sibling module ``util`` also holds a lock, a socket or an open file it never touches.

The package is written to ``tmp_path`` and imported here only: the fresh process that loads the
payload cannot import it.
"""
import importlib
import sys
import textwrap

import pytest

import cloudpickle_ipy.core as cloudpickle
from tests.fresh import load_fresh

FILES = {
    "shop/__init__.py": "VERSION = '1.0'\n",
    "shop/util.py": """
        import socket
        import threading

        LOCK = threading.Lock()
        CONNECTION = socket.socket()
        LOG = open(__file__ + ".log", "w")
        PENDING = (n for n in range(3))
        FACTOR = 2

        def double(x):
            return x * FACTOR

        def describe(x):
            return f"{double(x)} via {__name__}"

        def locked():
            with LOCK:
                return "locked"
    """,
    "shop/prices/__init__.py": "",
    "shop/prices/rules.py": """
        from shop import util

        DISCOUNT = 0.5

        def discounted(x):
            return util.double(x) * DISCOUNT
    """,
    "shop/main.py": """
        import shop.prices.rules
        import shop.util
        from shop import util

        def total(x):
            return util.double(x) + 1

        def through_package(x):
            return shop.util.double(x) * 10, shop.VERSION

        def deep(x):
            return shop.prices.rules.discounted(x)

        def describe(x):
            return util.describe(x)

        def uses_lock():
            return util.locked()

        def make_closure():
            helpers = util
            def closure(x):
                return helpers.double(x) - 1
            return closure
    """,
}

NOT_IMPORTABLE = "__import__('importlib.util').util.find_spec('shop') is None"
PUBLIC = "sorted(k for k in vars({}) if not k.startswith('__'))"


@pytest.fixture
def shop(tmp_path):
    for name in [m for m in sys.modules if m.split(".")[0] == "shop"]:
        del sys.modules[name]
    for rel, text in FILES.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    main = importlib.import_module("shop.main")
    cloudpickle.register_pickle_by_value(sys.modules["shop"])
    try:
        yield main
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules["shop"])
        sys.modules["shop.util"].LOG.close()
        sys.modules["shop.util"].CONNECTION.close()
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.split(".")[0] == "shop"]:
            del sys.modules[name]


def test_function_reaching_a_sibling_module_ships_only_what_it_uses(shop):
    payload = cloudpickle.dumps(shop.total)
    util = "obj.__globals__['util']"
    check = f"[obj(20), {PUBLIC.format(util)}, {util}.__name__, {NOT_IMPORTABLE}]"
    assert load_fresh(payload, check) == [41, ["FACTOR", "double"], "shop.util", True]


def test_functions_of_one_payload_share_one_module_with_what_each_uses(shop):
    payload = cloudpickle.dumps([shop.total, shop.through_package, shop.describe, shop.deep,
                                 shop.make_closure()])
    check = f"""
total, through_package, describe, deep, closure = obj
util = total.__globals__["util"]
result = [total(1), through_package(1), describe(4), deep(8), closure(5),
          through_package.__globals__["shop"].util is util, {PUBLIC.format("util")},
          util.double.__globals__ is vars(util), {NOT_IMPORTABLE}]
"""
    assert load_fresh(payload, check) == [
        3, (20, "1.0"), "8 via shop.util", 8.0, 9, True, ["FACTOR", "describe", "double"], True,
        True]


def test_a_function_that_uses_the_unpicklable_global_still_says_where_it_is(shop):
    with pytest.raises(TypeError) as info:
        cloudpickle.dumps(shop.uses_lock)
    assert "lock" in str(info.value) and "LOCK" in str(info.value)


def test_a_module_pickled_as_such_still_travels_whole(shop):
    rules = sys.modules["shop.prices.rules"]
    payload = cloudpickle.dumps([rules.discounted, rules.util.FACTOR])
    assert load_fresh(payload, "obj[0](4)") == 4.0
    # Asked for as an object, a module travels with all its attributes, the lock included.
    with pytest.raises(TypeError, match=r"found at obj\.util\.LOCK"):
        cloudpickle.dumps(rules)
