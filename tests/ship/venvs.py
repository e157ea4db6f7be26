"""Kernels in virtual environments of their own, with ipykernel and without cloudpickle_ipy.

Each venv is ``.cache/venvs/<name>`` (see :mod:`tests.venvs`), made once (``python -m venv`` and
``pip install ipykernel``: about 30 s) and reused while its stamp matches and ipykernel imports.
"""
import sys
from pathlib import Path

from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

from tests import venvs
from tests.venvs import clean_env

HERE = f"{sys.version_info.major}.{sys.version_info.minor}"
PACKAGES = ("ipykernel",)


def kernel_venv(name, base_python):
    """The python of venv ``name`` made from ``base_python`` with only :data:`PACKAGES`."""
    venv = venvs.ensure(name, base_python, list(PACKAGES), f"{base_python} {' '.join(PACKAGES)}",
                        "import ipykernel")
    return venv / "bin" / "python"


def this_base_python():
    """The interpreter this venv was made from (a venv made from a venv would be nested)."""
    return Path(getattr(sys, "_base_executable", sys.executable))


def start_kernel(python, cwd, env=None):
    """A running kernel on ``python`` (its KernelManager), started in ``cwd``; what it prints
    goes to ``cwd/kernel.log`` (read it when the kernel dies)."""

    class ThatInterpreter(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(argv=[str(python), "-m", "ipykernel_launcher", "-f",
                                    "{connection_file}"], display_name=str(python),
                              language="python")

    manager = KernelManager(kernel_name="venv", kernel_spec_manager=ThatInterpreter())
    log = open(Path(cwd, "kernel.log"), "ab")  # kept open: a restart launches with it again
    manager.start_kernel(cwd=str(cwd), env=env or clean_env(), stdout=log, stderr=log)
    return manager
