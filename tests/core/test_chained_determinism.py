"""Chained determinism (issue 12, item 6): a function or class loaded from a payload pickles again
to the payload's very bytes, also when the loading process uses another ``PYTHONHASHSEED`` and had
interned the payload's names (or not) before loading it.

Process A pickles each object of a corpus (and all of them together); process B loads the bytes and
pickles what it got; the two must be equal. Both are fresh interpreters of the Python running the
tests (``tests/test_python_versions.py`` runs this on every supported version).

Instances are reduced by pickle itself: loading interns their attribute names, so an instance whose
attribute name also appears as a string elsewhere in the payload (not as a name the core writes)
may pickle again with that string written twice. The corpus's instances avoid that on purpose.
"""
import os
import subprocess
import sys
import textwrap

import pytest

from tests.fresh import CHECKOUT, run_script

CORPUS = '''
import abc, dataclasses, enum, functools, sys, typing
from cloudpickle_ipy.core import dumps

SCALE = 3
LABELS = ("left", "right", "value", "label")
SHARED = ("value", 2)

def make_adder(k, value="value"):
    def add(x, y=10, *, z=(1, "two"), value=SHARED):
        class Local:
            tag = "local"
            def twice(self, v):
                return 2 * v
        if x in {"a", "b", "c", "value"}:
            return "letter"
        return Local().twice(x + y + k) * SCALE
    return add

def other(value=SHARED, name="who"):
    return value, name, LABELS

class Gauge:
    units = {"square": 4, "triangle": 3}
    labels = LABELS
    def __init__(self, size):
        self.size = size
    @property
    def reading(self):
        return self.units["square"] * self.size * SCALE

class Documented:
    """Documented."""
    value = "value"
    name = "name"
    __slots__ = ("size", "name_")
    def get(self, value=None):
        return self.value

class Color(enum.Enum):
    RED = "RED"
    GREEN = "green"

@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int = 0
    note: str = "anon"

@dataclasses.dataclass
class Person:  # fields named like Field's own slots
    name: str
    type: str = "human"

class Base(abc.ABC):
    @abc.abstractmethod
    def run(self): ...
    @abc.abstractmethod
    def stop(self): ...

T = typing.TypeVar("T")

class Box(typing.Generic[T]):
    item: T

class Pair(typing.NamedTuple):
    a: int
    b: str = "b"

class Movie(typing.TypedDict, total=False):
    title: str
    year: int

@functools.lru_cache(maxsize=8)
def cached(n):
    return n * SCALE

@functools.singledispatch
def show(x):
    return "object"

@show.register
def _(x: int):
    return "int"

OBJECTS = [make_adder(5), other, Gauge, Documented, Color, Point, Person, Base, Box, Pair, Movie, cached,
           show, Gauge(2), Color.RED, Point(1, 2), Pair(1, "b")]
if sys.version_info >= (3, 12):
    exec("type Tree = int | list[Tree]\\ntype Pairs[K, V: (int, str)] = list[tuple[K, V]]\\n"
         "def first[Q](items: list[Q]) -> Q:\\n    return items[0]\\n", globals())
    OBJECTS += [Tree, Pairs, first]

which = sys.argv[1]
sys.stdout.buffer.write(dumps(OBJECTS if which == "all" else OBJECTS[int(which)]))
'''

# A runs the corpus as __main__ under a fixed file name (code objects record it).
SCRIPT_A = f"exec(compile({CORPUS!r}, '/fixed/corpus.py', 'exec'), globals())\n"

# B interns the given names first (as a process that used them would have), then loads and
# pickles again.
SCRIPT_B = textwrap.dedent("""
    import pickle, sys
    for name in sys.argv[1:]:
        sys.intern(name)
    from cloudpickle_ipy.core import dumps
    sys.stdout.buffer.write(dumps(pickle.loads(sys.stdin.buffer.read())))
""")

INTERNED = ["value", "name", "size", "reading", "units", "get", "self", "twice", "tag", "square",
            "RED", "green", "item", "letter", "local", "title", "year", "run", "stop", "note"]

COUNT = 17 + (3 if sys.version_info >= (3, 12) else 0)


def _env(seed):
    env = dict(os.environ, PYTHONHASHSEED=seed)
    env["PYTHONPATH"] = os.pathsep.join([str(CHECKOUT)] + [
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _again_in_b(payload, seed, interned):
    proc = subprocess.run([sys.executable, "-c", SCRIPT_B, *interned], input=payload,
                          capture_output=True, env=_env(seed), timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


@pytest.mark.parametrize("which", [str(i) for i in range(COUNT)] + ["all"])
def test_pickling_a_loaded_object_again_gives_the_original_bytes(which):
    original = run_script(SCRIPT_A, which, env=_env("1"))
    assert original == run_script(SCRIPT_A, which, env=_env("7"))  # plain determinism first
    for seed, interned in (("2", []), ("3", INTERNED)):
        assert _again_in_b(original, seed, interned) == original, (which, seed)


def test_pickling_again_twice_is_stable_through_a_chain_of_processes():
    payload = run_script(SCRIPT_A, "all", env=_env("1"))
    once = _again_in_b(payload, "5", INTERNED[:5])
    twice = _again_in_b(once, "6", INTERNED[5:])
    assert payload == once == twice
