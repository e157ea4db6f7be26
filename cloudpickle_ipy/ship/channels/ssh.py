"""A kernel on another host, named by its connection file, its ports tunnelled over SSH: what
``jupyter console --existing kernel-1234.json --ssh user@host`` does, here with asyncssh.

One SSH connection per kernel, opened as ``ssh`` would: the user's ``~/.ssh/config``, keys and
agent, and host keys checked against ``~/.ssh/known_hosts`` (an unknown host is refused: connect
to it once with ``ssh`` to accept its key). Each of the kernel's ports gets a listener on this
machine's loopback that forwards to the address the connection file gives, as seen from the SSH
host (a kernel listening on every address is reached on its loopback; one on the ``ipc``
transport, through its Unix socket). The request protocol then runs over ZeroMQ exactly as for a
local kernel (:mod:`.zeromq`), the connection key included: it never leaves this machine. asyncssh
runs on an event loop of its own, on a thread, so it works in a notebook whose loop is busy.
"""
import asyncio
import re
import threading

from .. import TargetError
from . import zeromq

PORTS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def parse_destination(destination):
    """``(user or None, host, port or None)`` of ``[user@]host[:port]``."""
    found = re.fullmatch(r"(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s]+)(?::(\d+))?", destination or "")
    if not found:
        raise TargetError(f"not an SSH destination: {destination!r} (expected [user@]host[:port])")
    user, host, port = found.groups()
    return user, host.strip("[]"), int(port) if port else None


class Tunnel:
    """An SSH connection to ``destination`` that forwards local ports to ports on its side."""

    def __init__(self, destination, timeout):
        import asyncssh

        self.destination = destination
        user, host, port = parse_destination(destination)
        self.lost = None  # why the connection closed, once it has
        tunnel = self

        class Client(asyncssh.SSHClient):
            def connection_lost(self, exc):
                tunnel.lost = str(exc) if exc else "closed by the server"

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=f"cloudpickle_ipy ssh {destination}")
        self._thread.start()
        options = {"username": user} if user else {}
        if port:
            options["port"] = port
        try:
            self._conn = self._run(asyncssh.connect(host, client_factory=Client, **options),
                                   timeout)
        except BaseException:
            self._stop()
            raise

    def _run(self, coroutine, timeout):
        """Run ``coroutine`` on the SSH thread; SSH failures become one-line TargetErrors."""
        import asyncssh

        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coroutine, timeout), self._loop)
        try:
            return future.result()
        except asyncssh.HostKeyNotVerifiable as exc:
            raise TargetError(f"SSH to {self.destination}: the host key is not trusted ({exc}); "
                              f"connect once with ssh to add it to ~/.ssh/known_hosts") from None
        except asyncssh.PermissionDenied as exc:
            raise TargetError(f"SSH to {self.destination}: login refused ({exc.reason or exc})"
                              ) from None
        except asyncssh.ChannelOpenError as exc:
            raise TargetError(f"SSH to {self.destination}: the kernel's port cannot be reached "
                              f"from there ({exc.reason})") from None
        except (asyncssh.Error, OSError) as exc:
            raise TargetError(f"SSH to {self.destination}: {exc}") from None
        except (asyncio.TimeoutError, TimeoutError):
            raise TargetError(f"SSH to {self.destination}: no answer within {timeout:g} s"
                              ) from None

    def forward(self, info, name, timeout):
        """A local port forwarding to the kernel's port ``name`` of connection ``info``."""
        if info.get("transport", "tcp") == "ipc":
            coroutine = self._conn.forward_local_port_to_path(
                "127.0.0.1", 0, f"{info['ip']}-{info[name]}")
        else:
            host = info["ip"] if info["ip"] not in ("0.0.0.0", "*", "") else "127.0.0.1"
            coroutine = self._conn.forward_local_port("127.0.0.1", 0, host, info[name])
        return self._run(coroutine, timeout).get_port()

    def _stop(self):
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def close(self):
        if self._thread.is_alive():
            try:
                self._conn.close()
                self._run(self._conn.wait_closed(), 5)
            except TargetError:
                pass
            self._stop()


class SshChannel(zeromq.ZmqChannel):
    """A :class:`~.zeromq.ZmqChannel` whose kernel is reached through :class:`Tunnel`."""

    def __init__(self, client, manager=None, *, tunnel, kernel="?"):
        super().__init__(client, manager, kernel=kernel)
        self.tunnel = tunnel

    def receive(self, timeout):
        received = super().receive(timeout)
        if not received and self.tunnel.lost is not None:
            raise TargetError(f"the SSH connection to {self.tunnel.destination} closed "
                              f"({self.tunnel.lost})")
        return received

    @property
    def alive(self):
        return self.tunnel.lost is None and super().alive

    def close(self):
        try:
            super().close()
        finally:
            self.tunnel.close()


def connect(info, destination, timeout, kernel):
    """An :class:`SshChannel` to the kernel of connection ``info`` (a connection file of a kernel
    on the host ``destination``, ``[user@]host[:port]``)."""
    tunnel = Tunnel(destination, timeout)
    try:
        local = {**info, "ip": "127.0.0.1", "transport": "tcp"}
        for name in PORTS:
            local[name] = tunnel.forward(info, name, timeout)
        return zeromq.connect(local, timeout, f"{kernel} via {destination}", channel=SshChannel,
                              tunnel=tunnel)
    except BaseException:
        tunnel.close()
        raise
