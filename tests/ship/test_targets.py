"""How targets are named and kept for a session, in a real IPython shell on real kernels:
``local`` and ``local:NAME``, an alias, a kernel started separately (named by its connection file
or by an id fragment in the Jupyter runtime folder), a KernelManager held in a variable, the
listing, and the one-line errors."""
import json
import os
import re
import subprocess
import sys
import time

import pytest
from IPython.core.error import UsageError

from cloudpickle_ipy.extension import state_of
from cloudpickle_ipy.ship import ShipError
from cloudpickle_ipy.ship.channels.zeromq import start_local
from cloudpickle_ipy.ship.targets import TargetError, Targets
from tests.ship.test_magics import loaded_shell, ok, run

PID = "import os\nos.getpid()"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    """A Jupyter runtime folder of the module's own, where find_connection_file looks."""
    folder = tmp_path_factory.mktemp("runtime")
    saved = os.environ.get("JUPYTER_RUNTIME_DIR")
    os.environ["JUPYTER_RUNTIME_DIR"] = str(folder)
    yield folder
    if saved is None:
        del os.environ["JUPYTER_RUNTIME_DIR"]
    else:
        os.environ["JUPYTER_RUNTIME_DIR"] = saved


@pytest.fixture(scope="module")
def ip(runtime, tmp_path_factory):
    with loaded_shell(tmp_path_factory.mktemp("cwd")) as shell:
        yield shell


@pytest.fixture(scope="module")
def separate(runtime):
    """A kernel started on its own (as `jupyter kernel` would), writing its connection file in
    the runtime folder; killed at the end."""
    path = runtime / "kernel-shiptest-4f2a.json"
    process = subprocess.Popen([sys.executable, "-m", "ipykernel_launcher", "-f", str(path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    yield process, path
    process.kill()
    process.wait()


def ship(ip, target, cell):
    return run(ip, f"%%cloudpickle_ship {target}\n{cell}")


def error_line(ip, cell):
    """The UsageError ``cell`` gives, as the one line the user sees."""
    result, _, err = run(ip, cell)
    assert isinstance(result.error_in_exec, UsageError), result
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_local_kernels_are_kept_per_name_and_listed(ip):
    first = ok(ship(ip, "local", PID)[0])
    assert ok(ship(ip, "local", PID)[0]) == first != os.getpid()
    two = ok(ship(ip, "local:two", PID)[0])
    assert two not in (first, os.getpid())
    ok(run(ip, "%cloudpickle_target spare local:two")[0])
    assert ok(ship(ip, "spare", PID)[0]) == two  # an alias names the same kernel
    targets = state_of(ip).targets
    table = repr(ok(run(ip, "%cloudpickle_target")[0]))
    python = "%d.%d" % sys.version_info[:2]
    for name, spec in (("local", "local"), ("local:two, spare", "local:two")):
        kernel = targets.get(spec).channel.manager.kernel_id
        assert any(line.startswith(name + "  ") and kernel in line and python in line
                   and line.endswith("alive") for line in table.splitlines())


def test_separate_kernel_by_path_and_by_id_fragment(ip, separate):
    process, path = separate
    assert ok(ship(ip, str(path), PID)[0]) == process.pid
    assert ok(ship(ip, "shiptest-4f2a", PID)[0]) == process.pid
    targets = state_of(ip).targets
    assert targets.get("shiptest-4f2a") is targets.get(str(path))  # one connection, reused
    assert path.name in repr(ok(run(ip, "%cloudpickle_target")[0]))
    process.kill()
    process.wait()
    line = error_line(ip, "%%cloudpickle_ship shiptest-4f2a\n1")
    assert re.fullmatch("UsageError: %%cloudpickle_ship: the kernel (of shiptest-4f2a "
                        r"\(kernel-shiptest-4f2a.json\) is dead|died before answering the "
                        "request)", line)


def test_kernel_manager_in_a_variable(ip):
    channel = start_local()
    manager = channel.manager
    channel.client.stop_channels()
    try:
        ip.user_ns["km"] = manager
        assert ok(ship(ip, "km", PID)[0]) == manager.provisioner.pid
        manager.shutdown_kernel(now=True)
        line = error_line(ip, "%%cloudpickle_ship km\n1")
        assert line == "UsageError: %%cloudpickle_ship: the kernel of km (" \
                       f"{manager.kernel_id}) is dead"
    finally:
        ip.user_ns.pop("km", None)
        if manager.is_alive():
            manager.shutdown_kernel(now=True)


def test_errors_are_one_line(ip, tmp_path, runtime):
    line = error_line(ip, "%%cloudpickle_ship no_such_kernel_xyz\n1")
    assert line.startswith("UsageError: %%cloudpickle_ship: no kernel 'no_such_kernel_xyz': "
                           "not an alias, 'local', a connection file, a kernel in " + str(runtime))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert error_line(ip, f"%%cloudpickle_ship {bad}\n1").startswith(
        f"UsageError: %%cloudpickle_ship: {bad} is not a kernel connection file: Expecting")
    bad.write_text('{"ip": "127.0.0.1"}')
    assert error_line(ip, f"%cloudpickle_push {bad} PID") == (
        f"UsageError: %cloudpickle_push: {bad} is not a kernel connection file: no shell_port, "
        "iopub_port, hb_port, key")
    assert error_line(ip, f"%%cloudpickle_ship {tmp_path}/missing.json\n1") == (
        f"UsageError: %%cloudpickle_ship: no such connection file: {tmp_path}/missing.json")
    assert "give NAME and SPEC" in error_line(ip, "%cloudpickle_target only_name")


def test_plain_python_registry_without_ipython():
    """The registry the magics use works from a script: one kernel per name, closed together."""
    targets = Targets()
    try:
        targets.alias("mine", "local")
        kernel = targets.get("mine")
        assert targets.get("local") is kernel and kernel.run("6 * 7") == 42
        assert targets.rows()[0][:1] == ("mine, local",)
        with pytest.raises(TargetError, match="an alias must be an identifier"):
            targets.alias("not an identifier", "local")
    finally:
        targets.close()
    assert not kernel.alive and targets.rows() == [("mine", "-> local", "", None)]


def test_local_kernels_listen_on_unix_sockets_removed_at_close():
    import cloudpickle_ipy

    with cloudpickle_ipy.connect("local", timeout=60) as target:
        manager = target.channel.manager
        assert manager.transport == "ipc" and os.path.isabs(manager.ip)
        sockets = [f"{manager.ip}-{manager.shell_port}", f"{manager.ip}-{manager.iopub_port}"]
        assert all(os.path.exists(s) for s in sockets)
        assert target.run("1 + 1") == 2
    assert not any(os.path.exists(s) for s in sockets)


def test_a_refused_connection_stops_the_channels_it_opened(tmp_path):
    """A kernel refused at connect (it does not sign its messages; it does not answer in time)
    leaves no channel behind: no socket thread of ours keeps running."""
    import threading

    import cloudpickle_ipy

    channel = start_local()
    try:
        info = channel.manager.get_connection_info()
        unsigned = tmp_path / "kernel-unsigned.json"
        unsigned.write_text(json.dumps({**info, "key": ""}))
        before = set(threading.enumerate())
        with pytest.raises(TargetError, match="empty connection key"):
            cloudpickle_ipy.connect(str(unsigned))
        with pytest.raises(ShipError, match="does not answer|no answer"):
            cloudpickle_ipy.connect(channel.manager, startup_timeout=0.001)
        assert set(threading.enumerate()) - before == set()
    finally:
        channel.close()


def test_an_alias_to_no_kernel_is_refused_when_made_and_aliases_can_be_removed(ip, tmp_path):
    missing = tmp_path / "kernel-missing.json"
    assert error_line(ip, f"%cloudpickle_target gone {missing}") == (
        f"UsageError: %cloudpickle_target: no such connection file: {missing}")
    assert "gone" not in state_of(ip).targets.aliases
    ok(run(ip, "%cloudpickle_target mine local")[0])
    assert state_of(ip).targets.aliases["mine"] == "local"
    ok(run(ip, "%cloudpickle_target -r mine")[0])
    assert "mine" not in state_of(ip).targets.aliases
    assert "mine" not in repr(ok(run(ip, "%cloudpickle_target")[0]))
    assert error_line(ip, "%cloudpickle_target -r mine").startswith(
        "UsageError: %cloudpickle_target -r: 'mine' is not an alias (the aliases: ")


def test_a_dead_local_kernel_is_replaced_at_the_next_ship(ip):
    import signal

    first = ok(ship(ip, "local:phoenix", PID)[0])
    target = state_of(ip).targets.get("local:phoenix")  # before the kill: get() would replace it
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while target.alive:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    result, out, _ = ship(ip, "local:phoenix", PID)
    assert ok(result) not in (first, os.getpid())
    assert "cloudpickle_ipy: the kernel of local:phoenix had died (what it held is gone); " \
           "starting a new one" in out


def test_a_kernel_without_a_connection_key_is_refused_in_one_line(ip, tmp_path):
    channel = start_local()
    try:
        unsigned = tmp_path / "kernel-unsigned-key.json"
        unsigned.write_text(json.dumps({**channel.manager.get_connection_info(), "key": ""}))
        assert error_line(ip, f"%%cloudpickle_ship {unsigned}\n1") == (
            "UsageError: %%cloudpickle_ship: the kernel kernel-unsigned-key.json has an empty "
            "connection key (message signing off), so payloads sent to it could not be "
            "authenticated; start it with a key (Jupyter's default)")
        # Refused before anything was sent: the agent was never installed there.
        reply = channel.client.execute_interactive("", timeout=30, user_expressions={
            "agent": "'cloudpickle_ipy.ship.agent' in __import__('sys').modules"})
        assert reply["content"]["user_expressions"]["agent"]["data"]["text/plain"] == "False"
    finally:
        channel.close()
