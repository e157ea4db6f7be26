"""Run the core test suite on every other supported CPython (3.9-3.13), and the extension's on 3.9.

Each interpreter found by ``pyenv_interpreters()`` (other than the one running this) gets a venv at
``<repo>/.venv-py<ver>`` (gitignored, reused when it works) with ``.[core-test]`` installed in
editable mode; then ``python -m pytest tests/core`` runs there and must pass. Python 3.9 gets
``.[test]`` and runs ``tests/extension`` as well: its newest IPython is 8.x (9.x elsewhere).
The repository's pytest ``addopts`` (nbval options) are dropped there: ``.[core-test]`` has no nbval.
"""
import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest

from tests.fresh import pyenv_interpreters

ROOT = Path(__file__).resolve().parents[1]
SUPPORTED = ["3.9", "3.10", "3.11", "3.12", "3.13"]
HERE = f"{sys.version_info.major}.{sys.version_info.minor}"
TIMEOUT = 15 * 60
# What each version installs and tests, beyond the default (the core only, to keep CI fast).
EXTRA = {"3.9": "test"}
TESTS = {"3.9": ["tests/core", "tests/extension"]}
LOCK = Path(tempfile.gettempdir(), f"cloudpickle_ipy-venvs-{zlib.crc32(bytes(ROOT)):08x}.lock")


def _tail(text, lines=60):
    return "\n".join(text.splitlines()[-lines:])


def _run(cmd, env, timeout):
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"")
        out = out.decode(errors="replace") if isinstance(out, bytes) else out
        pytest.fail(f"timed out after {timeout}s: {' '.join(map(str, cmd))}\n{_tail(out)}")
    return proc


def _clean_env(venv=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTEST_ADDOPTS")
           and not k.startswith("PYTEST_XDIST")}
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    return env


def _install_stamp(extra):
    """What the venv was installed from: reinstall when the project's dependencies or the extra
    change."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    return f"{digest} .[{extra}]"


def _venv_ready(venv, extra):
    stamp = venv / ".installed-from"
    if not stamp.exists() or stamp.read_text() != _install_stamp(extra):
        return False
    probe = ("import cloudpickle_ipy, pathlib, sys; "
             "sys.exit(pathlib.Path(cloudpickle_ipy.__file__).resolve().parents[1] != "
             f"pathlib.Path({str(ROOT / 'src')!r}))")
    return subprocess.run([str(venv / "bin" / "python"), "-c", probe], cwd=ROOT,
                          env=_clean_env(), capture_output=True).returncode == 0


def _ensure_venv(version, base_python):
    venv = ROOT / f".venv-py{version}"
    python = venv / "bin" / "python"
    extra = EXTRA.get(version, "core-test")
    # One installer at a time: editable installs all write the same src/*.egg-info.
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _venv_ready(venv, extra):
            return venv
        proc = _run([str(base_python), "-m", "venv", "--clear", str(venv)], _clean_env(), TIMEOUT)
        assert proc.returncode == 0, f"venv creation failed:\n{_tail(proc.stdout + proc.stderr)}"
        proc = _run([str(python), "-m", "pip", "install", "-q", "-e", f".[{extra}]"],
                    _clean_env(venv), TIMEOUT)
        assert proc.returncode == 0, f"pip install failed:\n{_tail(proc.stdout + proc.stderr)}"
        (venv / ".installed-from").write_text(_install_stamp(extra))
    return venv


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
    proc = _run([str(python), "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider",
                 "-o", "addopts="], _clean_env(venv), TIMEOUT)
    assert proc.returncode == 0, (
        f"{' and '.join(tests)} failed on Python {version} (exit {proc.returncode}):\n"
        f"{_tail(proc.stdout + proc.stderr)}")
