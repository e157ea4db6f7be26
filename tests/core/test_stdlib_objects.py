"""Standard-library objects that plain pickle refuses or gets wrong: mapping proxies, dict views,
loggers, weak sets, memoryviews, files and the standard streams, descriptors, the singleton types,
partials and the operator callables. Each payload is loaded in a fresh interpreter.
"""
import collections
import ctypes
import fractions
import functools
import logging
import operator
import pickle
import types
import weakref

import pytest

import cloudpickle_ipy
from tests.fresh import define, load_fresh, run_script

PROTOCOLS = list(range(2, pickle.HIGHEST_PROTOCOL + 1))


# --- mapping proxies ------------------------------------------------------------------------------

def test_mappingproxy_travels_with_its_content():
    proxy = types.MappingProxyType({"a": 1, "b": [2, 3]})
    payload = cloudpickle_ipy.dumps(proxy)
    assert load_fresh(payload, """if True:
        import types
        try:
            obj["c"] = 4
            writable = True
        except TypeError:
            writable = False
        result = (type(obj) is types.MappingProxyType, dict(obj), writable)
    """) == (True, {"a": 1, "b": [2, 3]}, False)


def test_mappingproxy_stays_a_live_view_of_its_mapping():
    # The read-only view of an object's own dict: after loading it still shows that dict.
    ns = define("""
        import types

        class Registry:
            def __init__(self):
                self._items = {"first": 1}
                self.items = types.MappingProxyType(self._items)

            def add(self, key, value):
                self._items[key] = value
    """)
    payload = cloudpickle_ipy.dumps(ns.Registry())
    assert load_fresh(payload, "obj.add('second', 2) or dict(obj.items)") == {"first": 1,
                                                                             "second": 2}


def test_mappingproxy_inside_its_own_mapping():
    data = {"n": 1}
    data["self"] = types.MappingProxyType(data)
    payload = cloudpickle_ipy.dumps(data["self"])
    assert load_fresh(payload, "(obj['n'], obj['self']['self']['n'], obj['self'] is obj)") == (
        1, 1, True)


# --- dict views -----------------------------------------------------------------------------------

@pytest.mark.parametrize("mapping", [dict, collections.OrderedDict])
@pytest.mark.parametrize("kind", ["keys", "values", "items"])
def test_dict_view_loads_as_the_same_kind_of_view(mapping, kind):
    view = getattr(mapping([("b", 1), ("a", [2]), ("c", None)]), kind)()
    payload = cloudpickle_ipy.dumps(view)
    check = f"""if True:
        import collections
        result = (type(obj) is type(collections.{mapping.__qualname__}().{kind}()),
                  list(obj), len(obj))
    """ if mapping is collections.OrderedDict else f"""if True:
        result = (type(obj) is type({{}}.{kind}()), list(obj), len(obj))
    """
    assert load_fresh(payload, check) == (True, list(view), 3)


def test_keys_view_leaves_the_values_behind():
    view = {f"k{i}": b"x" * 100_000 for i in range(5)}.keys()
    payload = cloudpickle_ipy.dumps(view)
    assert len(payload) < 1000
    assert load_fresh(payload, "sorted(obj)") == ["k0", "k1", "k2", "k3", "k4"]


def test_values_view_leaves_the_keys_behind():
    view = {"k" * 100_000 + str(i): i for i in range(5)}.values()
    payload = cloudpickle_ipy.dumps(view)
    assert len(payload) < 1000
    assert load_fresh(payload, "list(obj)") == [0, 1, 2, 3, 4]


# --- loggers --------------------------------------------------------------------------------------

def test_loggers_load_as_the_loading_process_loggers():
    payload = cloudpickle_ipy.dumps(
        [logging.getLogger("app.db"), logging.getLogger(), logging.root])
    assert load_fresh(payload, """if True:
        import logging
        result = (obj[0] is logging.getLogger("app.db"), obj[1] is logging.getLogger(),
                  obj[2] is logging.root)
    """) == (True, True, True)


def test_function_using_a_logger_logs_through_the_loading_process_logger():
    f = define("""
        import logging
        log = logging.getLogger("jobs")
        def f():
            log.warning("ran")
            return log
    """).f
    payload = cloudpickle_ipy.dumps(f)
    assert load_fresh(payload, """if True:
        import io, logging
        stream = io.StringIO()
        logging.getLogger("jobs").addHandler(logging.StreamHandler(stream))
        result = (obj() is logging.getLogger("jobs"), stream.getvalue())
    """) == (True, "ran\n")


# --- weak sets ------------------------------------------------------------------------------------

def test_weakset_live_members_travel():
    ns = define("""
        import weakref

        class Tag:
            def __init__(self, name, registry):
                self.name = name
                self.registry = registry  # refers back to the set
                registry.add(self)

        registry = weakref.WeakSet()
        tags = [Tag("a", registry), Tag("b", registry)]
    """)
    payload = cloudpickle_ipy.dumps((ns.registry, ns.tags))
    assert load_fresh(payload, """if True:
        import weakref
        registry, tags = obj
        result = (type(registry) is weakref.WeakSet, sorted(t.name for t in registry),
                  all(t in registry and t.registry is registry for t in tags))
    """) == (True, ["a", "b"], True)


def test_weakset_of_by_value_functions():
    fs = define("f = lambda: 1\ng = lambda: 2")
    members = [fs.f, fs.g]
    payload = cloudpickle_ipy.dumps([weakref.WeakSet(members), members])
    assert load_fresh(payload, "sorted(m() for m in obj[0]), len(obj[0])") == ([1, 2], 2)


# --- memoryviews ----------------------------------------------------------------------------------

_VIEWS = {
    "bytes": lambda: memoryview(b"hello world"),
    "bytearray": lambda: memoryview(bytearray(b"hello world")),
    "sliced": lambda: memoryview(bytearray(b"hello world"))[2:7],
    "strided": lambda: memoryview(bytearray(range(20)))[::3],
    "reversed-readonly": lambda: memoryview(bytes(range(10)))[::-2],
    "cast-int": lambda: memoryview(bytearray(range(16))).cast("i"),
    "cast-double-strided": lambda: memoryview(bytearray(64)).cast("d")[1::2],
    "2d": lambda: memoryview(bytearray(range(12))).cast("B", [3, 4]),
    "2d-strided": lambda: memoryview(bytearray(range(24))).cast("B", [4, 6])[::2],
    "2d-int": lambda: memoryview(bytes(range(24))).cast("h", [2, 6]),
    "0d": lambda: memoryview(bytes([7, 0, 0, 0])).cast("i", []),
    "char": lambda: memoryview(b"abc").cast("c"),
}


@pytest.mark.parametrize("name", list(_VIEWS))
def test_memoryview_keeps_contents_format_shape_and_readonly(name):
    view = _VIEWS[name]()
    payload = cloudpickle_ipy.dumps(view)
    assert load_fresh(payload, """if True:
        result = (type(obj) is memoryview, obj.tolist(), obj.tobytes(), obj.format, obj.shape,
                  obj.readonly, obj.itemsize)
    """) == (True, view.tolist(), view.tobytes(), view.format, view.shape, view.readonly,
             view.itemsize)


def test_writable_memoryview_loads_writable():
    view = memoryview(bytearray(range(8))).cast("B", [2, 4])
    payload = cloudpickle_ipy.dumps(view)
    assert load_fresh(payload, "obj.__setitem__((1, 2), 99) or obj.tolist()") == [
        [0, 1, 2, 3], [4, 5, 99, 7]]


def test_released_or_unrebuildable_memoryview_is_refused():
    released = memoryview(b"abc")
    released.release()
    with pytest.raises(pickle.PicklingError, match="released"):
        cloudpickle_ipy.dumps(released)
    # ctypes exports explicit byte-order formats, which memoryview.cast cannot rebuild
    with pytest.raises(pickle.PicklingError, match="memoryview.cast"):
        cloudpickle_ipy.dumps(memoryview(ctypes.c_int(5)))


# --- files ----------------------------------------------------------------------------------------

def test_standard_output_and_error_travel_by_reference():
    out = run_script("""
        import sys
        import cloudpickle_ipy
        sys.stdout.write(cloudpickle_ipy.dumps([sys.stdout, sys.stderr, sys.__stdout__]).hex())
    """)
    payload = bytes.fromhex(out.decode())
    assert load_fresh(payload, "[obj[0] is sys.stdout, obj[1] is sys.stderr, "
                               "obj[2] is sys.__stdout__]") == [True, True, True]


def test_stdin_is_refused_with_the_reason():
    out = run_script("""
        import pickle, sys
        import cloudpickle_ipy
        try:
            cloudpickle_ipy.dumps(sys.stdin)
        except pickle.PicklingError as e:
            print(e)
    """)
    assert out.decode().startswith("Cannot pickle standard input")


@pytest.mark.parametrize("mode, options", [
    ("r", {"encoding": "utf-8"}), ("r+", {"encoding": "utf-8"}), ("rb", {}), ("r+b", {}),
    ("rb", {"buffering": 0}),
])
def test_readable_file_travels_by_content_and_position(tmp_path, mode, options):
    path = tmp_path / "data.txt"
    path.write_bytes("first line\nsecond ligne é\nthird line\n".encode())
    with open(path, mode, **options) as f:
        f.readline()
        position = f.tell()
        payload = cloudpickle_ipy.dumps(f)
        assert f.tell() == position  # pickling did not move the original
        rest = f.read()
    expected_content = path.read_bytes() if "b" in mode else path.read_text(encoding="utf-8")
    assert load_fresh(payload, """if True:
        rest = obj.read()
        obj.seek(0)
        result = (rest, obj.read(), obj.name)
    """) == (rest, expected_content, str(path))


def test_closed_and_write_only_files_are_refused_with_the_reason(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("content")
    with open(path) as f:
        pass
    with pytest.raises(pickle.PicklingError, match="closed"):
        cloudpickle_ipy.dumps(f)
    with open(path, "a") as f, pytest.raises(pickle.PicklingError, match="opened for reading"):
        cloudpickle_ipy.dumps(f)


# --- descriptors ----------------------------------------------------------------------------------

def test_builtin_descriptors_load_as_the_same_objects():
    descriptors = [type.__dict__["__name__"], str.upper, dict.__dict__["fromkeys"],
                   object.__dict__["__init__"], fractions.Fraction.__dict__["_numerator"],
                   slice.__dict__["start"]]
    payload = cloudpickle_ipy.dumps(descriptors)
    assert load_fresh(payload, """if True:
        import fractions
        expected = [type.__dict__["__name__"], str.upper, dict.__dict__["fromkeys"],
                    object.__dict__["__init__"], fractions.Fraction.__dict__["_numerator"],
                    slice.__dict__["start"]]
        result = ([a is b for a, b in zip(obj, expected)], obj[0].__get__(int),
                  obj[2].__get__(None, dict)("ab"), obj[4].__get__(fractions.Fraction(3, 4)))
    """) == ([True] * 6, "int", {"a": None, "b": None}, 3)


def test_slot_descriptor_of_a_main_class_belongs_to_the_loaded_class():
    Point = define("""
        class Point:
            __slots__ = ("x", "__y", "__name__")
    """).Point
    payload = cloudpickle_ipy.dumps(
        (Point, vars(Point)["x"], vars(Point)["_Point__y"], vars(Point)["__name__"]))
    assert load_fresh(payload, """if True:
        Point, x, y, name = obj
        p = Point()
        x.__set__(p, 5)
        y.__set__(p, 6)
        name.__set__(p, "origin")
        result = (x is vars(Point)["x"], y is vars(Point)["_Point__y"],
                  name is vars(Point)["__name__"], p.x, p._Point__y, p.__name__)
    """) == (True, True, True, 5, 6, "origin")


# --- singleton types, partials, operator callables ------------------------------------------------

def test_singleton_types_load_as_themselves():
    payload = cloudpickle_ipy.dumps([type(None), type(Ellipsis), type(NotImplemented)])
    assert load_fresh(payload, "[obj[0] is type(None), obj[1] is type(Ellipsis), "
                               "obj[2] is type(NotImplemented), obj[0]() is None]") == [
        True, True, True, True]


def test_partials_of_a_lambda_and_of_a_builtin():
    scale = define("scale = lambda x, factor=1, offset=0: x * factor + offset").scale
    payload = cloudpickle_ipy.dumps([functools.partial(scale, factor=3),
                                     functools.partial(scale, 2, offset=1),
                                     functools.partial(max, 5)])
    assert load_fresh(payload, """if True:
        import functools
        result = ([type(p) is functools.partial for p in obj], obj[0](2), obj[1](factor=10),
                  obj[2](1), obj[2](9), obj[0].func.__name__)
    """) == ([True] * 3, 6, 21, 5, 9, "<lambda>")


def test_operator_getters_and_methodcaller():
    payload = cloudpickle_ipy.dumps([operator.itemgetter(1), operator.itemgetter("a", "b"),
                                     operator.attrgetter("real"), operator.attrgetter("f.y"),
                                     operator.methodcaller("split", ",", maxsplit=1)])
    assert load_fresh(payload, """if True:
        import types
        ns = types.SimpleNamespace(f=types.SimpleNamespace(y=7))
        result = (obj[0]("xyz"), obj[1]({"a": 1, "b": 2}), obj[2](3 + 4j), obj[3](ns),
                  obj[4]("a,b,c"))
    """) == ("y", (1, 2), 3.0, 7, ["a", "b,c"])


# --- every protocol -------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_protocol(protocol):
    members = [define("f = lambda: 1").f]
    payload = cloudpickle_ipy.dumps(
        [types.MappingProxyType({"a": 1}), {"k": 1}.keys(), collections.OrderedDict(a=2).items(),
         weakref.WeakSet(members), members, memoryview(bytearray(range(8))).cast("h")[::2],
         type.__dict__["__name__"], dict.__dict__["fromkeys"]], protocol=protocol)
    assert load_fresh(payload, """if True:
        proxy, keys, items, weakset, members, view, getset, classmethod = obj
        result = (dict(proxy), list(keys), list(items), list(weakset) == members,
                  view.tolist(), view.readonly, getset is type.__dict__["__name__"],
                  classmethod is dict.__dict__["fromkeys"])
    """) == ({"a": 1}, ["k"], [("a", 2)], True, [256, 1284], False, True, True)
