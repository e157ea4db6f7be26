"""What loading a payload costs depends on what it names and what it calls (issue 13).

Each global a payload names costs the unpickler an import call, and each function of ours it calls
a Python frame, per payload: a ``__main__`` function that uses packages loads with one global
(``builtins.getattr``, through which modules, types and our rebuild functions are reached in calls
the unpickler makes in C), and a function whose state is only attributes with no call of ours
beyond the version check of its code. A global that many functions of one module use travels once.
Reusing a Pickler after ``clear_memo`` starts a payload of its own.
"""
import argparse
import io
import pickle
import pickletools

import cloudpickle_ipy
from tests.fresh import define, load_fresh

TASK = """
    import collections
    import concurrent.futures
    import json
    import os
    import xml.etree.ElementTree

    import numpy as np

    def task(x):
        total = int(np.add(np.arange(4), x).sum())
        path = os.path.join("data", str(x))
        letters = collections.Counter(json.dumps({"x": x, "path": path}))
        root = xml.etree.ElementTree.fromstring("<a>%d</a>" % x)
        return total, path, letters["x"], concurrent.futures.Future.__name__, root.text
"""


def globals_named(payload):
    """The (module, name) pairs of the globals a payload names."""
    found, pushed, memo = set(), [], []
    for opcode, arg, _ in pickletools.genops(payload):
        if opcode.name == "STACK_GLOBAL":
            found.add((pushed[-2], pushed[-1]))
        elif opcode.name == "GLOBAL":
            found.add(tuple(arg.split(" ", 1)))
        elif opcode.name == "MEMOIZE":
            memo.append(pushed[-1])
        elif opcode.name in ("BINGET", "LONG_BINGET"):
            pushed.append(memo[arg])
        else:  # a module or attribute name, or something else pushed
            pushed.append(arg if isinstance(arg, str) else None)
    return found


def test_a_main_function_using_packages_names_one_global():
    task = define(TASK).task
    payload = cloudpickle_ipy.dumps(task)
    assert globals_named(payload) == {("builtins", "getattr")}
    # The submodules reached through package globals are imported on load.
    assert load_fresh(payload, "obj(2)") == task(2)


def test_functions_with_attributes_only_are_rebuilt_without_a_call_of_ours():
    ns = define("""
        SCALE = 3
        fns = [lambda x, k=k: x * SCALE + k for k in range(5)]

        def documented(a: int, *, b=2) -> int:
            '''Adds.'''
            return a + b
        documented.__qualname__ = "renamed"
    """)
    payload = cloudpickle_ipy.dumps([ns.fns, ns.documented])
    assert b"_restore_function" not in payload
    check = ("(obj[0][4](10), obj[1](1), obj[1].__doc__, obj[1].__qualname__, "
             "obj[1].__annotations__ == {'a': int, 'return': int}, obj[1].__kwdefaults__)")
    assert load_fresh(payload, check) == (34, 3, "Adds.", "renamed", True, {"b": 2})


def test_a_global_used_by_many_functions_travels_once():
    ns = define("""
        MARKER = "distinctive-global-value-%d" % 7

        def make(k):
            def f(x):
                return (MARKER, x + k)
            return f

        fns = [make(k) for k in range(50)] + [lambda: MARKER]
    """)
    payload = cloudpickle_ipy.dumps(ns.fns)
    assert payload.count(b"distinctive-global-value-7") == 1
    check = ("(obj[10](1), obj[-1](), len({id(f.__globals__) for f in obj}), "
             "obj[3].__closure__[0].cell_contents)")
    assert load_fresh(payload, check) == (("distinctive-global-value-7", 11),
                                          "distinctive-global-value-7", 1, 3)


def test_a_global_rebound_between_dumps_of_one_pickler_travels_again():
    ns = define("""
        LIMIT = 1
        def f():
            return LIMIT
        def g():
            return LIMIT * 10
    """)
    buffer = io.BytesIO()
    pickler = cloudpickle_ipy.Pickler(buffer)
    pickler.dump(ns.f)
    ns.f.__globals__["LIMIT"] = 2
    pickler.dump(ns.g)
    check = ("import io; u = pickle.Unpickler(io.BytesIO(obj)); f, g = u.load(), u.load(); "
             "result = (f(), g())")
    # Both functions share one globals dict, as they did here: it holds the newest value.
    assert load_fresh(pickle.dumps(buffer.getvalue()), check) == (2, 20)


def test_clear_memo_starts_a_payload_of_its_own():
    ns = define("""
        LIMIT = 5
        def f():
            return LIMIT
        def g():
            return LIMIT + 1
    """)
    buffer = io.BytesIO()
    pickler = cloudpickle_ipy.Pickler(buffer)
    pickler.dump(ns.f)
    first = buffer.getvalue()
    pickler.clear_memo()
    pickler.dump(ns.g)
    second = buffer.getvalue()[len(first):]
    assert load_fresh(first, "obj()") == 5
    assert load_fresh(second, "obj()") == 6


def test_protocol_minus_one_is_the_highest():
    f = define("f = lambda x: x + 1").f
    data = {"values": list(range(10)), "namespace": argparse.Namespace(a=1)}
    assert cloudpickle_ipy.dumps(data, protocol=-1) == pickle.dumps(data, protocol=-1)
    assert cloudpickle_ipy.dumps(f, protocol=-1) == cloudpickle_ipy.dumps(
        f, protocol=pickle.HIGHEST_PROTOCOL)
