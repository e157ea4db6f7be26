"""Memo and identity within one payload, out-of-band buffers (protocol 5), every pickle protocol
from 2 up, structures too deep for the recursion limit (a clean ``pickle.PicklingError``), and
the file API (``dump``/``load``, ``Pickler``) plus the package-level re-exports.
"""
import io
import pickle
import textwrap

import numpy
import pytest

import cloudpickle_ipy
import cloudpickle_ipy.core
from tests.fresh import define, load_fresh, run_script

PROTOCOLS = list(range(2, pickle.HIGHEST_PROTOCOL + 1))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_same_lambda_twice_loads_as_one_object(protocol):
    f = define("f = lambda x: x + 1").f
    payload = cloudpickle_ipy.dumps([f, f], protocol=protocol)
    assert load_fresh(payload, "(obj[0] is obj[1], obj[1](1))") == (True, 2)


def test_dict_shared_by_two_closures_stays_shared():
    ns = define("""
        def make_put(d):
            def put(k, v):
                d[k] = v
            return put

        def make_read(d):
            def read(k):
                return d[k]
            return read

        shared = {"seed": 0}
        put, read = make_put(shared), make_read(shared)
    """)
    payload = cloudpickle_ipy.dumps((ns.put, ns.read))
    check = ("obj[0]('a', 1); result = (obj[1]('a'), obj[1]('seed'), "
             "obj[0].__closure__[0].cell_contents is obj[1].__closure__[0].cell_contents)")
    assert load_fresh(payload, check) == (1, 0, True)


def test_out_of_band_buffers_with_protocol_5():
    raw = bytearray(b"\xab\xcd" * 50_000)
    arr = numpy.arange(50_000, dtype="int64")
    f = define("f = lambda raw, arr: (bytes(raw[:4]), int(arr.sum()), len(raw))").f
    buffers = []
    payload = cloudpickle_ipy.dumps({"fn": f, "raw": pickle.PickleBuffer(raw), "arr": arr},
                                    protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 2
    assert len(payload) < 10_000
    assert bytes(raw[:1000]) not in payload and arr.tobytes()[:1000] not in payload
    check = "obj['fn'](obj['raw'], obj['arr'])"
    assert load_fresh(payload, check, buffers=buffers) == f(raw, arr)


def test_dump_with_buffer_callback_to_file(tmp_path):
    arr = numpy.linspace(0.0, 1.0, 20_000)
    g = define("g = lambda a: float(a.max() - a.min())").g
    buffers = []
    path = tmp_path / "payload.pkl"
    with open(path, "wb") as fh:
        cloudpickle_ipy.dump((g, arr), fh, protocol=5, buffer_callback=buffers.append)
    payload = path.read_bytes()
    assert len(buffers) == 1 and arr.tobytes()[:1000] not in payload
    assert load_fresh(payload, "obj[0](obj[1])", buffers=buffers) == g(arr)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_closure_instance_and_lambda_with_every_protocol(protocol):
    ns = define("""
        class Point:
            def __init__(self, x, y):
                self.x, self.y = x, y
            def norm1(self):
                return abs(self.x) + abs(self.y)

        def make_scaler(k):
            def scale(p):
                return Point(p.x * k, p.y * k)
            return scale

        scale3 = make_scaler(3)
        pick = lambda p: p.norm1()
        p = Point(1, -2)
    """)
    payload = cloudpickle_ipy.dumps({"scale": ns.scale3, "pick": ns.pick, "p": ns.p},
                                    protocol=protocol)
    assert payload[:2] == bytes([pickle.PROTO[0], protocol])
    check = ("(obj['pick'](obj['scale'](obj['p'])), type(obj['p']).__name__, "
             "isinstance(obj['scale'](obj['p']), type(obj['p'])), obj['p'].x)")
    assert load_fresh(payload, check) == (ns.pick(ns.scale3(ns.p)), "Point", True, 1)


def test_default_protocol_is_highest():
    assert cloudpickle_ipy.DEFAULT_PROTOCOL == pickle.HIGHEST_PROTOCOL
    f = define("f = lambda: 'default'").f
    payload = cloudpickle_ipy.dumps(f)
    assert payload[:2] == bytes([pickle.PROTO[0], pickle.HIGHEST_PROTOCOL])
    assert load_fresh(payload, "obj()") == "default"


DEEP_SCRIPT = """
    import pickle, sys
    import cloudpickle_ipy

    kind, depth = sys.argv[1], int(sys.argv[2])

    def make(inner):
        def f():
            return inner
        return f

    class Node:
        def __init__(self, nxt):
            self.nxt = nxt

    obj = None
    for _ in range(depth):
        obj = [obj] if kind == "list" else make(obj) if kind == "closures" else Node(obj)
    try:
        cloudpickle_ipy.dumps(obj)
    except Exception as e:
        print(type(e).__name__, isinstance(e, pickle.PicklingError), flush=True)
    else:
        print("no error", flush=True)
    # The pickler is still usable afterwards.
    print(pickle.loads(cloudpickle_ipy.dumps(make(5)))(), flush=True)
"""


@pytest.mark.parametrize("kind", ["list", "closures", "objects"])
def test_too_deep_structure_raises_pickling_error(kind):
    out = run_script(DEEP_SCRIPT, kind, 100_000)
    assert out.decode().split("\n")[:2] == ["PicklingError True", "5"]


def test_dump_to_file_and_load_from_file(tmp_path):
    ns = define("""
        def make_greeter(greeting):
            def greet(name):
                return f"{greeting}, {name}!"
            return greet
        greet = make_greeter("Hello")
    """)
    path = tmp_path / "greet.pkl"
    with open(path, "wb") as fh:
        cloudpickle_ipy.dump(ns.greet, fh)
    payload = path.read_bytes()
    check = textwrap.dedent(f"""
        import cloudpickle_ipy
        with open("copy.pkl", "wb") as fh:
            fh.write({payload!r})
        with open("copy.pkl", "rb") as fh:
            loaded = cloudpickle_ipy.load(fh)
        result = (obj("Ann"), loaded("Bob"), cloudpickle_ipy.loads({payload!r})("Cy"),
                  "cloudpickle" in sys.modules)
    """)
    assert load_fresh(payload, check) == (
        ns.greet("Ann"), ns.greet("Bob"), ns.greet("Cy"), False)


def test_pickler_class_dumps_by_value():
    assert cloudpickle_ipy.Pickler is cloudpickle_ipy.CloudPickler
    assert issubclass(cloudpickle_ipy.Pickler, pickle.Pickler)
    f = define("f = lambda x: x * 3").f
    buf = io.BytesIO()
    cloudpickle_ipy.Pickler(buf, protocol=4).dump([f, f])
    assert buf.getvalue()[:2] == bytes([pickle.PROTO[0], 4])
    assert load_fresh(buf.getvalue(), "(obj[0](5), obj[0] is obj[1])") == (15, True)


@pytest.mark.parametrize("name", [
    "dumps", "dump", "loads", "load", "Pickler", "CloudPickler", "DEFAULT_PROTOCOL",
    "register_pickle_by_value", "unregister_pickle_by_value", "list_registry_pickle_by_value",
])
def test_package_reexports_core_api(name):
    assert getattr(cloudpickle_ipy, name) is getattr(cloudpickle_ipy.core, name)
