"""By-value code made by one Python version is refused by another, with a message naming both.

Bytecode differs between CPython minor versions, so loading it elsewhere must fail cleanly (an
``pickle.UnpicklingError`` subclass) instead of building a broken code object. Payloads that hold
no by-value code (plain data, functions by reference) still cross versions.
"""
import pickle
import sys

import pytest

from cloudpickle_ipy.core import dumps
from tests.fresh import FreshProcessError, define, load_fresh, pyenv_interpreters, run_script

HERE = f"{sys.version_info.major}.{sys.version_info.minor}"
# Two other versions, whichever interpreter runs these tests.
OTHERS = [v for v in ("3.12", "3.10", "3.13") if v != HERE][:2]

BY_VALUE_SCRIPT = """
    import sys
    from cloudpickle_ipy.core import dumps

    def nested(x):
        return x * 3

    square = lambda x: x * x
    payload = dumps({"fns": [square, 1, "two"], "deep": {"k": [nested]}})
    with open(sys.argv[1], "wb") as f:
        f.write(payload)
"""

PLAIN_SCRIPT = """
    import os.path, sys
    from cloudpickle_ipy.core import dumps

    payload = dumps({"data": [1, 2.5, "three", (4, None)], "join": os.path.join})
    with open(sys.argv[1], "wb") as f:
        f.write(payload)
"""

# In the fresh process: unpickle the inner payload and report the exception it raised.
CATCH = """
try:
    pickle.loads(obj)
except Exception as exc:
    result = (isinstance(exc, pickle.UnpicklingError), type(exc).__name__, str(exc))
else:
    result = None
"""


def interpreter(version):
    found = pyenv_interpreters()
    if version not in found:
        pytest.fail(f"Python {version} not found via pyenv or PATH (found: {sorted(found)}); "
                    f"install it (e.g. `pyenv install {version}`) to run the cross-version tests")
    return found[version]


def payload_from(version, script, tmp_path):
    out = tmp_path / f"payload-{version}.pkl"
    run_script(script, out, python=interpreter(version))
    return out.read_bytes()


def by_value_payload_here():
    ns = define("""
        def nested(x):
            return x * 3

        square = lambda x: x * x
    """)
    return dumps({"fns": [ns.square, 1, "two"], "deep": {"k": [ns.nested]}})


def assert_refused(error, maker, loader):
    assert isinstance(error, FreshProcessError)
    # The exception's own lines: everything after the traceback's (indented) frame lines.
    lines = error.stderr.strip().splitlines()
    start = max([i + 1 for i, line in enumerate(lines) if line.startswith(" ")], default=0)
    message = "\n".join(lines[start:])
    assert maker in message and loader in message, error.stderr
    assert "RecursionError" not in error.stderr and "SystemError" not in error.stderr


@pytest.mark.parametrize("other", OTHERS)
def test_payload_from_other_version_is_refused_here(other, tmp_path):
    payload = payload_from(other, BY_VALUE_SCRIPT, tmp_path)
    with pytest.raises(FreshProcessError) as info:
        load_fresh(payload, "obj['fns'][0](3)")
    assert_refused(info.value, other, HERE)


@pytest.mark.parametrize("other", OTHERS)
def test_refusal_is_an_unpickling_error_naming_both_versions(other, tmp_path):
    payload = payload_from(other, BY_VALUE_SCRIPT, tmp_path)
    is_unpickling_error, name, message = load_fresh(pickle.dumps(payload), CATCH)
    assert is_unpickling_error, name
    assert other in message and HERE in message


@pytest.mark.parametrize("other", OTHERS)
def test_payload_from_here_is_refused_by_other_version(other):
    payload = by_value_payload_here()
    with pytest.raises(FreshProcessError) as info:
        load_fresh(payload, "obj['deep']['k'][0](2)", python=interpreter(other))
    assert_refused(info.value, HERE, other)
    result = load_fresh(pickle.dumps(payload), CATCH, python=interpreter(other))
    assert result[0] and HERE in result[2] and other in result[2], result


def test_refusal_between_two_other_versions(tmp_path):
    maker, loader = OTHERS
    payload = payload_from(maker, BY_VALUE_SCRIPT, tmp_path)
    with pytest.raises(FreshProcessError) as info:
        load_fresh(payload, "obj['fns'][0](3)", python=interpreter(loader))
    assert_refused(info.value, maker, loader)


@pytest.mark.parametrize("other", OTHERS)
def test_payload_without_by_value_code_crosses_versions(other, tmp_path):
    payload = payload_from(other, PLAIN_SCRIPT, tmp_path)
    assert load_fresh(payload, "[obj['data'], obj['join']('a', 'b')]") == \
        [[1, 2.5, "three", (4, None)], "a/b"]


@pytest.mark.parametrize("other", OTHERS)
def test_same_version_payload_still_loads(other, tmp_path):
    # The refusal keys on the version, not on the interpreter binary: same version loads fine.
    payload = payload_from(other, BY_VALUE_SCRIPT, tmp_path)
    assert load_fresh(payload, "[obj['fns'][0](3), obj['deep']['k'][0](2)]",
                      python=interpreter(other)) == [9, 6]
