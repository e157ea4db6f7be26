"""Reducers of the user's: ``register(type_, reduce_function)`` (process-wide) and ``reducers=`` on
``dump``/``dumps`` (one call). Either wins over the core's own reducer for its type, on the fast
path for data as on the full Pickler, and leaves every other type as it was.

``register`` cannot be undone, so its tests run in a fresh process each; ``reducers=`` tests run
here. Payloads load in a fresh process.
"""
import abc
import builtins
import collections
import io
import json
import os.path
import pickle
import threading
import types
import weakref

import pytest

from cloudpickle_ipy.core import dump, dumps, register
from tests.fresh import define, load_fresh, run_script


class Gauge:
    """Importable (the fresh process could import it from here), but holds a lock."""

    def __init__(self, reading):
        self.reading = reading
        self.lock = threading.Lock()


def as_text(obj):
    # format, a builtin function: a class or a function here would go through a reducer for
    # classes or functions again, and again.
    return format, (f"custom {type(obj).__name__}",)


def dump_to_bytes(obj, *args, **kwargs):
    file = io.BytesIO()
    dump(obj, file, *args, **kwargs)
    return file.getvalue()


WAYS = [dumps, dump_to_bytes]


class Meta(abc.ABCMeta):
    pass


# The core has a reducer of its own for each of these kinds (the last two: classes by metaclass).
CORE_KINDS = {
    "module": (types.ModuleType, lambda: json),
    "function": (types.FunctionType, lambda: os.path.join),
    "lambda": (types.FunctionType, lambda: (lambda x: x)),
    "class": (type, lambda: collections.OrderedDict),
    "memoryview": (memoryview, lambda: memoryview(b"abc")),
    "property": (property, lambda: property(len)),
    "mappingproxy": (types.MappingProxyType, lambda: types.MappingProxyType({"a": 1})),
    "weakset": (weakref.WeakSet, lambda: weakref.WeakSet()),
    "code": (types.CodeType, lambda: as_text.__code__),
    "abc class": (abc.ABCMeta, lambda: collections.abc.Sized),
    "metaclass": (Meta, lambda: Meta("Made", (), {})),
}


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("kind", CORE_KINDS)
def test_a_reducer_for_one_call_wins_over_the_cores_own(kind, way):
    type_, make = CORE_KINDS[kind]
    obj = make()
    assert type(obj) is type_
    payload = way([1, obj, "x"], reducers={type_: as_text})
    assert load_fresh(payload) == [1, f"custom {type_.__name__}", "x"]
    assert load_fresh(way([obj], 5, reducers={type_: as_text})) == [f"custom {type_.__name__}"]


@pytest.mark.parametrize("way", WAYS)
def test_a_reducer_for_one_call_applies_to_that_call_only(way):
    gauge = Gauge(7)
    payload = way({"gauge": gauge}, reducers={Gauge: lambda g: (float, (g.reading,))})
    assert load_fresh(payload) == {"gauge": 7.0}
    with pytest.raises(TypeError, match=r"cannot pickle '_thread.lock' object: found at "):
        way({"gauge": gauge})


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_a_reducer_for_another_type_leaves_data_as_pickle_writes_it(protocol):
    data = {"ints": list(range(300)), "nested": [{"a": (1, 2.5, None)}] * 3, "text": "é",
            "ordered": collections.OrderedDict(a=1), "class": collections.OrderedDict,
            "function": os.path.join}
    assert dumps(data, protocol, reducers={Gauge: as_text}) == pickle.dumps(data, protocol)


def test_reducers_for_classes_and_functions_reach_importable_ones():
    # The C pickler finds importable classes and functions by name without asking any table.
    reducers = {type: as_text, types.FunctionType: as_text}
    payload = dumps([collections.OrderedDict, os.path.join, 3], reducers=reducers)
    assert load_fresh(payload) == ["custom type", "custom function", 3]
    # A reducer for classes gets every class, also the class of an instance.
    to_dict = {type: lambda cls: (getattr, (builtins, "dict"))}
    assert load_fresh(dumps([collections.OrderedDict(b=2)], reducers=to_dict), "type(obj[0])") is dict


def test_a_reducer_for_an_interactive_class_and_its_instances():
    ns = define("""
        class Point:
            def __init__(self, x, y):
                self.x, self.y = x, y

            def norm(self):
                return abs(self.x) + abs(self.y)
    """)
    reducers = {ns.Point: lambda p: (ns.Point, (p.y, p.x))}  # sends it transposed
    payload = dumps([ns.Point(1, -5)], reducers=reducers)
    assert load_fresh(payload, "[(p.x, p.y, p.norm()) for p in obj]") == [(-5, 1, 6)]


def test_positional_protocol_keeps_working_and_reducers_are_keyword_only():
    assert pickle.loads(dumps([1, 2], 2)) == [1, 2]
    assert dumps([1, 2], 2)[:2] == b"\x80\x02"
    with pytest.raises(TypeError, match="protocol must be an int, not a dict: pass reducers as "
                                        "reducers="):
        dumps(Gauge(1), {Gauge: as_text})
    with pytest.raises(TypeError):
        dumps(Gauge(1), None, None, {Gauge: as_text})


@pytest.mark.parametrize("call, error, message", [
    (lambda: register(3, as_text), TypeError,
     r"^register\(\) takes a class to reduce the instances of, not 3$"),
    (lambda: register(Gauge, "as_text"), TypeError,
     r"^register\(\): the reducer for Gauge must be a function taking the object"),
    (lambda: register(dict, as_text), ValueError,
     r"^register\(\): the pickler writes dict objects itself and never asks a reducer"),
    (lambda: dumps(1, reducers={int: as_text}), ValueError,
     r"^reducers=: the pickler writes int objects itself"),
    (lambda: dumps(1, reducers=[(Gauge, as_text)]), TypeError,
     r"^reducers= takes a dict \{type: reduce_function\}, not list$"),
    (lambda: dumps(1, reducers={"Gauge": as_text}), TypeError,
     r"^reducers= takes a class to reduce the instances of, not 'Gauge'$"),
])
def test_bad_reducers_are_refused_with_one_clear_line(call, error, message):
    with pytest.raises(error, match=message):
        call()


def run(source):
    return json.loads(run_script(source))


def test_register_wins_over_the_cores_own_reducers_process_wide():
    result = run("""
        import abc, collections, io, json, os.path, pickle, types
        from cloudpickle_ipy.core import Pickler, dump, dumps, register

        def as_text(obj):
            return format, ("custom " + type(obj).__name__,)

        objects = [json, os.path.join, lambda x: x, collections.OrderedDict, memoryview(b"x"),
                   collections.abc.Sized, 1.5]
        for kind in {type(obj) for obj in objects} - {float}:
            register(kind, as_text)
        file = io.BytesIO()
        dump(objects, file)
        subclassed = io.BytesIO()
        Pickler(subclassed).dump(objects)
        print(json.dumps([pickle.loads(payload) for payload in
                          [dumps(objects), file.getvalue(), subclassed.getvalue(),
                           dumps(objects, reducers={types.ModuleType: lambda m: (abs, (-7,))}),
                           dumps([os.path.join, collections.OrderedDict, 2])]]))
    """)
    expected = ["custom module", "custom function", "custom function", "custom type",
                "custom memoryview", "custom ABCMeta", 1.5]
    assert result[:3] == [expected] * 3
    assert result[3] == [7] + expected[1:]  # a reducer for the call wins over a registered one
    # Importable only: what the C pickler alone would find by name.
    assert result[4] == ["custom function", "custom type", 2]


def test_register_applies_to_classes_already_pickled_and_to_wrapped_objects():
    result = run("""
        import json, pickle, sys
        from cloudpickle_ipy.core import dumps, register, wrap_non_picklable_objects

        class Celsius:
            def __init__(self, degrees):
                self.degrees = degrees

        before = pickle.loads(dumps(Celsius(20)))
        register(Celsius, lambda c: (float, (c.degrees,)))
        wrapped = wrap_non_picklable_objects([Celsius(5)], keep_wrapper=False)
        print(json.dumps([type(before).__name__, pickle.loads(dumps([Celsius(30)])),
                          pickle.loads(pickle.dumps(wrapped))]))
    """)
    assert result == ["Celsius", [30.0], [5.0]]


def test_a_later_register_for_the_same_type_replaces_the_earlier():
    result = run("""
        import fractions, json, pickle
        from cloudpickle_ipy.core import dumps, register

        def everything():
            return [fractions.Fraction(1, 3), memoryview(b"ab")]

        register(fractions.Fraction, lambda f: (format, ("first",)))
        register(memoryview, lambda m: (format, ("first",)))
        first = pickle.loads(dumps(everything()))
        register(fractions.Fraction, lambda f: (format, ("second " + str(f),)))
        register(memoryview, lambda m: (bytes, (m.tobytes(),)))
        print(json.dumps([first, [str(x) for x in pickle.loads(dumps(everything()))]]))
    """)
    assert result == [["first", "first"], ["second 1/3", "b'ab'"]]


def test_register_survives_the_cores_reducers_that_join_once_their_module_is_imported():
    # The core's reducers for dataclasses' sentinels join at the first dump after the import.
    result = run("""
        import dataclasses, io, json, pickle
        from cloudpickle_ipy.core import dump, dumps, register

        register(type(dataclasses.MISSING), lambda m: (format, ("my missing",)))
        file = io.BytesIO()
        dump([dataclasses.MISSING], file)
        print(json.dumps([pickle.loads(file.getvalue()), pickle.loads(dumps([dataclasses.MISSING]))]))
    """)
    assert result == [["my missing"], ["my missing"]]


def test_a_registered_reducer_leaves_other_types_on_the_fast_path():
    result = run("""
        import collections, json, os.path, pickle
        from cloudpickle_ipy.core import dumps, register

        class Unrelated:
            pass

        register(Unrelated, lambda u: (str, ("u",)))
        data = {"ints": list(range(300)), "ordered": collections.OrderedDict(a=1),
                "class": collections.OrderedDict, "function": os.path.join}
        print(json.dumps([dumps(data, protocol) == pickle.dumps(data, protocol)
                          for protocol in (2, 3, 4, 5)]))
    """)
    assert result == [True, True, True, True]


FAST_PATH = """
    import collections, fractions, json, os.path, sys, types
    from cloudpickle_ipy.core import pickler, plain, register

    class Unrelated:
        pass

    def reduce_unrelated(obj):
        return Unrelated, ()

    # Instances of importable classes, importable classes and functions: found by name.
    data = [fractions.Fraction(1, 3), collections.OrderedDict(a=1), types.SimpleNamespace(b=2),
            collections.Counter, os.path.join, list(range(50))]

    def on_fast_path(call_reducers=None):
        # plain.dumps gives bytes, or None when the full Pickler must take over.
        return plain.dumps(data, 5, pickler._REDUCERS, call_reducers) is not None

    before = on_fast_path()
    with_call_reducer = on_fast_path({Unrelated: reduce_unrelated})
    register(Unrelated, reduce_unrelated)
    print(json.dumps([before, with_call_reducer, on_fast_path(),
                      on_fast_path({types.FunctionType: reduce_unrelated})]))
"""


def test_other_types_stay_on_the_fast_path_for_data_next_to_a_reducer():
    # Not timed here (benchmarks/reducer_overhead.py does): the C pickler alone still does the job.
    before, with_call_reducer, registered, for_functions = run(FAST_PATH)
    assert before and with_call_reducer and registered
    assert not for_functions  # a reducer for functions needs the full Pickler, found by name or not
