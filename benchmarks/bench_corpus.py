"""The benchmark corpus: what gets pickled, and how each payload is checked after loading.

Function-heavy cases build their code with ``exec`` into a dict whose ``__name__`` is ``"__main__"``,
so every by-value pickler treats it as notebook code (pickled by value), while the standard pickle
cannot find it by name and is reported ``n/a``. Data-heavy cases use only builtins, the
standard library's datetime and Decimal, numpy, and the importable :class:`Point`, :class:`Reading`
and ``Trade``, so every pickler can do them by reference.

Each builder takes the scale (1.0, or 0.1 for ``--quick``) and returns a :class:`Corpus`. A check
receives ``load`` (which loads the pickler's payloads) so that it can decide what the process looks
like while loading, e.g. with the by-value module hidden.
"""
import collections
import contextlib
import datetime
import decimal
import importlib
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Optional


class Point:
    """An importable class: a pickler must send its instances by reference to the class."""

    def __init__(self, x, y, label):
        self.x = x
        self.y = y
        self.label = label

    def __eq__(self, other):
        return type(other) is Point and vars(self) == vars(other)


class Reading:
    """An importable class with slots (no ``__dict__``): sent by reference, its slots as state."""

    __slots__ = ("sensor", "value", "unit")

    def __init__(self, sensor, value, unit):
        self.sensor, self.value, self.unit = sensor, value, unit

    def __eq__(self, other):
        return type(other) is Reading and all(getattr(self, name) == getattr(other, name)
                                              for name in self.__slots__)


Trade = collections.namedtuple("Trade", "symbol price quantity")


@dataclass
class Corpus:
    """``objects`` are pickled one ``dumps`` call each; ``check(load)`` raises if a load is wrong."""

    objects: list
    check: Callable[[Callable[[], list]], None]
    by_value_module: Any = None  # a module every pickler with a registry registers by value
    out_of_band: bool = False  # whether to pass a buffer_callback
    cleanup: Optional[Callable[[], None]] = None


@dataclass
class Case:
    name: str
    group: str  # "function", "data" or "buffers": which geometric mean it enters
    describe: Callable[[float], str]
    build: Callable[[float], Corpus]


def _count(n, scale):
    return max(1, int(n * scale))


def _main_namespace(**names):
    """A globals dict that passes for ``__main__``: its functions and classes go by value."""
    return {"__name__": "__main__", **names}


def _sample(n, k=25):
    """Up to ``k`` indices spread over ``range(n)``, both ends included."""
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)}) if n > 1 else [0]


def _expect(condition, message):
    if not condition:
        raise AssertionError(message)


# Function-heavy ------------------------------------------------------------------------------------

_LAMBDA_SHAPES = (
    "lambda x: x * {i} + {r}",
    "lambda x, y={i}: (x + y) // {q}",
    "lambda s: str(s) + {t!r}",
    "lambda x: SCALE * x - {i}",
    "lambda *xs: sum(xs, {i}) % {q}",
)


def build_lambdas(scale):
    """Distinct lambdas (each its own code object) in five shapes; one payload holding them all."""
    n = _count(3000, scale)
    lines = [_LAMBDA_SHAPES[i % len(_LAMBDA_SHAPES)].format(i=i, r=i % 7, q=i % 5 + 1, t=f"#{i}")
             for i in range(n)]
    namespace = _main_namespace(SCALE=3)
    exec("FUNCTIONS = [\n" + ",\n".join(lines) + "\n]", namespace)
    functions = namespace["FUNCTIONS"]

    def check(load):
        (loaded,) = load()
        _expect(len(loaded) == n, f"{len(loaded)} lambdas, expected {n}")
        for i in _sample(n):
            _expect(loaded[i](11) == functions[i](11), f"lambda {i} gives a different result")
            _expect(loaded[i] is not functions[i], f"lambda {i} came back as the original object")

    return Corpus([functions], check)


_CLOSURE_SOURCE = """
def make_adder(k):
    def add(x):
        return x * SCALE + k
    return add
"""


def build_closures(scale):
    """Closures sharing one code object, each with its own cell; one payload."""
    n = _count(30000, scale)
    namespace = _main_namespace(SCALE=2)
    exec(_CLOSURE_SOURCE, namespace)
    closures = [namespace["make_adder"](i) for i in range(n)]

    def check(load):
        (loaded,) = load()
        _expect(len(loaded) == n, f"{len(loaded)} closures, expected {n}")
        for i in _sample(n):
            _expect(loaded[i](5) == 10 + i, f"closure {i} gives {loaded[i](5)}, expected {10 + i}")

    return Corpus([closures], check)


_CLASS_SOURCE = """
class C{i}(Base):
    scale = {i}

    def __init__(self, x):
        self.x = x

    def value(self):
        return self.x * self.scale + {r}

    @property
    def double(self):
        return 2 * self.value()

    @staticmethod
    def tag():
        return "C{i}"

    @classmethod
    def make(cls, x):
        return cls(x)
"""

_BASE_SOURCE = """
class Base:
    def describe(self):
        return f"{type(self).__name__}({self.x})"
"""


def build_classes(scale):
    """Classes with methods, a property, a staticmethod and a classmethod over one base; one payload.

    Both by-value picklers that track class identity hand back the original class when the payload
    is loaded in the process that defined it, so the check mostly proves the payload loads.
    """
    n = _count(300, scale)
    namespace = _main_namespace()
    exec(_BASE_SOURCE + "".join(_CLASS_SOURCE.format(i=i, r=i % 11) for i in range(n)), namespace)
    classes = [namespace[f"C{i}"] for i in range(n)]

    def check(load):
        (loaded,) = load()
        _expect(len(loaded) == n, f"{len(loaded)} classes, expected {n}")
        for i in _sample(n):
            obj = loaded[i].make(3)
            _expect(obj.double == 2 * (3 * i + i % 11), f"C{i}(3).double is {obj.double}")
            _expect(loaded[i].tag() == f"C{i}" and obj.describe() == f"C{i}(3)",
                    f"C{i}: wrong staticmethod or inherited method")

    return Corpus([classes], check)


_RECORD_SOURCE = """
class Record:
    def __init__(self, i):
        self.id = i
        self.name = "record-%d" % i
        self.value = i * 0.5

    def total(self):
        return self.id + self.value
"""


def build_dynamic_instances(scale):
    """Instances of one class defined in ``__main__``: the class travels by value once."""
    n = _count(100_000, scale)
    namespace = _main_namespace()
    exec(_RECORD_SOURCE, namespace)
    records = [namespace["Record"](i) for i in range(n)]

    def check(load):
        (loaded,) = load()
        _expect(len(loaded) == n, f"{len(loaded)} records, expected {n}")
        _expect(len({type(r) for r in loaded}) == 1, "the records do not share one class")
        for i in _sample(n):
            r = loaded[i]
            _expect((r.id, r.name, r.total()) == (i, f"record-{i}", i * 1.5), f"record {i} differs")

    return Corpus([records], check)


_MODULE_FUNCTION_SHAPES = (
    "def f{i}(x):\n    return x * FACTOR + {i}\n",
    "def f{i}(x):\n    return f{p}(x) - {r}\n",
    "def f{i}(x):\n    return math.floor(math.sqrt(abs(x)) * {i})\n",
    "def f{i}(x, *, k={r}):\n    return [x + j for j in range(k)]\n",
    "def f{i}(x):\n    return helper(x, {i})\n",
)

_MODULE_HEADER = '"""Generated for the benchmark."""\nimport math\n\nFACTOR = 3\n\n\n' \
                 "def helper(x, i):\n    return {'x': x, 'i': i, 'factor': FACTOR}\n\n\n"


def build_module_by_value(scale):
    """Every function of a generated module registered by value (calls, globals, math); one payload.

    The module lives in a temporary directory; the check loads with the module removed from
    ``sys.modules`` and its directory from ``sys.path``, so a payload that refers to the module by
    name (instead of carrying its functions) fails.
    """
    n = _count(300, scale)
    directory = tempfile.mkdtemp(prefix="bench-byvalue-")
    name = f"bench_byvalue_{os.getpid()}"
    with open(os.path.join(directory, name + ".py"), "w") as f:
        f.write(_MODULE_HEADER + "\n\n".join(
            _MODULE_FUNCTION_SHAPES[i % len(_MODULE_FUNCTION_SHAPES)].format(
                i=i, p=max(i - 1, 0), r=i % 4 + 1) for i in range(n)))
    sys.path.insert(0, directory)
    module = importlib.import_module(name)
    functions = [getattr(module, f"f{i}") for i in range(n)]
    expected = {i: functions[i](7) for i in _sample(n)}

    def check(load):
        with _hidden(module, directory):
            (loaded,) = load()
        _expect(len(loaded) == n, f"{len(loaded)} functions, expected {n}")
        for i, value in expected.items():
            _expect(loaded[i](7) == value, f"f{i}(7) differs from the original")
            _expect(loaded[i] is not functions[i], f"f{i} came back as the original (by reference)")

    def cleanup():
        sys.modules.pop(name, None)
        sys.path.remove(directory)
        os.remove(os.path.join(directory, name + ".py"))
        with contextlib.suppress(OSError):
            for entry in os.scandir(os.path.join(directory, "__pycache__")):
                os.remove(entry.path)
            os.rmdir(os.path.join(directory, "__pycache__"))
        os.rmdir(directory)

    return Corpus([functions], check, by_value_module=module, cleanup=cleanup)


@contextlib.contextmanager
def _hidden(module, directory):
    """Make ``module`` unimportable for the duration."""
    sys.modules.pop(module.__name__)
    sys.path.remove(directory)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.insert(0, directory)
        sys.modules[module.__name__] = module


_TASK_SOURCE = """
import collections
import concurrent.futures
import json
import os

import numpy as np


def task(x):
    total = int(np.add(np.arange(4), x).sum()) + {i}
    path = os.path.join("data", str(x))
    text = json.dumps({{"x": x, "path": path}})
    letters = collections.Counter(text)
    return total, path, letters["x"], concurrent.futures.Future.__name__
"""


def build_main_with_packages(scale):
    """Distinct ``__main__`` functions using numpy, os, json, collections and concurrent.futures,
    each pickled in its own ``dumps`` call, like tasks submitted one by one to a pool.

    Each function has its own globals, as it would in its own notebook cell; a pickler that walks
    ``sys.modules`` for the submodules of every package a function uses pays for it on every call.
    """
    n = _count(300, scale)
    tasks = []
    for i in range(n):
        namespace = _main_namespace()
        exec(_TASK_SOURCE.format(i=i), namespace)
        tasks.append(namespace["task"])
    expected = {i: tasks[i](2) for i in _sample(n)}

    def check(load):
        loaded = load()
        _expect(len(loaded) == n, f"{len(loaded)} payloads, expected {n}")
        for i, value in expected.items():
            _expect(loaded[i](2) == value, f"task {i} gives {loaded[i](2)}, expected {value}")

    return Corpus(tasks, check)


# Data-heavy ----------------------------------------------------------------------------------------

def _equal_to(original):
    def check(load):
        (loaded,) = load()
        _expect(loaded == original, "the loaded data differs from the original")
    return check


def build_ints(scale):
    """Ints of every size: small, 32-bit, 40-bit, negative."""
    n = _count(1_000_000, scale)
    ints = [(i * 2654435761) % (1 << 40) - (1 << 39) if i % 3 else i % 1000 for i in range(n)]
    return Corpus([ints], _equal_to(ints))


def build_dicts(scale):
    """Small dicts of str keys to int, str, float and a short list."""
    n = _count(100_000, scale)
    dicts = [{"id": i, "name": f"item-{i}", "price": i / 4, "tags": ["a", i % 10]} for i in range(n)]
    return Corpus([dicts], _equal_to(dicts))


def build_points(scale):
    """Instances of the importable :class:`Point`."""
    n = _count(100_000, scale)
    points = [Point(i, -i * 0.5, f"p{i}") for i in range(n)]

    def check(load):
        (loaded,) = load()
        _expect(all(type(p) is Point for p in loaded), "Point did not travel by reference")
        _expect(loaded == points, "the loaded points differ")

    return Corpus([points], check)


def build_readings(scale):
    """Instances of the importable slotted :class:`Reading`."""
    n = _count(100_000, scale)
    readings = [Reading(f"s{i % 50}", i * 0.25, "degC") for i in range(n)]
    return Corpus([readings], _equal_to(readings))


def build_trades(scale):
    """Named tuples of an importable type."""
    n = _count(100_000, scale)
    trades = [Trade(f"T{i % 300}", i / 8, i % 1000) for i in range(n)]
    return Corpus([trades], _equal_to(trades))


def build_datetimes(scale):
    """Timestamps a second apart, half of them aware."""
    n = _count(100_000, scale)
    start = datetime.datetime(2024, 3, 1)
    utc = datetime.timezone.utc
    stamps = [start + datetime.timedelta(seconds=i) for i in range(n)]
    stamps = [stamp.replace(tzinfo=utc) if i % 2 else stamp for i, stamp in enumerate(stamps)]
    return Corpus([stamps], _equal_to(stamps))


def build_decimals(scale):
    """Prices as Decimal, with cents."""
    n = _count(100_000, scale)
    prices = [decimal.Decimal(i).scaleb(-2) for i in range(n)]
    return Corpus([prices], _equal_to(prices))


def build_strings(scale):
    """Distinct short strings, ASCII and not."""
    n = _count(200_000, scale)
    strings = [f"s{i:x}" if i % 4 else f"é{i}" for i in range(n)]
    return Corpus([strings], _equal_to(strings))


def build_numpy(scale):
    """Two large float64 arrays with protocol 5 and a buffer_callback: the data should go out of
    band, so the payload stays tiny and the loaded arrays are views of the originals' memory."""
    import numpy as np

    n = _count(150 * 2**20 // 8, scale)
    arrays = (np.arange(n, dtype=np.float64), np.linspace(0.0, 1.0, n))

    def check(load):
        (loaded,) = load()
        _expect(all(np.array_equal(a, b) for a, b in zip(loaded, arrays)), "the arrays differ")

    return Corpus([arrays], check, out_of_band=True)


def _numpy_description(scale):
    return f"2 float64 arrays of {_count(150 * 2**20 // 8, scale) * 8 / 2**20:.0f} MB, out of band"


CASES = [
    Case("lambdas", "function", lambda s: f"{_count(3000, s)} distinct lambdas", build_lambdas),
    Case("closures", "function", lambda s: f"{_count(30000, s)} closures over one code object",
         build_closures),
    Case("classes", "function",
         lambda s: f"{_count(300, s)} __main__ classes with methods and properties", build_classes),
    Case("dynamic_instances", "function",
         lambda s: f"{_count(100_000, s)} instances of a __main__ class", build_dynamic_instances),
    Case("module_by_value", "function",
         lambda s: f"{_count(300, s)} functions of a module registered by value",
         build_module_by_value),
    Case("main_with_packages", "function",
         lambda s: f"{_count(300, s)} dumps calls: __main__ functions using numpy, os, json, ...",
         build_main_with_packages),
    Case("ints", "data", lambda s: f"{_count(1_000_000, s)} ints", build_ints),
    Case("dicts", "data", lambda s: f"{_count(100_000, s)} small dicts", build_dicts),
    Case("points", "data", lambda s: f"{_count(100_000, s)} instances of an importable class",
         build_points),
    Case("strings", "data", lambda s: f"{_count(200_000, s)} short strings", build_strings),
    Case("readings", "data", lambda s: f"{_count(100_000, s)} instances of an importable slotted "
         f"class", build_readings),
    Case("trades", "data", lambda s: f"{_count(100_000, s)} named tuples", build_trades),
    Case("datetimes", "data", lambda s: f"{_count(100_000, s)} datetimes, half with a timezone",
         build_datetimes),
    Case("decimals", "data", lambda s: f"{_count(100_000, s)} Decimals", build_decimals),
    Case("numpy_arrays", "buffers", _numpy_description, build_numpy),
]
