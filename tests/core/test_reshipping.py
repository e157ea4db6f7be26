"""Re-shipping after a change (issue 12, item 5): a class that a process has loaded arrives again in
a newer payload and takes that payload's methods and class attributes, while staying the same class
(existing instances see the new code); each payload's functions get fresh globals; and a class
defined in the loading process itself keeps its own state when an older copy of it comes back.
"""
import pickle

import cloudpickle_ipy.core as cloudpickle
from tests.fresh import define, load_fresh, run_script

CLASS_SOURCE = """
    LABEL = "v"

    class Greeter:
        greeting = "hello"
        retired = "still here"

        def __init__(self, name):
            self.name = name

        def greet(self):
            return f"{self.greeting} {self.name} ({LABEL}1)"

        def old_only(self):
            return "old"
"""


def test_newer_payload_of_a_loaded_class_replaces_its_methods_and_attributes():
    ns = define(CLASS_SOURCE)
    first = cloudpickle.dumps(ns.Greeter("ann"))

    # Edited in the notebook after the first shipment: a method patched, one added, one removed,
    # a class attribute changed and one removed.
    def greet(self):
        return f"{self.greeting}, {self.name}! (v2)"

    ns.Greeter.greet = greet
    ns.Greeter.shout = lambda self: self.name.upper()
    del ns.Greeter.old_only
    ns.Greeter.greeting = "hi"
    del ns.Greeter.retired
    second = cloudpickle.dumps([ns.Greeter, ns.Greeter("bob")])

    check = """
old = pickle.loads(obj[0])
before = [old.greet(), old.old_only(), type(old).retired]
cls, new = pickle.loads(obj[1])
result = before + [cls is type(old), type(new) is cls, isinstance(old, cls), old.greet(),
                   new.greet(), old.shout(), hasattr(cls, "old_only"), hasattr(cls, "retired"),
                   cls.greeting]
"""
    assert load_fresh(pickle.dumps([first, second]), check) == [
        "hello ann (v1)", "old", "still here",
        True, True, True, "hi, ann! (v2)", "hi, bob! (v2)", "ANN", False, False, "hi"]


def test_each_payload_gets_fresh_globals():
    ns = define("""
        calls = 0

        def bump():
            global calls
            calls = calls + 1
            return calls

        class Tally:
            def bump(self):
                global calls
                calls = calls + 1
                return calls
    """)
    payload = cloudpickle.dumps([ns.bump, ns.Tally])
    check = """
calls = []
for _ in range(3):
    bump, tally = pickle.loads(obj)
    calls.append((bump(), bump(), tally().bump()))
result = calls
"""
    # Within one payload the function and the method share their module's globals; each new
    # payload starts again from the shipped value.
    assert load_fresh(pickle.dumps(payload), check) == [(1, 2, 3)] * 3


def test_reshipped_class_methods_see_the_newer_payloads_globals():
    ns = define("""
        RATE = 2

        class Price:
            def total(self, n):
                return n * RATE
    """)
    first = cloudpickle.dumps(ns.Price)
    vars(ns.Price)["total"].__globals__["RATE"] = 5  # the notebook ran RATE = 5
    second = cloudpickle.dumps(ns.Price)
    check = """
a = pickle.loads(obj[0])
item = a()
before = item.total(10)
b = pickle.loads(obj[1])
result = [before, a is b, item.total(10)]
"""
    assert load_fresh(pickle.dumps([first, second]), check) == [20, True, 50]


def test_class_defined_here_keeps_its_own_state_when_an_older_copy_comes_back():
    out = run_script("""
        import pickle, sys
        import cloudpickle_ipy.core as cloudpickle

        class Model:
            version = 1

            def run(self):
                return "run v1"

        old_payload = cloudpickle.dumps([Model, Model()])

        def run(self):
            return "run v2"

        Model.run = run
        Model.version = 2
        back, instance = pickle.loads(old_payload)
        print(back is Model, type(instance) is Model, Model.version, instance.run(), sep=",")
    """)
    assert out.decode().strip() == "True,True,2,run v2"
