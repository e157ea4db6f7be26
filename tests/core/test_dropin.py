"""Where cloudpickle works and we did not (issue 12, items 1-4, 8 and 9), each loaded in a fresh
process: bound methods stored under another name, abc's deprecated abstract descriptors, submodules
reached through a package held by a closure, dynamic modules, TypedDicts next to NamedTuples, and
error messages that start with cloudpickle's wording.
"""
import abc
import io
import pickle
import types

import pytest

import cloudpickle_ipy.core as cloudpickle
from tests.fresh import define, load_fresh

# --- 1. bound methods whose function is stored under another name -------------------------------


def test_bound_method_of_function_stored_under_another_name():
    ns = define("""
        class A:
            def __init__(self, tag):
                self.tag = tag

        A.echo = lambda self, x: (self.tag, x)
        def shout(self, x):
            return self.tag.upper() + x
        A.loud = shout
    """)
    a = ns.A("t")
    payload = cloudpickle.dumps([a.echo, a.loud, a])
    check = "result = [obj[0](5), obj[1]('!'), obj[0].__self__ is obj[2], obj[1].__name__]"
    assert load_fresh(payload, check) == [("t", 5), "T!", True, "shout"]


def test_class_and_static_methods_bound_under_other_names_and_builtin_bound_methods():
    ns = define("""
        class Registry:
            items = [1, 2]

        Registry.make = classmethod(lambda cls, n: cls.items * n)
    """)
    data = {"k": 1}
    payload = cloudpickle.dumps([ns.Registry.make, data.get, io.StringIO("x").read])
    assert load_fresh(payload, "[obj[0](2), obj[1]('k'), obj[2]()]") == [[1, 2, 1, 2], 1, "x"]


# --- 2. abc's deprecated abstract descriptors ---------------------------------------------------

def test_deprecated_abstract_descriptors_on_a_dynamic_class():
    ns = define("""
        import abc

        class Base(abc.ABC):
            @abc.abstractclassmethod
            def make(cls):
                "Make one."

            @abc.abstractstaticmethod
            def kind():
                ...

            @abc.abstractproperty
            def size(self):
                ...

        class Impl(Base):
            @classmethod
            def make(cls):
                return cls()

            @staticmethod
            def kind():
                return "impl"

            @property
            def size(self):
                return 3
    """)
    payload = cloudpickle.dumps([ns.Base, ns.Impl])
    check = """
import abc
base, impl = obj
try:
    base()
except TypeError as e:
    refused = "abstract" in str(e)
result = [sorted(base.__abstractmethods__), refused, impl.make().size, impl.kind(),
          type(vars(base)["make"]) is abc.abstractclassmethod,
          type(vars(base)["kind"]) is abc.abstractstaticmethod,
          type(vars(base)["size"]) is abc.abstractproperty, base.make.__doc__]
"""
    assert load_fresh(payload, check) == [["kind", "make", "size"], True, 3, "impl", True, True,
                                          True, "Make one."]
    assert abc.abstractproperty in type(vars(ns.Base)["size"]).__mro__


# --- 3. submodules reached through a package ----------------------------------------------------

SUBMODULE_CODE = """
    import xml.etree.ElementTree

    def plain(text):
        return xml.etree.ElementTree.fromstring(text).tag

    def outer():
        def nested(text):
            return xml.etree.ElementTree.fromstring(text).tag
        return nested

    def closure(suffix):
        def inner(text):
            return xml.etree.ElementTree.fromstring(text).tag + suffix
        return inner

    def closure_over_imported_package():
        import xml.dom.minidom
        def parse(text):
            return xml.dom.minidom.parseString(text).documentElement.tagName
        return parse

    def default_argument(text, etree=xml.etree):
        return etree.ElementTree.fromstring(text).tag
"""

@pytest.mark.parametrize("make", [
    lambda ns: ns.plain, lambda ns: ns.outer(), lambda ns: ns.closure("!"),
    lambda ns: ns.closure_over_imported_package(), lambda ns: ns.default_argument,
], ids=["plain", "nested", "closure", "closure-over-package", "default-argument"])
def test_submodule_reached_through_package_is_imported_on_load(make):
    func = make(define(SUBMODULE_CODE))
    payload = cloudpickle.dumps(func)
    assert load_fresh(payload, "obj('<node/>')") == func("<node/>")


# --- 4. dynamic modules -------------------------------------------------------------------------

def _dynamic_module():
    module = types.ModuleType("scratch", "A module made at run time.")
    exec("LIMIT = 10\n"
         "def clamp(x):\n"
         "    return min(x, LIMIT)\n"
         "def through_helper(x):\n"
         "    return clamp(x) + len([x])\n", vars(module))
    return module


def test_dynamic_module_comes_back_with_builtins_and_its_functions_use_its_dict():
    module = _dynamic_module()
    payload = cloudpickle.dumps(module)
    check = """
import builtins
m = obj
before = m.through_helper(50)
m.LIMIT = 100  # the functions read the rebuilt module's dict
result = [before, m.through_helper(50), m.clamp.__globals__ is vars(m), "__builtins__" in vars(m),
          m.__builtins__ is builtins or m.__builtins__ is vars(builtins), m.__name__, m.__doc__]
"""
    assert load_fresh(payload, check) == [11, 51, True, True, True, "scratch",
                                          "A module made at run time."]


def test_function_of_a_dynamic_module_pickled_with_its_module():
    module = _dynamic_module()
    payload = cloudpickle.dumps([module, module.through_helper])
    check = "m, f = obj; m.LIMIT = 1; result = [f is m.through_helper, f(50)]"
    assert load_fresh(payload, check) == [True, 2]


def test_function_reaching_a_dynamic_module_ships_only_the_attributes_it_names():
    config = types.ModuleType("config")
    config.rate = 3
    config.lock = __import__("threading").Lock()  # never touched by the function
    ns = define("def charge(x):\n    return x * config.rate\n")
    ns.charge.__globals__["config"] = config
    check = "[obj(2), sorted(k for k in vars(obj.__globals__['config']) if not k.startswith('__'))]"
    assert load_fresh(cloudpickle.dumps(ns.charge), check) == [6, ["rate"]]


# --- 8. TypedDict next to NamedTuple in __main__ ------------------------------------------------

def test_typeddicts_and_namedtuple_defined_in_main():
    ns = define("""
        from typing import NamedTuple, TypedDict

        class Movie(TypedDict):
            title: str
            year: int

        class Draft(TypedDict, total=False):
            title: str
            notes: list

        class Rated(Movie, total=False):
            stars: int

        class Point(NamedTuple):
            x: int
            y: int = 0
    """)
    payload = cloudpickle.dumps([ns.Movie, ns.Draft, ns.Rated, ns.Point, ns.Point(1, 2)])
    check = """
import typing
movie, draft, rated, point, p = obj
result = [sorted(movie.__required_keys__), sorted(movie.__optional_keys__), movie.__total__,
          sorted(draft.__optional_keys__), draft.__total__, sorted(rated.__required_keys__),
          sorted(rated.__optional_keys__), movie(title="t", year=1), type(movie(title="t", year=1)),
          getattr(typing, "is_typeddict", lambda c: True)(rated), list(movie.__annotations__),
          tuple(p), p._replace(y=5).y, point(3)._asdict(), type(p) is point, point._fields]
"""
    assert load_fresh(payload, check) == [
        ["title", "year"], [], True, ["notes", "title"], False, ["title", "year"], ["stars"],
        {"title": "t", "year": 1}, dict, True, ["title", "year"], (1, 2), 5, {"x": 3, "y": 0}, True,
        ("x", "y")]


# --- 9. error messages that start with cloudpickle's ----------------------------------------------

def test_excessive_recursion_message():
    deep = []
    for _ in range(200_000):  # beyond the C stack's limit too (3.13 pickles 2x the Python one)
        deep = [deep]
    with pytest.raises(pickle.PicklingError) as info:
        cloudpickle.dumps(deep)
    message = str(info.value)
    assert message.startswith("Could not pickle object as excessively deep recursion required.")
    assert "sys.setrecursionlimit" in message  # ours: what to do about it


def test_closed_file_message_says_where_it_was_found(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("content")
    with open(path) as f:
        pass
    with pytest.raises(pickle.PicklingError) as info:
        cloudpickle.dumps({"handles": [f]})
    message = str(info.value)
    assert message.startswith("Cannot pickle closed files")
    assert "obj['handles'][0]" in message and "data.txt" in message


def test_write_only_file_message(tmp_path):
    with open(tmp_path / "out.txt", "w") as f, pytest.raises(pickle.PicklingError) as info:
        cloudpickle.dumps(f)
    assert str(info.value).startswith("Cannot pickle files that are not opened for reading: w")


@pytest.mark.parametrize("func", [cloudpickle.register_pickle_by_value,
                                  cloudpickle.unregister_pickle_by_value])
def test_non_module_given_to_the_registry(func):
    with pytest.raises(ValueError) as info:
        func("json")
    message = str(info.value)
    assert message.startswith("Input should be a module object, got json instead")
    assert func.__name__ in message  # ours: who refused it, and what to pass instead


def test_registry_refusals_start_with_cloudpickles_wording():
    ghost = types.ModuleType("ghost_module_never_imported")
    with pytest.raises(ValueError) as info:
        cloudpickle.register_pickle_by_value(ghost)
    assert str(info.value).startswith(
        f"{ghost} was not imported correctly, have you used an `import` statement to access it?")
    import json
    with pytest.raises(ValueError) as info:
        cloudpickle.unregister_pickle_by_value(json)
    assert str(info.value).startswith(f"{json} is not registered for pickle by value")
