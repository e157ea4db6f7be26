"""Kernels in virtual environments of their own, with ipykernel and without cloudpickle_ipy.

Each venv lives at ``<repo>/.venv-<name>`` (gitignored), is made once (``python -m venv`` and
``pip install ipykernel``: about 30 s) and reused while its stamp matches and ipykernel imports.
"""
import fcntl
import os
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

ROOT = Path(__file__).resolve().parents[2]
HERE = f"{sys.version_info.major}.{sys.version_info.minor}"
PACKAGES = ("ipykernel",)
TIMEOUT = 10 * 60
LOCK = Path(tempfile.gettempdir(), f"cloudpickle_ipy-kernel-venvs-{zlib.crc32(bytes(ROOT)):08x}.lock")


def clean_env(**extra):
    """This environment without anything that would put this checkout on a kernel's path."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, **extra}


def kernel_venv(name, base_python):
    """The python of venv ``.venv-<name>`` made from ``base_python`` with only :data:`PACKAGES`."""
    venv = ROOT / f".venv-{name}"
    python = venv / "bin" / "python"
    stamp = venv / ".installed-from"
    wanted = f"{base_python} {' '.join(PACKAGES)}"
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == wanted and subprocess.run(
                [str(python), "-c", "import ipykernel"], env=clean_env(),
                capture_output=True).returncode == 0:
            return python
        for cmd in ([str(base_python), "-m", "venv", "--clear", str(venv)],
                    [str(python), "-m", "pip", "install", "-q", *PACKAGES]):
            proc = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True,
                                  timeout=TIMEOUT)
            assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}{proc.stderr}"
        stamp.write_text(wanted)
    return python


def this_base_python():
    """The interpreter this venv was made from (a venv made from a venv would be nested)."""
    return Path(getattr(sys, "_base_executable", sys.executable))


def start_kernel(python, cwd, env=None):
    """A running kernel on ``python`` (its KernelManager), started in ``cwd``."""

    class ThatInterpreter(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(argv=[str(python), "-m", "ipykernel_launcher", "-f",
                                    "{connection_file}"], display_name=str(python),
                              language="python")

    manager = KernelManager(kernel_name="venv", kernel_spec_manager=ThatInterpreter())
    manager.start_kernel(cwd=str(cwd), env=env or clean_env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    return manager
