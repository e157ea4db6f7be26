"""A worker killed while it runs a cell: a clear error at once, and the next cell runs on another
worker. A worker on another Python minor version: refused with one line naming it. Real processes;
this module's cluster loses workers."""
import importlib.util
import os
import sys
import threading
import time

import pytest

import cloudpickle_ipy
from cloudpickle_ipy.ship import KernelDied, ShipError
from tests.dask.processes import dask_only_venv
from tests.fresh import pyenv_interpreters

HERE = "%d.%d" % sys.version_info[:2]


def test_a_worker_killed_mid_cell_is_a_clear_error_and_the_next_cell_runs(cluster, client):
    with cloudpickle_ipy.connect(client, timeout=60) as target:
        pid = target.run("import os; os.getpid()")
        worker = target.worker
        process, = [p for p in cluster.workers if p.pid == pid]
        killer = threading.Timer(1.0, cluster.kill, [process])
        killer.start()
        start = time.monotonic()
        try:
            with pytest.raises(KernelDied, match=rf"^the worker {worker} left the cluster"):
                target.run("import time\nwhile True:\n    time.sleep(0.05)")
        finally:
            killer.join()
        assert time.monotonic() - start < 10
        other = target.run("import os; os.getpid()")  # the next cell, on the other worker
        assert other != pid and target.worker != worker
        assert target.run_all("1") == {target.worker: 1}


def test_a_worker_on_another_python_is_refused_in_one_line(cluster, client):
    found = pyenv_interpreters()
    others = [v for v in ("3.12", "3.13", "3.10") if v in found and v != HERE]
    assert others, f"no other CPython found through pyenv (found: {sorted(found)})"
    version = others[0]
    bin = dask_only_venv(f"dask-only-py{version}", found[version])
    process = cluster.add_worker(bin)
    try:
        client.wait_for_workers(sum(p.poll() is None for p in cluster.workers), timeout=90)
        address, = [w for w, pid in client.run(os.getpid).items() if pid == process.pid]
        message = (rf"^the worker {address} runs Python {version} and this is Python {HERE}: "
                   rf"functions and classes pickled by value do not load across Python minor "
                   rf"versions; start the workers on Python {HERE}$")
        with pytest.raises(ShipError, match=message):
            cloudpickle_ipy.connect(client)
        # Nothing of ours was installed there (a function by reference: a lambda by value from
        # this Python could crash that worker, which is why it is refused).
        assert client.run(importlib.util.find_spec, "cloudpickle_ipy",
                          workers=[address]) == {address: None}
    finally:
        cluster.kill(process)
