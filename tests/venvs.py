"""The virtual environments some tests run in, made on first use and reused after.

They live in ``<checkout>/.cache/venvs/<name>`` (ignored by git; delete the folder to start over):
the per-Python venvs of ``tests/test_python_versions.py`` and the bare kernel venvs of the ship
tests. Making one takes 20 s to 2 min, so each one being made is announced on the terminal, even
while pytest captures output. A venv is remade when what it was made from (its stamp) changed or
its probe fails; one installer at a time, because editable installs write the same egg-info.
"""
import fcntl
import os
import subprocess
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "venvs"
TIMEOUT = 15 * 60
LOCK = Path(tempfile.gettempdir(), f"cloudpickle_ipy-venvs-{zlib.crc32(bytes(ROOT)):08x}.lock")

_config = None  # pytest's config, set by tests/conftest.py: how to reach the terminal


def clean_env(venv=None, **extra):
    """This environment without anything that would put this checkout (or another venv) on a
    path; with ``venv``, that venv activated."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTEST_ADDOPTS")
           and not k.startswith("PYTEST_XDIST")}
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    return {**env, **extra}


def announce(line):
    """Write ``line`` on the terminal now, past pytest's output capture."""
    reporter = _config and _config.pluginmanager.get_plugin("terminalreporter")
    capture = _config and _config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(line, flush=True)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


def ensure(name, base_python, install, stamp, probe="pass"):
    """The folder of venv ``name``, made from ``base_python`` with ``pip install *install`` (run in
    the checkout) unless it exists with the same ``stamp`` and ``probe`` (Python code) runs there."""
    venv = CACHE / name
    python = venv / "bin" / "python"
    stamp_file = venv / ".installed-from"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp_file.exists() and stamp_file.read_text() == stamp and subprocess.run(
                [str(python), "-c", probe], cwd=tempfile.gettempdir(), env=clean_env(),
                capture_output=True).returncode == 0:
            return venv
        announce(f"making venv {venv.relative_to(ROOT)} (Python {base_python}, pip install "
                 f"{' '.join(install)}): first run only, up to 2 minutes")
        for cmd in ([str(base_python), "-m", "venv", "--clear", str(venv)],
                    [str(python), "-m", "pip", "install", "-q", *install]):
            proc = subprocess.run(cmd, cwd=ROOT, env=clean_env(venv), capture_output=True,
                                  text=True, timeout=TIMEOUT)
            assert proc.returncode == 0, (f"{' '.join(cmd)} failed:\n"
                                          + "\n".join((proc.stdout + proc.stderr).splitlines()[-60:]))
        stamp_file.write_text(stamp)
    return venv
