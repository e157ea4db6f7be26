"""``%%cloudpickle_ship`` and ``%cloudpickle_target`` on a Dask cluster, in a real IPython shell with
the extension loaded: a Client held in a variable, and scheduler addresses."""
import _thread
import os
import pathlib
import sys
import threading
import time

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from cloudpickle_ipy import core
from cloudpickle_ipy.extension import state_of
from cloudpickle_ipy.magics import RemoteCellError
from tests.ship.test_magics import loaded_shell, ok, run


@pytest.fixture(scope="module")
def ip(tmp_path_factory, client):
    with loaded_shell(tmp_path_factory.mktemp("cwd")) as shell:
        shell.user_ns["client"] = client
        yield shell


def ship(ip, cell, options="", target="client"):
    return run(ip, f"%%cloudpickle_ship {target} {options}\n{cell}")


def test_cells_run_on_one_worker_with_what_they_read(ip, client):
    run(ip, "square = lambda x: x * x\nclass Box:\n    def __init__(self, v):\n        self.v = v\n"
            "data = [1, 2, 3]")
    result, out, _ = ship(ip, "import os\nprint('on the worker')\nbox = Box(square(4) + sum(data))"
                              "\nos.getpid(), box.v")
    pid, value = ok(result)
    assert value == 22 and pid != os.getpid() and "on the worker" in out
    # The next cell runs on the same worker, where the names the last one assigned persist.
    assert ok(ship(ip, "import os\nos.getpid(), box.v")[0]) == (pid, 22)
    assert pid in client.run(os.getpid).values()


def test_output_name_and_pull(ip):
    run(ip, "class Box:\n    def __init__(self, v):\n        self.v = v")
    result, _, _ = ship(ip, "made = [1, 2]\nalso = Box(3)\nlen(made)", "-o stored --pull made,also")
    assert ok(result) == 2 and ip.user_ns["stored"] == 2 and ip.user_ns["made"] == [1, 2]
    assert type(ip.user_ns["also"]) is ip.user_ns["Box"]  # the class defined here
    ok(run(ip, "%cloudpickle_pull client made")[0])
    ip.user_ns["pushed_here"] = 5
    ok(run(ip, "%cloudpickle_push client pushed_here")[0])
    assert ok(ship(ip, "globals()['pushed_here'] * 2", "--no-push")[0]) == 10


def test_all_runs_on_every_worker(ip, client):
    ip.user_ns["tag"] = "from here"
    result, _, _ = ship(ip, "import os\nos.getpid(), tag", "--all -o per_worker")
    value = ok(result)
    assert sorted(value) == sorted(client.nthreads()) and ip.user_ns["per_worker"] == value
    assert len({pid for pid, _ in value.values()}) == 2
    assert {tag for _, tag in value.values()} == {"from here"}
    result, _, err = ship(ip, "1", "--all --pull x")
    assert isinstance(result.error_in_exec, UsageError) and "--pull copies names from one" in err


def test_all_on_a_kernel_is_refused(ip):
    result, _, err = ship(ip, "1", "--all", target="local")
    assert isinstance(result.error_in_exec, UsageError)
    assert "--all runs a cell on every worker of a Dask cluster; local is a kernel" in err


def test_error_raises_with_the_worker_traceback(ip):
    result, out, _ = ship(ip, "def inner():\n    return 1 / 0\ninner()")
    assert isinstance(result.error_in_exec, RemoteCellError)
    assert "Traceback on the target client (most recent call last):" in out
    assert "return 1 / 0" in out and "ZeroDivisionError: division by zero" in out
    assert "dask.py" not in out and "magics.py" not in out


def test_timeout_is_one_line(ip):
    start = time.monotonic()
    result, _, err = ship(ip, "import time\nwhile True:\n    time.sleep(0.02)", "--timeout 1")
    assert time.monotonic() - start < 5 and isinstance(result.error_in_exec, UsageError)
    assert len(err.strip().splitlines()) == 1
    assert "no answer from the Dask cluster within 1 s; the run on the worker was interrupted" in err


def test_ctrl_c_stops_the_run_on_the_worker(ip):
    timer = threading.Timer(1.0, _thread.interrupt_main)
    start = time.monotonic()
    timer.start()
    try:
        result, _, _ = ship(ip, "import time\nticks = 0\nwhile True:\n    ticks += 1\n"
                                "    time.sleep(0.02)")
    finally:
        timer.join()
    assert time.monotonic() - start < 5
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert "the run on the worker was interrupted too" in str(result.error_in_exec)
    first = ok(ship(ip, "ticks")[0])
    time.sleep(0.5)
    assert ok(ship(ip, "ticks")[0]) == first  # stopped there, and the next cells run


def test_output_appears_while_the_cell_runs(ip, tmp_path):
    """The cell waits for a file that is written only once its first line has arrived here."""
    flag = tmp_path / "seen"
    ip.user_ns["flag"] = str(flag)
    cell = ("import os, time\nprint('waiting for the flag', flush=True)\ndeadline = time.time() + 20"
            "\nwhile not os.path.exists(flag) and time.time() < deadline:\n    time.sleep(0.02)\n"
            "os.path.exists(flag)")
    with capture_output() as out:
        def watch():
            deadline = time.monotonic() + 20
            while "waiting for the flag" not in out.stdout and time.monotonic() < deadline:
                time.sleep(0.02)
            flag.write_text("seen")

        watcher = threading.Thread(target=watch)
        watcher.start()
        result = ip.run_cell(f"%%cloudpickle_ship client\n{cell}")
        watcher.join()
    assert result.result is True


def test_scheduler_addresses_and_the_listing(ip, cluster):
    port = cluster.address.rpartition(":")[2]
    assert ok(ship(ip, "6 * 7")[0]) == 42
    assert ok(ship(ip, "6 * 7", target=cluster.address)[0]) == 42
    assert ok(ship(ip, "6 * 7", target=f"dask://127.0.0.1:{port}")[0]) == 42
    listing = repr(ok(run(ip, "%cloudpickle_target")[0]))
    rows = {line.split()[0]: line for line in listing.splitlines()[1:]}
    assert f"scheduler {cluster.address} (2 workers)" in rows["client"]
    assert f"scheduler {cluster.address} (2 workers)" in rows[cluster.address + ","]
    assert f"dask://127.0.0.1:{port}" in rows[cluster.address + ","]  # one target for both names
    owned = state_of(ip).targets.get(cluster.address)
    assert owned.owned and owned.client.status == "running"


def test_the_modules_of_the_session_reach_the_cluster_before_each_cell(ip, client, monkeypatch):
    """Plain Dask calls in cells (nothing shipped): what the watcher registers, what
    %pickle_by_value registers (at once), and their edits, are on every worker by the next cell."""
    cwd = pathlib.Path(os.getcwd())  # the watched folder
    (cwd / "dsk_watched.py").write_text("def f(x):\n    return x + 1\n")
    (cwd / "dsk_by_hand").mkdir()
    (cwd / "dsk_by_hand" / "__init__.py").write_text("def g(x):\n    return x * 2\n")
    monkeypatch.syspath_prepend(str(cwd))  # as in a notebook next to them
    try:
        ok(ship(ip, "1")[0])  # the session uses the cluster
        ok(run(ip, "import dsk_watched")[0])
        # The watcher registered it before this cell: the scheduler and workers import it.
        assert ok(run(ip, "client.gather(client.map(dsk_watched.f, range(3)))")[0]) == [1, 2, 3]
        ip.user_ns["watch_was"] = state_of(ip).watch
        state_of(ip).watch = False  # registered by hand only
        result, _, _ = run(ip, "import dsk_by_hand\n%pickle_by_value dsk_by_hand\n"
                               "client.submit(dsk_by_hand.g, 21).result(timeout=30)")
        assert ok(result) == 42  # in the same cell: %pickle_by_value syncs at once
        (cwd / "dsk_watched.py").write_text("def f(x):\n    return x + 1000\n")
        ok(run(ip, "import importlib\ndsk_watched = importlib.reload(dsk_watched)")[0])
        assert ok(run(ip, "client.gather(client.map(dsk_watched.f, range(3)))")[0]) == [
            1000, 1001, 1002]
    finally:
        state_of(ip).watch = ip.user_ns.pop("watch_was", True)
        for name in ("dsk_watched", "dsk_by_hand"):
            if name in core.list_registry_pickle_by_value():
                core.unregister_pickle_by_value(sys.modules[name])
            sys.modules.pop(name, None)
            ip.user_ns.pop(name, None)


def test_unload_closes_the_clients_it_made_and_leaves_the_users(tmp_path, cluster, client):
    """Last: it unloads the extension from the shell that the other tests share."""
    with loaded_shell(tmp_path) as shell:
        shell.user_ns["client"] = client
        owned = state_of(shell).targets.get(cluster.address)
        ok(run(shell, f"%%cloudpickle_ship {cluster.address}\n1")[0])
        ok(run(shell, "%%cloudpickle_ship client\n1")[0])
    assert owned.client.status == "closed" and client.status == "running"
