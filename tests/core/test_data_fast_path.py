"""``dumps`` lets the C pickler work alone on plain data; what it would send differently falls back.

The C pickler finds functions and classes by name: fine for importable ones, wrong for those of a
real ``__main__`` (where the lookup succeeds in the pickling process only) and of modules registered
by value. And it must still use our reducers for the standard-library objects they handle.
"""
import collections.abc
import fractions
import pickle
import re
import textwrap

import pytest

from cloudpickle_ipy.core import dumps
from tests.fresh import load_fresh, run_script

SCRIPT = """
    import sys
    from cloudpickle_ipy.core import dumps

    FACTOR = 3

    def triple(x):
        return FACTOR * x

    class Counter:
        def __init__(self, start):
            self.count = start

        def bump(self):
            self.count += 1
            return self.count

    # Found by name in this process's __main__: the C pickler alone would send references.
    payloads = [dumps(triple), dumps(list(range(1000)) + [triple]), dumps(Counter(41)),
                dumps({"data": [1.5, "x"], "cls": Counter})]
    sys.stdout.buffer.write(dumps(payloads, protocol=2))
"""


def test_functions_and_classes_of_a_real_main_travel_by_value():
    payloads = pickle.loads(run_script(SCRIPT))
    assert load_fresh(payloads[0], "obj(5)") == 15
    assert load_fresh(payloads[1], "obj[-1](obj[999])") == 2997
    assert load_fresh(payloads[2], "obj.bump()") == 42
    assert load_fresh(payloads[3], "[obj['cls'](1).bump(), obj['data']]") == [2, [1.5, "x"]]


@pytest.fixture
def importable_dataclass(tmp_path, monkeypatch):
    (tmp_path / "shapes_dc.py").write_text(textwrap.dedent("""
        import dataclasses

        @dataclasses.dataclass
        class Shape:
            name: str
            sides: int = 4
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import shapes_dc
    yield shapes_dc, tmp_path
    monkeypatch.delitem(__import__("sys").modules, "shapes_dc")


def test_fields_of_an_importable_dataclass_keep_the_missing_sentinel(importable_dataclass):
    import dataclasses

    module, path = importable_dataclass
    payload = dumps(dataclasses.fields(module.Shape))
    check = ("import dataclasses\n"
             "result = [f.default is dataclasses.MISSING for f in obj]")
    assert load_fresh(payload, check, sys_path=[path]) == [True, False]


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_plain_data_pickles_to_the_same_bytes_as_pickle(protocol):
    # Classes with a metaclass (an ABC, an enum) go by name too.
    data = {"ints": list(range(500)), "nested": [{"a": (1, 2.5, None)}] * 3,
            "fractions": [fractions.Fraction(1, n) for n in range(1, 50)], "text": "é" * 10,
            "flag": re.IGNORECASE, "abc": collections.abc.Mapping}
    assert dumps(data, protocol) == pickle.dumps(data, protocol)
