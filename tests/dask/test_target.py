"""``cloudpickle_ipy.connect`` on a Dask cluster: push, pull, call, run, run_all, map and close on real
scheduler and worker processes; a Client given, or one made from a scheduler address."""
import os
import socket
import textwrap
import time

import numpy as np
import pytest

import cloudpickle_ipy
from cloudpickle_ipy.ship import RemoteError, ShipError, ShipTimeout
from cloudpickle_ipy.ship.dask import DaskTarget
from cloudpickle_ipy.ship.targets import TargetError
from tests.fresh import define


@pytest.fixture(scope="module")
def target(client):
    with cloudpickle_ipy.connect(client, timeout=60) as made:
        yield made


def test_a_client_gives_a_target_that_leaves_it_open(client):
    with cloudpickle_ipy.connect(client) as target:
        assert isinstance(target, DaskTarget) and target.alive and target.worker_count == 2
    assert not target.alive and client.status == "running"
    with pytest.raises(ShipError, match="is closed"):
        target.run("1")


def test_an_address_gives_a_target_with_a_client_of_its_own(cluster):
    port = cluster.address.rpartition(":")[2]
    for address in (cluster.address, f"dask://127.0.0.1:{port}"):
        with cloudpickle_ipy.connect(address) as target:
            assert target.run("6 * 7") == 42 and target.owned
        assert target.client.status == "closed"


def test_no_scheduler_at_an_address_is_one_line():
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(TargetError, match=rf"^no Dask scheduler answers at "
                                          rf"tcp://127.0.0.1:{port}: [^\n]*$"):
        cloudpickle_ipy.connect(f"tcp://127.0.0.1:{port}", startup_timeout=2)
    assert time.monotonic() - start < 10


def test_push_run_pull_on_one_worker_whose_names_persist(target):
    ns = define("""
        class Box:
            def __init__(self, v):
                self.v = v
    """)
    target.push(square=lambda x: x * x, box=ns.Box(5))
    target.push({"data": [1, 2, 3]})
    pid = target.run("import os\nmade_there = type(box)(square(box.v) + sum(data))\nos.getpid()")
    assert pid != os.getpid() and target.run("import os; os.getpid()") == pid  # the same worker
    back = target.pull("made_there")
    assert type(back) is ns.Box and back.v == 31  # the class defined here, not a copy
    assert target.pull("data", "made_there")[0] == [1, 2, 3]
    with pytest.raises(RemoteError, match="not defined on the worker: nowhere"):
        target.pull("nowhere")


def test_call_and_lambdas_both_ways(target):
    def make_adder(n):
        def add(x):
            return x + n
        return add

    assert target.call(make_adder(10), 1) == 11
    assert target.run("lambda x: x * 2")(21) == 42


def test_run_all_runs_on_every_worker(target, client):
    target.push(tag="pushed")
    pids = target.run_all("import os\n(os.getpid(), tag)")
    assert sorted(pids) == sorted(client.nthreads())
    assert len({pid for pid, _ in pids.values()}) == 2 and {t for _, t in pids.values()} == {"pushed"}


def test_map_spreads_over_the_cluster(target):
    ns = define("""
        import os
        def where(x):
            print(f"item {x}")
            return os.getpid(), x * x
    """)
    results = target.map(ns.where, range(40))
    assert [value for _, value in results] == [x * x for x in range(40)]
    assert len({pid for pid, _ in results}) == 2
    with pytest.raises(RemoteError, match=r"division by zero \(item 3\)"):
        target.map(lambda x: 1 / (x - 3), range(5))


def test_errors_carry_the_worker_traceback(target):
    with pytest.raises(RemoteError) as info:
        target.run(textwrap.dedent("""
            def inner():
                return 1 / 0
            inner()
        """))
    assert info.value.ename == "ZeroDivisionError"
    trace = info.value.remote_traceback
    assert "return 1 / 0" in trace and 'File "<cell' in trace and "dask_worker.py" not in trace


def test_output_is_relayed_in_order(target, capsys):
    value = target.run(textwrap.dedent("""
        import sys
        for i in range(3):
            print("line", i)
        print("to stderr", file=sys.stderr)
        print("no newline", end="")
        7
    """))
    out, err = capsys.readouterr()
    assert value == 7 and out == "line 0\nline 1\nline 2\nno newline" and err == "to stderr\n"


def test_large_payloads_travel_ahead_of_the_task(target):
    array = np.arange(1 << 19, dtype=np.float64)  # 4 MiB
    target.push(array=array)
    assert target.run("float(array.sum()), array.dtype.name") == (float(array.sum()), "float64")


def test_timeout_interrupts_the_run(target):
    start = time.monotonic()
    with pytest.raises(ShipTimeout, match="within 1 s; the run on the worker was interrupted"):
        target.run("import time\nticks = 0\nwhile True:\n    ticks += 1\n    time.sleep(0.02)",
                   timeout=1)
    assert time.monotonic() - start < 5
    first = target.pull("ticks")
    time.sleep(0.5)
    assert target.pull("ticks") == first  # stopped there, not left running


def test_unpicklable_push_raises_at_once(target):
    import threading

    with pytest.raises(TypeError, match="lock"):
        target.push(lock=threading.Lock())
    assert target.run("'lock' in globals()") is False
