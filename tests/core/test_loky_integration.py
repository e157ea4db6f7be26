"""The seed's loky usage examples, importing from our package, each in a fresh process with real loky
workers.

Objects meant to be "interactive" are defined in the script, its ``__main__``, which loky's workers
never import: they cannot find those objects by name, as they could not find what was typed into a
notebook. The functions a worker runs on them live in an importable module, ``seed_helpers`` (a
library's functions). Each script prints one JSON line.

The wrapping examples run under two loky picklers: plain ``pickle``, where the wrapper is what lets
the object travel (the same object unwrapped fails, and the script says so), and our Pickler.
"""
import json
import os

import pytest

from tests.fresh import run_script

OURS = "cloudpickle_ipy.core"
LOKY_PICKLERS = ["pickle", OURS]

# What the workers run: importable, from the scripts and from the workers.
SEED_HELPERS = '''
import pickle

from loky.process_executor import BrokenProcessPool

from cloudpickle_ipy.core import CallableObjectWrapper, CloudpickledObjectWrapper


def kind(obj):
    return [type(obj).__name__, isinstance(obj, CloudpickledObjectWrapper),
            isinstance(obj, CallableObjectWrapper)]


def qualified_kind(obj):
    return type(obj).__module__ + "." + type(obj).__qualname__


def try_sending(executor, obj):
    """"sent", or "failed" if the object could not be pickled here or loaded there (which breaks
    the pool: call it last)."""
    try:
        executor.submit(kind, obj).result()
    except (pickle.PicklingError, BrokenProcessPool):
        return "failed"
    return "sent"


def process_with(processor_class, data):
    processor = processor_class(3)
    return [processor.process(data), processor_class.__name__,
            isinstance(processor, processor_class)]


def process(processor, data):
    return processor.process(data)


def describe(connection):
    return connection.describe()


def load_and_describe(payload):
    return pickle.loads(payload).describe()


def failure(call, *args, **kwargs):
    """The error that ``call`` raises, then its causes."""
    try:
        call(*args, **kwargs)
    except Exception as e:
        chain = []
        while e is not None:
            chain.append(f"{type(e).__name__}: {e}")
            e = e.__cause__
        return chain
'''


@pytest.fixture
def run_example(tmp_path):
    """Run a script with ``seed_helpers`` importable and LOKY_PICKLER set as asked (or unset)."""
    (tmp_path / "seed_helpers.py").write_text(SEED_HELPERS)

    def run(body, loky_pickler=None):
        env = dict(os.environ, PYTHONPATH=str(tmp_path))
        env.pop("LOKY_PICKLER", None)
        if loky_pickler is not None:
            env["LOKY_PICKLER"] = loky_pickler
        return json.loads(run_script(body, env=env))

    return run


HEADER = """
    import json, os
    from loky import get_reusable_executor
    from cloudpickle_ipy.core import wrap_non_picklable_objects
    from seed_helpers import kind, process, process_with, try_sending
"""


LAMBDA = HEADER + """
    if __name__ == "__main__":
        square = wrap_non_picklable_objects(lambda x: x ** 2)
        executor = get_reusable_executor(max_workers=2)
        try:
            print(json.dumps({
                "map": list(executor.map(square, range(6))),
                "there": executor.submit(kind, square).result(),
                "bare": executor.submit(
                    kind, wrap_non_picklable_objects(lambda x: x, keep_wrapper=False)).result(),
                "unwrapped": try_sending(executor, lambda x: x ** 2),
            }))
        finally:
            executor.shutdown(wait=True)
"""


@pytest.mark.parametrize("loky_pickler", LOKY_PICKLERS)
def test_wrapping_a_lambda(run_example, loky_pickler):
    result = run_example(LAMBDA, loky_pickler)
    assert result["map"] == [0, 1, 4, 9, 16, 25]
    assert result["there"] == ["CallableObjectWrapper", True, True]
    assert result["bare"] == ["function", False, False]
    assert result["unwrapped"] == ("sent" if loky_pickler == OURS else "failed")


INTERACTIVE_FUNCTION = HEADER + """
    if __name__ == "__main__":
        OFFSET = 100

        def halve(x):
            return x / 2

        @wrap_non_picklable_objects
        def interactive_function(x):
            return halve(x) + OFFSET, os.getpid()

        def not_wrapped(x):
            return x

        executor = get_reusable_executor(max_workers=2)
        try:
            value, pid = executor.submit(interactive_function, 10).result()
            print(json.dumps({
                "value": value,
                "other_process": pid != os.getpid(),
                "name": interactive_function.__name__,
                "results": [v for v, _ in executor.map(interactive_function, [2, 4])],
                "unwrapped": try_sending(executor, not_wrapped),
            }))
        finally:
            executor.shutdown(wait=True)
"""


@pytest.mark.parametrize("loky_pickler", LOKY_PICKLERS)
def test_wrapping_an_interactively_defined_function(run_example, loky_pickler):
    result = run_example(INTERACTIVE_FUNCTION, loky_pickler)
    assert result == {
        "value": 105.0, "other_process": True, "name": "interactive_function",
        "results": [101.0, 102.0],
        "unwrapped": "sent" if loky_pickler == OURS else "failed",
    }


CLASS = HEADER + """
    if __name__ == "__main__":
        @wrap_non_picklable_objects
        class DataProcessor:
            def __init__(self, multiplier):
                self.multiplier = multiplier

            def process(self, data):
                return [x * self.multiplier for x in data]

        class NotWrapped:
            pass

        executor = get_reusable_executor(max_workers=2)
        try:
            print(json.dumps({
                "used_there": executor.submit(process_with, DataProcessor, [1, 2, 3]).result(),
                "instance_there": executor.submit(process, DataProcessor(10), [1, 2]).result(),
                "made_there": executor.submit(DataProcessor, 7).result().multiplier,
                "unwrapped": try_sending(executor, NotWrapped),
            }))
        finally:
            executor.shutdown(wait=True)
"""


@pytest.mark.parametrize("loky_pickler", LOKY_PICKLERS)
def test_wrapping_a_class_and_using_it_inside_a_worker_function(run_example, loky_pickler):
    result = run_example(CLASS, loky_pickler)
    assert result == {
        "used_there": [[3, 6, 9], "DataProcessor", True], "instance_there": [10, 20],
        "made_there": 7,
        "unwrapped": "sent" if loky_pickler == OURS else "failed",
    }


PARTIAL = """
    import json
    from functools import partial
    from loky import get_reusable_executor, set_loky_pickler
    from seed_helpers import qualified_kind

    if __name__ == "__main__":
        set_loky_pickler("cloudpickle_ipy.core")

        def multiply_and_add(x, multiplier, addend):
            return x * multiplier + addend

        partial_func = partial(multiply_and_add, multiplier=3, addend=10)
        nested = partial(partial(lambda a, b, c: [a, b, c], 1), c=3)
        executor = get_reusable_executor(max_workers=2)
        try:
            print(json.dumps({
                "map": list(executor.map(partial_func, range(5))),
                "nested": executor.submit(nested, 2).result(),
                "there": executor.submit(qualified_kind, partial_func).result(),
            }))
        finally:
            executor.shutdown(wait=True)
"""


def test_a_partial_of_an_interactive_function_is_sent_without_wrapping(run_example):
    assert run_example(PARTIAL) == {
        "map": [10, 13, 16, 19, 22], "nested": [1, 2, 3], "there": "functools.partial"}


# A custom pickler, in a module of its own (loky takes a module name and uses its ``Pickler``):
# our Pickler, plus a reducer_override of its own that sends fractions as floats.
CUSTOM_PICKLER_MODULE = '''
import fractions

from cloudpickle_ipy.core import Pickler as ByValuePickler


class Pickler(ByValuePickler):
    def reducer_override(self, obj):
        if type(obj) is fractions.Fraction:
            return float, (float(obj),)
        return super().reducer_override(obj)
'''

CUSTOM_PICKLER = """
    import json
    from fractions import Fraction
    from loky import get_reusable_executor, set_loky_pickler
    from loky.backend.reduction import get_loky_pickler, get_loky_pickler_name
    from cloudpickle_ipy.core import Pickler
    from seed_helpers import kind

    if __name__ == "__main__":
        default = get_loky_pickler_name()
        set_loky_pickler("fraction_pickler")
        executor = get_reusable_executor(max_workers=1)
        try:
            custom = {
                "name": get_loky_pickler_name(),
                "by_value": issubclass(get_loky_pickler(), Pickler),
                "lambda": executor.submit(lambda x: [type(x).__name__, x], Fraction(1, 4)).result(),
            }
            set_loky_pickler(None)
            reset = {
                "name": get_loky_pickler_name(),
                "is_ours": issubclass(get_loky_pickler(), Pickler),
                "fraction_there": executor.submit(kind, Fraction(1, 4)).result()[0],
            }
            print(json.dumps({"default": default, "custom": custom, "reset": reset}))
        finally:
            executor.shutdown(wait=True)
"""


@pytest.mark.parametrize("default", [None, OURS], ids=["loky's default", "LOKY_PICKLER=ours"])
def test_a_custom_pickler_set_as_lokys_pickler_and_reset(run_example, tmp_path, default):
    (tmp_path / "fraction_pickler.py").write_text(CUSTOM_PICKLER_MODULE)
    result = run_example(CUSTOM_PICKLER, default)
    assert result["default"] == (default or "cloudpickle")
    assert result["custom"] == {
        "name": "fraction_pickler", "by_value": True, "lambda": ["float", 0.25]}
    # set_loky_pickler(None) returns loky to its default: the fraction travels as itself again.
    assert result["reset"] == {
        "name": result["default"], "is_ours": default == OURS, "fraction_there": "Fraction"}


# A type that cannot be pickled as it is (it holds a lock), with a reducer that sends its address.
CONNECTION = """
    import io, json, threading
    from loky import get_reusable_executor, set_loky_pickler
    from cloudpickle_ipy.core import dump, dumps, register
    from seed_helpers import describe, failure, load_and_describe

    if __name__ == "__main__":
        set_loky_pickler("cloudpickle_ipy.core")

        class Connection:
            def __init__(self, address):
                self.address = address
                self.lock = threading.Lock()

            def describe(self):
                return f"{type(self).__name__} to {self.address}, lock {type(self.lock).__name__}"

        def reduce_connection(connection):
            return Connection, (connection.address,)

        executor = get_reusable_executor(max_workers=1)
        try:
            {example}
        finally:
            executor.shutdown(wait=True)
"""

REGISTERED = """
            before = failure(lambda: executor.submit(describe, Connection("db:1")).result())
            register(Connection, reduce_connection)
            print(json.dumps({
                "before": before,
                "task": executor.submit(describe, Connection("db:1")).result(),
                "lambda": executor.submit(lambda c: c.describe(), Connection("db:2")).result(),
                "dumps": load_and_describe(dumps(Connection("db:3"))),
            }))
"""

PER_CALL = """
            reducers = {Connection: reduce_connection}
            file = io.BytesIO()
            dump(Connection("db:4"), file, reducers=reducers)
            print(json.dumps({
                "task": executor.submit(
                    load_and_describe, dumps(Connection("db:1"), reducers=reducers)).result(),
                "protocol_2": executor.submit(
                    load_and_describe, dumps(Connection("db:2"), 2, reducers=reducers)).result(),
                "dump": executor.submit(load_and_describe, file.getvalue()).result(),
                "next_call": failure(dumps, Connection("db:3")),
                "loky_order": failure(dumps, Connection("db:3"), reducers),
            }))
"""


def test_a_custom_type_with_its_own_reducer_given_through_register(run_example):
    result = run_example(CONNECTION.replace("{example}", REGISTERED.strip()))
    assert any("TypeError: cannot pickle '_thread.lock' object: found at obj.args[0].lock" in error
               for error in result["before"])
    assert result["task"] == "Connection to db:1, lock lock"
    assert result["lambda"] == "Connection to db:2, lock lock"
    assert result["dumps"] == "Connection to db:3, lock lock"


def test_a_custom_type_with_its_own_reducer_given_through_reducers_for_one_call(run_example):
    result = run_example(CONNECTION.replace("{example}", PER_CALL.strip()))
    assert result["task"] == "Connection to db:1, lock lock"
    assert result["protocol_2"] == "Connection to db:2, lock lock"
    assert result["dump"] == "Connection to db:4, lock lock"
    assert result["next_call"][0] == ("TypeError: cannot pickle '_thread.lock' object: "
                                      "found at obj.lock")
    assert result["loky_order"][0] == ("TypeError: protocol must be an int, not a dict: "
                                       "pass reducers as reducers=")
