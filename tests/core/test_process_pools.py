"""Process pools: our Pickler as loky's pickler, and wrap_non_picklable_objects under plain pickle.

Every task runs in a real worker process. Objects meant to be "interactive" are defined in a real
``__main__`` script under its ``if __name__ == "__main__":`` guard: spawn and loky workers re-run
the script as ``__mp_main__`` without that block, so they cannot import those objects by name,
just as they could not import what was typed into a notebook. The scripts check that too.
"""
import abc
import json
import os
import pickle

import pytest
from loky import get_reusable_executor, set_loky_pickler
from loky.backend.reduction import get_loky_pickler, get_loky_pickler_name

from cloudpickle_ipy.core import Pickler, wrap_non_picklable_objects
from tests.fresh import define, load_fresh, run_script


@pytest.fixture
def loky_with_our_pickler():
    set_loky_pickler("cloudpickle_ipy.core")
    executor = get_reusable_executor(max_workers=2)
    try:
        yield executor
    finally:
        executor.shutdown(wait=True)
        set_loky_pickler()


def test_set_loky_pickler_runs_lambdas_and_closures_in_workers(loky_with_our_pickler):
    assert get_loky_pickler_name() == "cloudpickle_ipy.core"
    assert issubclass(get_loky_pickler(), Pickler)
    offset = 10

    def add_offset(x):
        return x + offset, os.getpid()

    assert loky_with_our_pickler.submit(lambda x: x * offset, 4).result() == 40
    value, worker_pid = loky_with_our_pickler.submit(add_offset, 5).result()
    assert value == 15 and worker_pid != os.getpid()


# Runs lambdas, a closure and an interactive class's instances on a loky pool; {select} chooses the
# pickler (or leaves it to LOKY_PICKLER). Prints one JSON line of results.
LOKY_SCRIPT = """
    import json, os, sys
    from loky import get_reusable_executor, set_loky_pickler
    from loky.backend.reduction import get_loky_pickler_name

    def main_has(name):
        return hasattr(sys.modules["__main__"], name)

    if __name__ == "__main__":
        {select}
        factor = 3

        class Counter:
            def __init__(self, start):
                self.count = start

            def bump(self):
                self.count += factor
                return self

        def times(x):
            return x * factor

        executor = get_reusable_executor(max_workers=2)
        try:
            bumped = executor.submit(Counter(4).bump).result()
            made_there, pid = executor.submit(lambda: (Counter(1).bump(), os.getpid())).result()
            print(json.dumps({{
                "pickler": get_loky_pickler_name(),
                "lambda": executor.submit(lambda x: x + factor, 1).result(),
                "closure": executor.submit(times, 5).result(),
                "bumped": [type(bumped) is Counter, bumped.count],
                "made_there": [type(made_there) is Counter, made_there.count],
                "other_process": pid != os.getpid(),
                "worker_sees_counter": executor.submit(main_has, "Counter").result(),
            }}))
        finally:
            executor.shutdown(wait=True)
"""

LOKY_EXPECTED = {
    "pickler": "cloudpickle_ipy.core", "lambda": 4, "closure": 15, "bumped": [True, 7],
    "made_there": [True, 4], "other_process": True, "worker_sees_counter": False,
}


def test_set_loky_pickler_runs_interactive_classes_in_workers():
    out = run_script(LOKY_SCRIPT.format(select='set_loky_pickler("cloudpickle_ipy.core")'))
    assert json.loads(out) == LOKY_EXPECTED


def test_loky_pickler_env_var_selects_our_pickler_at_import():
    env = dict(os.environ, LOKY_PICKLER="cloudpickle_ipy.core")
    out = run_script(LOKY_SCRIPT.format(select="pass"), env=env)
    assert json.loads(out) == LOKY_EXPECTED


# A stdlib ProcessPoolExecutor with spawn workers, which unpickle with plain pickle. The helpers
# above the guard are importable by the workers; the wrapped objects are not. Prints JSON.
SPAWN_SCRIPT = """
    import json, multiprocessing, sys
    from concurrent.futures import ProcessPoolExecutor
    from cloudpickle_ipy.core import wrap_non_picklable_objects

    def main_has(*names):
        return [hasattr(sys.modules["__main__"], name) for name in names]

    def describe(obj):
        return type(obj).__module__ + "." + type(obj).__qualname__

    def call(func, *args):
        return func(*args), describe(func), func.__name__, func.tag

    def build(cls, start):
        made = cls(start)
        return (made.total(), made.UNIT, cls.twice(start), cls.__name__,
                [c.__name__ for c in cls.__mro__], type(cls).__name__)

    def use_instance(made):
        return made.total(), made.start

    if __name__ == "__main__":
        step = 7
        add_step = lambda x: x + step
        add_step.tag = "lambda"

        def scale(x):
            return x * step
        scale.tag = "closure"

        class Account:
            UNIT = "eur"

            def __init__(self, start):
                self.start = start

            def total(self):
                return self.start + step

            @classmethod
            def twice(cls, x):
                return 2 * x

        wrapped_lambda = wrap_non_picklable_objects(add_step)
        wrapped_closure = wrap_non_picklable_objects(scale)
        bare_lambda = wrap_non_picklable_objects(add_step, keep_wrapper=False)
        WrappedAccount = wrap_non_picklable_objects(Account)
        BareAccount = wrap_non_picklable_objects(Account, keep_wrapper=False)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
            returned = pool.submit(WrappedAccount, 5).result()
            print(json.dumps({
                "worker_sees": pool.submit(main_has, "add_step", "scale", "Account").result(),
                "here": [wrapped_lambda(1), wrapped_closure.__name__, wrapped_closure.tag,
                         WrappedAccount.UNIT, WrappedAccount(1).total(),
                         isinstance(WrappedAccount(1), Account)],
                "lambda": pool.submit(call, wrapped_lambda, 1).result(),
                "closure": pool.submit(call, wrapped_closure, 2).result(),
                "bare_lambda": pool.submit(call, bare_lambda, 3).result(),
                "direct": pool.submit(wrapped_closure, 3).result(),
                "class": pool.submit(build, WrappedAccount, 1).result(),
                "bare_class": pool.submit(build, BareAccount, 2).result(),
                "instance_there": pool.submit(use_instance, WrappedAccount(10)).result(),
                "instance_back": [type(returned) is WrappedAccount, returned.total()],
            }))
"""


def test_spawn_pool_runs_wrapped_lambdas_closures_and_classes():
    result = json.loads(run_script(SPAWN_SCRIPT))
    wrapper = "cloudpickle_ipy.core.wrappers.CallableObjectWrapper"
    assert result["worker_sees"] == [False, False, False]
    assert result["here"] == [8, "scale", "closure", "eur", 8, True]
    assert result["lambda"] == [8, wrapper, "<lambda>", "lambda"]
    assert result["closure"] == [14, wrapper, "scale", "closure"]
    assert result["bare_lambda"] == [10, "builtins.function", "<lambda>", "lambda"]
    assert result["direct"] == 21
    # The worker's class is a wrapped subclass of the rebuilt Account, or Account itself.
    assert result["class"] == [8, "eur", 2, "Account", ["Account", "Account", "object"],
                               "_WrappedClassType"]
    assert result["bare_class"] == [9, "eur", 4, "Account", ["Account", "object"], "type"]
    assert result["instance_there"] == [17, 10]
    assert result["instance_back"] == [True, 12]


def test_wrapped_class_keeps_its_metaclass_and_subclasses_travel_by_value():
    ns = define("""
        import abc

        class Shape(abc.ABC):
            @abc.abstractmethod
            def area(self): ...

        class Square(Shape):
            def __init__(self, side):
                self.side = side

            def area(self):
                return self.side ** 2
    """)
    Wrapped = wrap_non_picklable_objects(ns.Square)
    assert isinstance(Wrapped, abc.ABCMeta) and issubclass(Wrapped, ns.Square)
    assert wrap_non_picklable_objects(Wrapped) is Wrapped

    class Bigger(Wrapped):
        def area(self):
            return 10 * super().area()

    check = "[obj(3).area(), isinstance(obj(3), obj.__mro__[2]), type(obj).__name__]"
    assert load_fresh(pickle.dumps(Wrapped), check) == [9, True, "_WrappedABCMeta"]
    check = "[obj(2).area(), [c.__name__ for c in obj.__mro__[:4]]]"
    assert load_fresh(pickle.dumps(Bigger), check) == [40, ["Bigger", "Square", "Square", "Shape"]]


def test_class_that_refuses_subclasses_is_wrapped_as_a_callable():
    ns = define("""
        import enum

        class Color(enum.Enum):
            RED = 1
            BLUE = 2
    """)
    wrapped = wrap_non_picklable_objects(ns.Color)
    assert wrapped.RED is ns.Color.RED and wrapped(2) is ns.Color.BLUE
    check = "[obj(1).name, obj.BLUE.value, type(obj).__name__]"
    assert load_fresh(pickle.dumps(wrapped), check) == ["RED", 2, "CallableObjectWrapper"]
