"""The public pickler API: names, subclassing hooks of ``pickle.Pickler``, files and protocols.

``Pickler`` must behave like a ``pickle.Pickler``: a subclass's ``reducer_override`` and a
``dispatch_table`` (per instance or per class) are honoured next to the by-value machinery.
"""
import copyreg
import io
import pickle

import pytest

import cloudpickle_ipy
import cloudpickle_ipy.core as core
from cloudpickle_ipy.core import DEFAULT_PROTOCOL, CloudPickler, Pickler, dump, dumps
from tests.fresh import define, load_fresh

NAMES = ["dumps", "dump", "loads", "load", "Pickler", "CloudPickler", "DEFAULT_PROTOCOL",
         "register_pickle_by_value", "unregister_pickle_by_value", "list_registry_pickle_by_value"]


class Secret:
    """Lives in this test module, which the fresh process cannot import."""

    def __init__(self, text):
        self.text = text


def redact(secret):
    return str, (f"redacted:{len(secret.text)}",)


def lambdas():
    return define("inc = lambda x: x + 1").inc


def test_cloudpickler_is_pickler():
    assert CloudPickler is Pickler
    assert issubclass(Pickler, pickle.Pickler)


def test_default_protocol_is_highest():
    assert DEFAULT_PROTOCOL == pickle.HIGHEST_PROTOCOL


@pytest.mark.parametrize("name", NAMES)
def test_names_are_exported_from_the_package(name):
    assert getattr(cloudpickle_ipy, name) is getattr(core, name)


def test_subclass_reducer_override_and_by_value_both_honoured():
    class RedactingPickler(Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, Secret):
                return redact(obj)
            return super().reducer_override(obj)

    buf = io.BytesIO()
    RedactingPickler(buf).dump([Secret("hunter2"), lambdas()])
    assert load_fresh(buf.getvalue(), "[obj[0], obj[1](41)]") == ["redacted:7", 42]


def test_instance_dispatch_table_honoured():
    buf = io.BytesIO()
    p = Pickler(buf)
    p.dispatch_table = copyreg.dispatch_table.copy()
    p.dispatch_table[Secret] = redact
    p.dump({"secret": Secret("abc"), "fn": lambdas()})
    assert load_fresh(buf.getvalue(), "[obj['secret'], obj['fn'](1)]") == ["redacted:3", 2]


def test_class_dispatch_table_on_subclass_honoured():
    class TablePickler(Pickler):
        dispatch_table = copyreg.dispatch_table.copy()
        dispatch_table[Secret] = redact

    buf = io.BytesIO()
    TablePickler(buf).dump((Secret("abcd"), lambdas()))
    assert load_fresh(buf.getvalue(), "[obj[0], obj[1](2)]") == ["redacted:4", 3]


def test_dump_to_file_loads_with_plain_pickle(tmp_path):
    path = tmp_path / "payload.pkl"
    with open(path, "wb") as f:
        dump([lambdas(), "data"], f)
    assert load_fresh(path.read_bytes(), "[obj[0](9), obj[1]]") == [10, "data"]


def test_load_and_loads_read_payloads_in_fresh_process(tmp_path):
    path = tmp_path / "payload.pkl"
    with open(path, "wb") as f:
        dump(lambdas(), f)
    check = f"""
from cloudpickle_ipy.core import load, loads
with open({str(path)!r}, "rb") as f:
    from_file = load(f)
with open({str(path)!r}, "rb") as f:
    from_bytes = loads(f.read())
result = [from_file(1), from_bytes(2), load is __import__("cloudpickle_ipy").load]
"""
    assert load_fresh(dumps(None), check) == [2, 3, True]


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_dumps_honours_protocol(protocol):
    ns = define("""
        K = 10

        def scale(x):
            return x * K

        class Box:
            def __init__(self, v):
                self.v = v
    """)
    payload = dumps([ns.scale, ns.Box(3), lambdas()], protocol=protocol)
    assert payload[:2] == bytes([0x80, protocol])
    check = "[obj[0](4), obj[1].v, obj[2](0), type(obj[1]).__name__]"
    assert load_fresh(payload, check) == [40, 3, 1, "Box"]


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_dump_honours_protocol(protocol):
    buf = io.BytesIO()
    dump(lambdas(), buf, protocol=protocol)
    assert buf.getvalue()[:2] == bytes([0x80, protocol])
    assert load_fresh(buf.getvalue(), "obj(1)") == 2


def test_buffer_callback_sends_buffers_out_of_band():
    buffers = []
    data = bytearray(b"out-of-band-bytes" * 100)
    payload = dumps([pickle.PickleBuffer(data), lambdas()], protocol=5,
                    buffer_callback=buffers.append)
    assert len(buffers) == 1 and bytes(data) not in payload
    assert load_fresh(payload, "[bytes(obj[0]), obj[1](1)]", buffers=buffers) == [bytes(data), 2]
