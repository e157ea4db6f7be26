"""Errors for objects that cannot be pickled say where in the structure the object sits.

The stdlib's own message ("cannot pickle '_thread.lock' object") differs between versions and names
no place; these tests assert on what the pickler adds: the path, the type when the error does not
name it, and the original error kept as the cause.
"""
import io
import pickle
import socket
import threading

import pytest

from cloudpickle_ipy.core import Pickler, dump, dumps, locate
from tests.fresh import define, load_fresh


def failure(obj, pickler=Pickler, protocol=None):
    """Dump ``obj`` (through a file, as ``dump`` does) and return the error it raised."""
    with pytest.raises(Exception) as info:
        pickler(io.BytesIO(), protocol).dump(obj)
    error = info.value
    assert type(error) is type(error.__cause__), "the original error's type is kept"
    assert str(error).startswith(str(error.__cause__)), "the original message comes first"
    return error


def assert_found(error, path, type_name):
    assert isinstance(error, (pickle.PicklingError, TypeError))
    assert str(error).endswith(f": found at {path}")
    assert f"'{type_name}'" in str(error)


def loggers():
    return define("""
        import threading

        class Handler:
            def __init__(self):
                self.lock = threading.Lock()

        class Logger:
            def __init__(self):
                self.name = "app"
                self.handlers = [Handler()]
    """)


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_lock_in_an_attribute_list(protocol):
    error = failure(loggers().Logger(), protocol=protocol)
    assert_found(error, "obj.handlers[0].lock", "_thread.lock")


def test_socket_in_a_dict():
    with socket.socket() as sock, pytest.raises((pickle.PicklingError, TypeError)) as info:
        dumps({"name": "db", "conn": sock})
    assert_found(info.value, "obj['conn']", "socket")


def test_generator_in_a_closure_cell():
    make = define("""
        def make():
            numbers = (i for i in range(3))
            def take():
                return next(numbers)
            return take
    """).make
    assert_found(failure(make()), "obj.<closure 'numbers'>", "generator")


def test_unpicklable_global_of_a_main_function():
    uses_lock = define("""
        import threading
        LOCK = threading.Lock()

        def guarded():
            with LOCK:
                return 1
    """).guarded
    assert_found(failure(uses_lock), "obj.__globals__['LOCK']", "_thread.lock")


def test_lock_as_class_attribute_of_a_main_class():
    Cache = define("""
        import threading

        class Cache:
            lock = threading.Lock()
    """).Cache
    assert_found(failure(Cache), "obj.lock", "_thread.lock")
    assert_found(failure([Cache()]), "obj[0].__class__.lock", "_thread.lock")


def test_error_from_a_users_reduce_keeps_its_type_and_gains_a_path():
    Broken = define("""
        class Broken:
            def __reduce__(self):
                raise ValueError("no state to save")
    """).Broken
    error = failure({"items": [1, (2, Broken())]})
    assert type(error) is ValueError
    assert str(error) == ("no state to save: found at obj['items'][1][1] "
                          "(a '__main__.Broken' object)")


def test_subclass_reductions_are_followed():
    class Vault:
        def __init__(self):
            self.contents = ["gold", threading.Lock()]

    class VaultPickler(Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, Vault):
                return list, (obj.contents,)
            return super().reducer_override(obj)

    error = failure({"vault": Vault()}, VaultPickler)
    assert_found(error, "obj['vault'].<arg 0>[1]", "_thread.lock")


def test_dispatch_table_reductions_are_followed():
    class Box:
        def __init__(self):
            self.item = threading.Lock()

    class BoxPickler(Pickler):
        dispatch_table = {Box: lambda box: (Box, (), {"inside": box.item})}

    assert_found(failure([Box()], BoxPickler), "obj[0].inside", "_thread.lock")


def test_dump_to_a_file():
    with pytest.raises((pickle.PicklingError, TypeError)) as info:
        dump(loggers().Logger(), io.BytesIO())
    assert_found(info.value, "obj.handlers[0].lock", "_thread.lock")


def test_deep_nesting_is_walked_without_recursion():
    nested = threading.Lock()
    for _ in range(300):
        nested = [nested]
    assert_found(failure(nested), "obj" + "[0]" * 300, "_thread.lock")


def test_search_gives_up_on_huge_structures(monkeypatch):
    monkeypatch.setattr(locate, "LIMIT", 100)
    error = failure([[i] for i in range(200)] + [threading.Lock()])
    assert str(error).endswith(" (gave up looking for where it sits after 100 objects)")
    assert "_thread.lock" in str(error.__cause__)


def test_file_errors_are_raised_unchanged():
    class FullDisk(io.RawIOBase):
        def writable(self):
            return True

        def write(self, data):
            raise OSError("no space left on device")

    with pytest.raises(OSError) as info:
        dump([1, 2, 3], FullDisk())
    assert str(info.value) == "no space left on device"
    assert info.value.__cause__ is None


class PlainDump(Pickler):
    """The Pickler as it is without the error path: the C pickler's own ``dump``."""

    dump = pickle.Pickler.dump


def test_success_path_is_unchanged(monkeypatch):
    ns = define("""
        import collections
        Point = collections.namedtuple("Point", "x y")

        class Counter:
            step = 2
            def __init__(self):
                self.count = 0
            def bump(self):
                self.count += self.step
                return self.count

        def make(n):
            return lambda x: x + n
    """)
    obj = {"add": ns.make(3), "cls": ns.Counter, "counter": ns.Counter(), "point": ns.Point(1, 2),
           "data": [1.5, "text", b"bytes", {4, 5}, (None, True)]}

    def must_not_run(*args):
        raise AssertionError("located an error on the success path")

    monkeypatch.setattr(locate, "annotate", must_not_run)
    PlainDump(io.BytesIO()).dump(obj)  # fills caches that the first pickle of an instance sets
    payload = dumps(obj)
    plain = io.BytesIO()
    PlainDump(plain).dump(obj)
    assert payload == plain.getvalue()
    check = "[obj['add'](4), obj['counter'].bump(), obj['point'].y]"
    assert load_fresh(payload, check) == [7, 2, 2]
