"""Payloads are deterministic, and dynamic classes keep (only their own) identity when loaded.

Same code pickled in two processes with different ``PYTHONHASHSEED`` gives the same bytes (caches
and content hashes rely on it), on every supported interpreter. Loading the same class twice in one
process gives one class; two different classes that share a name stay two classes.
"""
import os
import pickle
import textwrap

import pytest

from cloudpickle_ipy.core import dumps
from tests.fresh import define, load_fresh, pyenv_interpreters, run_script

VERSIONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]

BODY = """
    import sys
    from cloudpickle_ipy.core import dumps

    SCALE = 3
    LABELS = ("x", "y")

    def make_adder(k):
        def add(x, y=10, *, z=(1, "two")):
            class Local:
                tag = "local"

                def twice(self, v):
                    return 2 * v

            if x in {"a", "b", "c", "d", "e", "f"}:
                return "letter"
            return Local().twice(x + y + k) * SCALE
        return add

    adder = make_adder(5)

    class Shape:
        sides = 4
        names = {"square": 4, "triangle": 3}
        labels = LABELS

        def __init__(self, size):
            self.size = size

        def area(self):
            return self.size ** 2 * SCALE

        @property
        def perimeter(self):
            return self.sides * self.size

        @classmethod
        def unit(cls):
            return cls(1)

        @staticmethod
        def kind():
            return "shape"

    sys.stdout.buffer.write(dumps([adder, Shape, Shape(2)]))
"""

# run_script's file lives in a new temp dir each time; code objects record their file name, so
# the body runs in the real ``__main__`` module under a fixed file name.
SCRIPT = f"exec(compile({textwrap.dedent(BODY)!r}, '/fixed/script.py', 'exec'), globals())\n"

CHECK = ("[obj[0](1), obj[0]('e'), obj[1].unit().perimeter, obj[2].area(), obj[1].kind(), "
         "obj[1].names, obj[1].labels]")


def interpreter(version):
    found = pyenv_interpreters()
    if version not in found:
        pytest.fail(f"Python {version} not found via pyenv or PATH (found: {sorted(found)})")
    return found[version]


@pytest.mark.parametrize("version", VERSIONS)
def test_same_code_gives_same_bytes_across_hash_seeds(version):
    python = interpreter(version)
    payloads = [run_script(SCRIPT, python=python, env=dict(os.environ, PYTHONHASHSEED=seed))
                for seed in ("1", "2", "12345")]
    assert payloads[0] == payloads[1] == payloads[2]
    assert load_fresh(payloads[0], CHECK, python=python) == \
        [96, "letter", 4, 12, "shape", {"square": 4, "triangle": 3}, ("x", "y")]


def test_class_loaded_twice_in_one_process_is_one_class():
    ns = define("""
        class Counter:
            def __init__(self, value):
                self.value = value

        def make():
            return Counter(7)
    """)
    payloads = [dumps(ns.Counter), dumps(ns.Counter), dumps(ns.Counter(5)), dumps(ns.make)]
    check = """
first, second, instance, make = [pickle.loads(p) for p in obj]
result = [first is second, isinstance(instance, first), type(instance) is first,
          instance.value, isinstance(make(), first)]
"""
    assert load_fresh(pickle.dumps(payloads), check) == [True, True, True, 5, True]


def test_redefined_class_with_same_name_stays_distinct():
    first = define("""
        class Point:
            kind = "first"
    """).Point
    second = define("""
        class Point:
            kind = "second"

            def norm(self):
                return 1
    """).Point
    assert first.__qualname__ == second.__qualname__ and first.__module__ == second.__module__
    payloads = [dumps(first), dumps(second), dumps([first, second])]
    check = """
a, b, both = [pickle.loads(p) for p in obj]
result = [a is b, a.kind, b.kind, hasattr(a, "norm"), both[0] is both[1],
          both[0].kind, both[1].kind, both[0] is a, both[1] is b]
"""
    assert load_fresh(pickle.dumps(payloads), check) == \
        [False, "first", "second", False, False, "first", "second", True, True]
