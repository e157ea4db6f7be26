"""Run the core test suite on every other supported CPython (3.9-3.13), and the extension's on 3.9.

Each interpreter found by ``pyenv_interpreters()`` (other than the one running this) gets a venv,
``.cache/venvs/py<ver>`` (see :mod:`tests.venvs`: made on first use, announced, reused), with
``.[core-test]`` installed in editable mode; then ``python -m pytest tests/core`` runs there and must
pass. Python 3.9 gets ``.[extension-test]`` and runs ``tests/extension`` as well: its newest IPython
is 8.x (9.x elsewhere). The repository's pytest ``addopts`` (nbval options) are dropped there:
``.[core-test]`` has no nbval. ``pytest tests/test_python_versions.py -k 3.12`` runs one version.
"""
import hashlib
import subprocess
import sys

import pytest

from tests import venvs
from tests.fresh import pyenv_interpreters

ROOT = venvs.ROOT
SUPPORTED = ["3.9", "3.10", "3.11", "3.12", "3.13"]
HERE = f"{sys.version_info.major}.{sys.version_info.minor}"
TIMEOUT = 15 * 60
# What each version installs and tests, beyond the default (the core only, to keep CI fast).
EXTRA = {"3.9": "extension-test"}
TESTS = {"3.9": ["tests/core", "tests/extension"]}


def _tail(text, lines=60):
    return "\n".join(text.splitlines()[-lines:])


def _ensure_venv(version, base_python):
    """The venv of ``version``, remade when pyproject.toml or the extra changed, or when its
    cloudpickle_ipy is not this checkout's."""
    extra = EXTRA.get(version, "core-test")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    probe = ("import cloudpickle_ipy, pathlib, sys; "
             "sys.exit(pathlib.Path(cloudpickle_ipy.__file__).resolve().parents[1] != "
             f"pathlib.Path({str(ROOT)!r}))")
    return venvs.ensure(f"py{version}", base_python, ["-e", f".[{extra}]"],
                        f"{digest} .[{extra}]", probe)


def test_all_supported_interpreters_are_available():
    found = pyenv_interpreters()
    missing = [v for v in SUPPORTED if v not in found]
    assert not missing, (f"CPython {', '.join(missing)} not found via pyenv or PATH; "
                         f"install them (e.g. `pyenv install {missing[0]}`) to test every "
                         f"supported version")


@pytest.mark.parametrize("version", [v for v in SUPPORTED if v != HERE])
def test_suite_passes_on(version):
    found = pyenv_interpreters()
    if version not in found:
        pytest.fail(f"CPython {version} not found via pyenv or PATH (found: {sorted(found)})")
    venv = _ensure_venv(version, found[version])
    python = venv / "bin" / "python"
    tests = TESTS.get(version, ["tests/core"])
    try:
        proc = subprocess.run([str(python), "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider",
                               "-o", "addopts="], cwd=ROOT, env=venvs.clean_env(venv),
                              capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' and '.join(tests)} on Python {version}: no result after {TIMEOUT} s")
    assert proc.returncode == 0, (
        f"{' and '.join(tests)} failed on Python {version} (exit {proc.returncode}):\n"
        f"{_tail(proc.stdout + proc.stderr)}")
