"""The modules pickled by value, importable on the scheduler and on every worker of a real cluster:
plain Dask calls on the code being written, workers that join later, edits, and what goes when the
last target closes. The packages live in folders that only this (the client's) process imports."""
import os
import sys

import dask
import dask.array as da
import pytest
from distributed import Client, LocalCluster

import cloudpickle_ipy
from cloudpickle_ipy import core

MYLIB = {
    "__init__.py": """
        from .helpers import offset

        def f(x):
            return x + offset()

        class Point:
            def __init__(self, x):
                self.x = x

            def moved(self):
                return Point(self.x + offset())
    """,
    "helpers.py": """
        def offset():
            return 1
    """,
}


def _on_each_worker(client, fn, *args):
    """``{worker: fn(*args)}``, one plain task pinned to each worker."""
    workers = sorted(client.nthreads())
    futures = [client.submit(fn, *args, workers=[w], allow_other_workers=False, pure=False)
               for w in workers]
    return dict(zip(workers, client.gather(futures)))


def test_unregistered_with_dask_the_scheduler_cannot_load_the_graph(client, package):
    """The issue's case, before any target: Dask pickles mylib.f by reference."""
    mylib = package("dsk_before", MYLIB).module
    with pytest.raises(RuntimeError, match="Error during deserialization of the task graph"):
        client.gather(client.map(mylib.f, range(3)))


def test_plain_dask_calls_run_the_code_being_written(client, package):
    mylib = package("dsk_plain", MYLIB).module
    with cloudpickle_ipy.connect(client):
        assert client.submit(mylib.f, 1).result(timeout=30) == 2
        assert client.gather(client.map(mylib.f, range(4))) == [1, 2, 3, 4]
        assert dask.compute(dask.delayed(mylib.f)(10), scheduler=client) == (11,)
        blocks = da.arange(8, chunks=2).map_blocks(mylib.f, dtype=int)
        assert blocks.compute(scheduler=client).tolist() == list(range(1, 9))
        moved = client.submit(mylib.Point(1).moved).result(timeout=30)
        assert type(moved) is mylib.Point and moved.x == 2  # by reference: the class here
        # Served by the plugin's finder on the workers and on the scheduler, from no file there.
        loaders = client.run(lambda: type(sys.modules["dsk_plain"].__loader__).__name__)
        assert set(loaders.values()) == {"ShippedModules"}
        assert client.run_on_scheduler(
            lambda: type(sys.modules["dsk_plain.helpers"].__loader__).__name__) == "ShippedModules"


def test_a_worker_that_joins_later_gets_the_modules(cluster, client, package):
    mylib = package("dsk_late", MYLIB).module
    with cloudpickle_ipy.connect(client):
        process = cluster.add_worker()
        try:
            client.wait_for_workers(len(cluster.workers), timeout=60)
            new, = [w for w, pid in client.run(os.getpid).items() if pid == process.pid]
            assert client.submit(mylib.f, 5, workers=[new], allow_other_workers=False,
                                 pure=False).result(timeout=30) == 6
        finally:
            cluster.kill(process)
            cluster.workers.remove(process)


def test_an_edit_reaches_every_worker_and_replaces_the_whole_package(client, package):
    lib = package("dsk_edit", MYLIB)
    with cloudpickle_ipy.connect(client) as target:
        held = client.submit(lib.module.f, 1)  # a future of the old code, still held
        assert held.result(timeout=30) == 2
        assert set(_on_each_worker(client, lib.module.f, 1).values()) == {2}
        # Only the submodule changes: mylib's own source, which imported offset from it, does not.
        lib.write({"helpers.py": "def offset():\n    return 100\n"})
        mylib = lib.reload()
        target.sync()  # what the extension does before the next cell
        assert set(_on_each_worker(client, mylib.f, 1).values()) == {101}
        # The same call is a new task after the edit, not the held result of the old code.
        assert client.submit(mylib.f, 1).result(timeout=30) == 101 and held.result() == 2
        assert client.gather(client.map(mylib.f, range(40))) == [x + 100 for x in range(40)]
        assert dask.compute(dask.delayed(mylib.f)(0), scheduler=client) == (100,)


def test_a_module_no_longer_pickled_by_value_leaves_the_cluster(client, package):
    mylib = package("dsk_unregistered", MYLIB).module
    with cloudpickle_ipy.connect(client) as target:
        assert client.submit(mylib.f, 1).result(timeout=30) == 2
        core.unregister_pickle_by_value(mylib)
        target.sync()
        found = client.run(lambda: __import__("importlib.util").util.find_spec("dsk_unregistered"))
        assert set(found.values()) == {None}


def test_closing_the_last_target_removes_the_modules(client, package):
    mylib = package("dsk_closed", MYLIB).module
    first, second = cloudpickle_ipy.connect(client), cloudpickle_ipy.connect(client)
    assert client.submit(mylib.f, 1).result(timeout=30) == 2
    first.close()  # another target of this process still uses the cluster
    assert client.submit(mylib.f, 2).result(timeout=30) == 3
    second.close()
    with pytest.raises(RuntimeError, match="Error during deserialization of the task graph"):
        client.submit(mylib.f, 3).result(timeout=30)
    assert sorted(client.run(lambda: sorted(sys.modules).count("dsk_closed")).values()) == [0, 0]


def test_a_scheduler_and_workers_in_this_process_leave_its_modules_alone(package, tmp_path):
    """A LocalCluster of threads runs its scheduler and workers in the client's process: the
    plugins must not replace the modules this process imported (the originals)."""
    lib = package("dsk_inprocess", MYLIB)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=":0", local_directory=str(tmp_path)) as local, \
            Client(local, set_as_default=False) as client, cloudpickle_ipy.connect(client) as target:
        module = sys.modules["dsk_inprocess"]
        assert client.submit(module.f, 1).result(timeout=30) == 2
        lib.write({"helpers.py": "def offset():\n    return 7\n"})
        target.sync()
        assert sys.modules["dsk_inprocess"] is module and module.offset() == 1
        assert type(module.__loader__).__name__ != "ShippedModules"
