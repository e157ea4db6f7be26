"""Whatever the loader can import under its own name travels by reference (a module and a name, no
code): stdlib and builtin functions, builtin methods, classes, numpy ufuncs and functions,
functions of importable modules, and importable modules themselves. Dynamic modules (not
importable anywhere) travel by value.
"""
import collections
import collections.abc
import importlib
import json
import os
import sys
import textwrap
import types

import numpy
import pytest

import cloudpickle_ipy
from tests.fresh import load_fresh


@pytest.mark.parametrize("obj, expr, module, name", [
    (os.path.join, "__import__('os').path.join", os.path.__name__.encode(), b"join"),
    (len, "len", b"builtins", b"len"),
    (sorted, "sorted", b"builtins", b"sorted"),
    (collections.OrderedDict, "__import__('collections').OrderedDict", b"collections",
     b"OrderedDict"),
    (ValueError, "ValueError", b"builtins", b"ValueError"),
    (str.upper, "str.upper", b"builtins", b"upper"),
    (numpy.add, "__import__('numpy').add", b"numpy", b"add"),
    (numpy.mean, "__import__('numpy').mean", b"numpy", b"mean"),
    (numpy.concatenate, "__import__('numpy').concatenate", b"numpy", b"concatenate"),
    (numpy.linalg.norm, "__import__('numpy.linalg').linalg.norm", b"numpy.linalg", b"norm"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_importable_objects_travel_by_reference(obj, expr, module, name):
    payload = cloudpickle_ipy.dumps(obj)
    assert module in payload and name in payload
    assert len(payload) < 200  # a reference, not code
    assert load_fresh(payload, f"obj is {expr}") is True


def test_bound_builtin_method_stays_bound_to_its_list():
    lst = [1, 2]
    payload = cloudpickle_ipy.dumps((lst, lst.append))
    assert b"append" in payload
    check = "obj[1](5); result = (obj[0], obj[1].__self__ is obj[0], obj[1].__name__)"
    assert load_fresh(payload, check) == ([1, 2, 5], True, "append")


def test_builtin_classmethod_travels_by_reference():
    payload = cloudpickle_ipy.dumps(dict.fromkeys)
    assert b"fromkeys" in payload and len(payload) < 200
    check = "(obj.__self__ is dict, obj.__name__, obj('ab', 0) == dict.fromkeys('ab', 0))"
    assert load_fresh(payload, check) == (True, "fromkeys", True)


@pytest.fixture
def sender_and_loader_dirs(tmp_path, monkeypatch):
    """Two versions of module ``cpipy_refmod``: the sender's (imported here), the loader's."""
    sender, loader = tmp_path / "sender", tmp_path / "loader"
    for directory, origin in ((sender, "sender"), (loader, "loader")):
        directory.mkdir()
        (directory / "cpipy_refmod.py").write_text(textwrap.dedent(f"""
            ORIGIN = {origin!r}

            def answer():
                return "answer from " + ORIGIN + " " + "x" * 50

            class Thing:
                def where(self):
                    return ORIGIN
        """))
    monkeypatch.syspath_prepend(str(sender))
    sys.modules.pop("cpipy_refmod", None)
    yield importlib.import_module("cpipy_refmod"), loader
    sys.modules.pop("cpipy_refmod", None)


def test_function_of_importable_module_travels_by_reference(sender_and_loader_dirs):
    mod, loader_dir = sender_and_loader_dirs
    assert mod.answer().startswith("answer from sender")
    payload = cloudpickle_ipy.dumps(mod.answer)
    assert b"cpipy_refmod" in payload and b"answer" in payload
    assert b"sender" not in payload and b"xxxxx" not in payload  # no code, no constants
    assert len(payload) < 200
    check = "(obj(), obj is __import__('cpipy_refmod').answer)"
    result = load_fresh(payload, check, sys_path=[loader_dir])
    assert result == ("answer from loader " + "x" * 50, True)


def test_class_and_instance_of_importable_module_travel_by_reference(sender_and_loader_dirs):
    mod, loader_dir = sender_and_loader_dirs
    payload = cloudpickle_ipy.dumps((mod.Thing, mod.Thing()))
    assert b"sender" not in payload and len(payload) < 200
    check = "(obj[1].where(), obj[0] is __import__('cpipy_refmod').Thing, type(obj[1]) is obj[0])"
    assert load_fresh(payload, check, sys_path=[loader_dir]) == ("loader", True, True)


@pytest.mark.parametrize("module, check", [
    (os, "obj is sys.modules['os']"),
    (json, "obj is sys.modules['json']"),
    (os.path, "obj is __import__('os').path"),
    (collections.abc, "obj is __import__('collections.abc').abc"),
], ids=lambda v: getattr(v, "__name__", None))
def test_importable_module_travels_by_reference(module, check):
    payload = cloudpickle_ipy.dumps(module)
    assert module.__name__.encode() in payload
    assert len(payload) < 200
    assert load_fresh(payload, check) is True


def test_dynamic_module_travels_by_value():
    mod = types.ModuleType("cpipy_dynmod")
    exec(textwrap.dedent("""
        VALUE = 21

        def double():
            return VALUE * 2
    """), mod.__dict__)
    mod.extra = [1, 2, 3]
    assert "cpipy_dynmod" not in sys.modules
    payload = cloudpickle_ipy.dumps(mod)
    check = ("(isinstance(obj, type(sys)), obj.__name__, obj.VALUE, obj.double(), obj.extra, "
             "obj.double.__module__)")
    assert load_fresh(payload, check) == (True, "cpipy_dynmod", 21, 42, [1, 2, 3], "cpipy_dynmod")


def test_function_referencing_dynamic_module_gets_its_attributes():
    mod = types.ModuleType("cpipy_dynmod_config")
    mod.factor = 6
    func_ns = {"cfg": mod, "__name__": "__main__"}
    exec("def f(x):\n    return x * cfg.factor\n", func_ns)
    payload = cloudpickle_ipy.dumps(func_ns["f"])
    assert load_fresh(payload, "(obj(7), obj.__globals__['cfg'].__name__)") == (
        42, "cpipy_dynmod_config")
