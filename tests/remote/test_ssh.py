"""A kernel named by its connection file, reached through SSH tunnels to a real SSH server
(asyncssh's, :mod:`tests.remote.sshd`, its own process) with throwaway keys; this user's ``~/.ssh``
is a throwaway home of the test's (key, known_hosts), as a real user's would be."""
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from jupyter_client import KernelManager

import cloudpickle_ipy
from cloudpickle_ipy.ship import RemoteError, ShipTimeout, TargetError
from tests.remote import ctrl_c_stops_the_run, sshd
from tests.ship.test_magics import loaded_shell, ok, run
from tests.venvs import ROOT, clean_env


class SshServer:
    def __init__(self, folder):
        self.home, host_key, authorized = sshd.make_keys(folder)
        self.log_path = folder / "sshd.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.remote.sshd", str(host_key), str(authorized)],
            cwd=ROOT, env=clean_env(), stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not (found := re.search(r"listening (\d+)", self.log())):
            assert self.proc.poll() is None and time.monotonic() < deadline, self.log()
            time.sleep(0.1)
        self.port = int(found[1])
        sshd.trust(self.home, self.port, host_key)
        self.destination = f"tester@127.0.0.1:{self.port}"

    def log(self):
        return self.log_path.read_text()

    def forwarded(self):
        return {int(port) for port in re.findall(r"forward 127\.0\.0\.1 (\d+)", self.log())}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


@pytest.fixture(scope="module")
def ssh_server(tmp_path_factory):
    started = SshServer(tmp_path_factory.mktemp("sshd"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def remote_kernel(tmp_path_factory):
    """A kernel on "the other host" (a TCP kernel here) and its connection file."""
    folder = tmp_path_factory.mktemp("remote-kernel")
    manager = KernelManager(connection_file=str(folder / "kernel-remote.json"))
    manager.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield manager
    finally:
        manager.shutdown_kernel(now=True)


@pytest.fixture
def home(ssh_server, monkeypatch):
    monkeypatch.setenv("HOME", str(ssh_server.home))


@pytest.fixture
def target(ssh_server, remote_kernel, home):
    with cloudpickle_ipy.connect(remote_kernel.connection_file, ssh=ssh_server.destination,
                                 timeout=60) as connected:
        yield connected


def test_the_kernels_ports_are_reached_through_the_tunnels(target, ssh_server, remote_kernel,
                                                            capsys):
    info = remote_kernel.get_connection_info()
    ports = {info[name] for name in ("shell_port", "iopub_port", "stdin_port", "control_port",
                                     "hb_port")}
    assert ports <= ssh_server.forwarded()  # every port went through the SSH server
    assert target.channel.client.shell_port not in ports  # ours is the tunnel's local end
    target.push(data=[1, 2, 3], double=lambda v: 2 * v)
    assert target.run("print('over ssh'); [double(v) for v in data]") == [2, 4, 6]
    assert capsys.readouterr().out == "over ssh\n"
    assert target.pull("data") == [1, 2, 3]
    with pytest.raises(RemoteError, match="ZeroDivisionError"):
        target.run("1 / 0")
    assert target.channel.kernel.endswith(f"via {ssh_server.destination}")


def test_ctrl_c_and_timeout_over_ssh(target):
    ctrl_c_stops_the_run(target)
    with pytest.raises(ShipTimeout, match="within 1 s; the run on the target was interrupted"):
        target.run("import time; time.sleep(30)", timeout=1)
    assert target.call(lambda: 5) == 5


def test_the_magic_option(ssh_server, remote_kernel, home, tmp_path):
    with loaded_shell(tmp_path) as shell:
        ok(run(shell, f"%cloudpickle_target gpu {remote_kernel.connection_file} "
                      f"--ssh {ssh_server.destination}")[0])
        assert ok(run(shell, "%%cloudpickle_ship gpu\n6 * 7")[0]) == 42
        listing = repr(ok(run(shell, "%cloudpickle_target")[0]))
        assert "gpu" in listing and f"via {ssh_server.destination}" in listing
        _, _, err = run(shell, "%cloudpickle_target x local --ssh somewhere")
        assert err.strip() == ("UsageError: %cloudpickle_target: ssh reaches a kernel on another "
                               "host by its connection file: it needs a connection file or "
                               "kernel id, not 'local'")


def test_an_unknown_host_key_is_refused_in_one_line(ssh_server, remote_kernel, home):
    (ssh_server.home / ".ssh" / "known_hosts").rename(ssh_server.home / "known_hosts.saved")
    try:
        with pytest.raises(TargetError) as info:
            cloudpickle_ipy.connect(remote_kernel.connection_file, ssh=ssh_server.destination)
        message = str(info.value)
        assert message.startswith(f"SSH to {ssh_server.destination}: the host key is not trusted")
        assert message.endswith("connect once with ssh to add it to ~/.ssh/known_hosts")
    finally:
        (ssh_server.home / "known_hosts.saved").rename(ssh_server.home / ".ssh" / "known_hosts")


def test_a_dropped_ssh_connection_is_one_line(tmp_path, remote_kernel, monkeypatch):
    server = SshServer(tmp_path)
    monkeypatch.setenv("HOME", str(server.home))
    try:
        target = cloudpickle_ipy.connect(remote_kernel.connection_file, ssh=server.destination,
                                         timeout=30)
        threading.Timer(1.0, server.stop).start()
        start = time.monotonic()
        with pytest.raises(TargetError, match=f"^the SSH connection to {server.destination} "
                                              f"closed"):
            target.run("import time; time.sleep(10)")
        assert time.monotonic() - start < 8
        target.close()
    finally:
        server.stop()
    assert remote_kernel.is_alive()  # the kernel itself is untouched
