"""A cluster whose scheduler and workers have only ``distributed``: the plugins bring the client's core
and worker code along (in memory), then cells, plain Dask calls and edits work as anywhere else.

The cluster runs from ``.cache/venvs/dask-only`` (see :func:`tests.dask.processes.dask_only_venv`).
"""
import importlib.util
import os
import subprocess

import pytest
from distributed import Client

import cloudpickle_ipy
from cloudpickle_ipy.ship import RemoteError, bootstrap
from tests.dask.processes import Cluster, dask_only_venv
from tests.dask.test_modules import MYLIB
from tests.fresh import define
from tests.venvs import clean_env


@pytest.fixture(scope="module")
def bare_cluster(tmp_path_factory):
    bin = dask_only_venv()
    # The point of these tests: cloudpickle_ipy cannot be imported there.
    proc = subprocess.run([str(bin / "python"), "-c", "import cloudpickle_ipy"],
                          env=clean_env(bin.parent), cwd="/", capture_output=True, text=True)
    assert "No module named 'cloudpickle_ipy'" in proc.stderr
    processes = Cluster(tmp_path_factory.mktemp("bare"), bin=bin, workers=2)
    try:
        yield processes
    finally:
        processes.close()


@pytest.fixture(scope="module")
def bare_client(bare_cluster):
    with Client(bare_cluster.address, set_as_default=False, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
        yield client


@pytest.fixture(scope="module")
def target(bare_client):
    with cloudpickle_ipy.connect(bare_client, timeout=60) as made:
        yield made


# Where a module would load from, there (a lambda: Dask sends it by value, not by this file's name).
_origin = lambda name: getattr(importlib.util.find_spec(name), "origin", None)  # noqa: E731


def test_the_core_and_worker_code_travel_in_memory(target, bare_client):
    expected = f"{bootstrap.ORIGIN}/cloudpickle_ipy/ship/dask_worker.py"
    assert set(bare_client.run(_origin, "cloudpickle_ipy.ship.dask_worker").values()) == {
        expected}
    assert bare_client.run_on_scheduler(_origin, "cloudpickle_ipy.core.functions") == (
        f"{bootstrap.ORIGIN}/cloudpickle_ipy/core/functions.py")
    # Only what the workers run travels: nothing else of the package is importable there.
    assert set(bare_client.run(_origin, "cloudpickle_ipy.magics").values()) == {None}


def test_cells_run_with_classes_output_and_errors(target, capsys):
    ns = define("""
        class Box:
            def __init__(self, v):
                self.v = v
    """)
    target.push(box=ns.Box(20))
    assert target.run("print('bare', flush=True)\ntype(box)(box.v + 1)").v == 21
    assert capsys.readouterr().out == "bare\n"
    with pytest.raises(RemoteError, match="ZeroDivisionError"):
        target.run("1 / 0")
    assert target.run_all("import os; os.getpid()") == target.client.run(os.getpid)


def test_plain_dask_calls_and_edits(target, bare_client, package):
    lib = package("dsk_bare", MYLIB)
    target.sync()
    assert bare_client.gather(bare_client.map(lib.module.f, range(3))) == [1, 2, 3]
    lib.write({"helpers.py": "def offset():\n    return 10\n"})
    mylib = lib.reload()
    target.sync()
    assert bare_client.gather(bare_client.map(mylib.f, range(3), pure=False)) == [10, 11, 12]
