"""Dask clusters of real processes: ``dask scheduler`` and ``dask worker``, each a process of its own.

They run in a folder of their own with ``PYTHONPATH`` cleared (:func:`tests.venvs.clean_env`), so
they cannot import the modules the tests write for the client, nor anything of the tests: what
they run, they got through Dask. :func:`dask_only_venv` makes a venv with only ``distributed``
(this one's version), for workers and schedulers without cloudpickle_ipy. The benchmarks use
:class:`Cluster` too.
"""
import json
import os
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

from tests import venvs
from tests.venvs import clean_env

START_TIMEOUT = 60


def dask_only_venv(name="dask-only", base_python=None):
    """The ``bin`` folder of a venv with only ``distributed`` (the version installed here)."""
    base = base_python or Path(getattr(sys, "_base_executable", sys.executable))
    package = f"distributed=={version('distributed')}"
    venv = venvs.ensure(name, base, [package], f"{base} {package}", "import distributed")
    return venv / "bin"


class Cluster:
    """A ``dask scheduler`` on loopback and its ``dask worker`` processes (no nanny: killing one
    is killing the worker), started from ``bin`` (a venv's ``bin`` folder) in ``folder``, with
    ``pythonpath`` as their ``PYTHONPATH`` (default: none)."""

    def __init__(self, folder, bin=None, workers=2, nthreads=2, pythonpath=None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.bin = Path(bin or Path(sys.executable).parent)
        self.nthreads = nthreads
        self.env = clean_env(None if bin is None else self.bin.parent)
        if pythonpath is not None:  # what the processes may import beyond their venv
            self.env["PYTHONPATH"] = str(pythonpath)
        self.file = self.folder / "scheduler.json"
        self.workers = []  # the worker processes, in the order they started
        self.scheduler = self._start(["scheduler", "--host", "127.0.0.1", "--port", "0",
                                      "--no-dashboard", "--scheduler-file", str(self.file)],
                                     "scheduler")
        try:
            self.address = self._address()
            for _ in range(workers):
                self.add_worker()
        except BaseException:
            self.close()
            raise

    def _start(self, args, log):
        with open(self.folder / f"{log}.log", "ab") as out:
            return subprocess.Popen([str(self.bin / "dask"), *args], cwd=self.folder, env=self.env,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def _address(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.scheduler.poll() is not None:
                raise RuntimeError(f"dask scheduler exited:\n{self.log('scheduler')}")
            try:
                return json.loads(self.file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        raise RuntimeError(f"dask scheduler did not start:\n{self.log('scheduler')}")

    def log(self, name):
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def add_worker(self, bin=None):
        """Start one more worker (from another venv's ``bin``, if given); its process. Wait for it
        with ``client.wait_for_workers``."""
        number = len(self.workers)
        env = self.env if bin is None else clean_env(Path(bin).parent)
        with open(self.folder / f"worker-{number}.log", "ab") as out:
            process = subprocess.Popen(
                [str(Path(bin or self.bin) / "dask"), "worker", "--scheduler-file",
                 str(self.file), "--no-nanny", "--nthreads", str(self.nthreads), "--host",
                 "127.0.0.1", "--no-dashboard", "--name", f"worker-{number}",
                 "--local-directory", str(self.folder / f"worker-{number}")],
                cwd=self.folder, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.workers.append(process)
        return process

    def kill(self, process):
        """Kill a worker process at once (SIGKILL: no goodbye to the scheduler)."""
        process.kill()
        process.wait(10)

    def close(self):
        """Stop the workers, then the scheduler (terminate, then kill what lingers)."""
        for group in (self.workers, [self.scheduler]):
            processes = [p for p in group if p.poll() is None]
            for process in processes:
                os.killpg(process.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            for process in processes:
                try:
                    process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(10)
