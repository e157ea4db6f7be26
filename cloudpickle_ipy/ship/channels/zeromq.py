"""Kernels reached on their own ZeroMQ ports, through jupyter_client: ones started here (``local``),
and running ones named by a connection file, a ``KernelManager`` or a ``KernelClient``.

A kernel whose connection key is empty (message signing off) is refused: anyone who reaches its
ports could then run code in it, and change the messages that agree our envelopes' key.
"""
import hmac
import json
import os
import subprocess
import sys
import tempfile
import uuid

import zmq

from .. import ShipError, TargetError
from ..envelope import PYTHON
from . import Channel


class EmptyKey(TargetError):
    """The kernel does not sign its messages: payloads could not be authenticated."""


class ZmqChannel(Channel):
    """A started ``BlockingKernelClient`` used by this channel alone; ``manager``, when given, tells
    whether the kernel process lives, interrupts it, and (``owned``) is shut down by :meth:`close`."""

    def __init__(self, client, manager=None, *, owned=False, kernel="?"):
        if not client.session.key:
            raise EmptyKey(f"the kernel {kernel} has an empty connection key (message signing "
                           f"off), so payloads sent to it could not be authenticated; start it "
                           f"with a key (Jupyter's default)")
        self.client, self.manager, self.owned, self.kernel = client, manager, owned, kernel
        self.session = client.session
        self._sockets = {"shell": client.shell_channel.socket,
                         "iopub": client.iopub_channel.socket,
                         "control": client.control_channel.socket}
        self._names = {socket: name for name, socket in self._sockets.items()}
        self._poller = zmq.Poller()
        for socket in self._sockets.values():
            self._poller.register(socket, zmq.POLLIN)

    def send(self, channel, msg_type, content, buffers=None):
        sent = self.session.send(self._sockets[channel], msg_type, content, buffers=buffers)
        return sent["header"]["msg_id"]

    def receive(self, timeout):
        out = []
        for socket, _ in self._poller.poll(max(timeout, 0) * 1000):
            message = self._message(socket.recv_multipart(copy=False))
            if message is not None:
                out.append((self._names[socket], message))
        return out

    def _message(self, frames):
        """A received message as jupyter_client's dict, or None if its signature is wrong.

        What ``Session.deserialize`` does, less what costs most and serves nothing here: parsing
        every date of every header (a third of a round trip's client time) and adapting old
        protocol versions (every kernel speaks 5.x)."""
        _, frames = self.session.feed_identities(frames, copy=False)
        signature, *parts = (frame.bytes for frame in frames[:5])
        if not hmac.compare_digest(signature, self.session.sign(parts)):
            return None
        header, parent, metadata, content = map(json.loads, parts)
        return {"header": header, "msg_id": header["msg_id"], "msg_type": header["msg_type"],
                "parent_header": parent, "metadata": metadata, "content": content,
                "buffers": [frame.buffer for frame in frames[5:]]}

    @property
    def alive(self):
        if self.manager is not None:
            return self.manager.is_alive()
        return self.client.hb_channel.is_beating()

    def incarnation(self):
        """The manager's handle on the kernel process: a new one after each restart."""
        return getattr(getattr(self.manager, "provisioner", None), "process", None)

    def wait_for_ready(self, timeout):
        self.client.wait_for_ready(timeout=timeout)

    def interrupt(self):
        """Through the manager (a signal, or a message if the kernel spec asks for one), else with
        an ``interrupt_request`` on the control channel (ipykernel 6+ handles it whatever its spec)."""
        if self.manager is not None:
            self.manager.interrupt_kernel()
        else:
            self.send("control", "interrupt_request", {})

    def close(self):
        self._poller = None
        self.client.stop_channels()
        if self.owned and self.manager is not None:
            self.manager.shutdown_kernel(now=not self.manager.is_alive())


def connect(info, timeout, kernel, manager=None, *, channel=ZmqChannel, **extra):
    """A :class:`ZmqChannel` (or the subclass ``channel``, given ``extra``) to the running kernel of
    connection ``info`` (a dict); ``kernel`` is how errors and listings name it. Raises
    :class:`ShipError` if it does not answer in time."""
    from jupyter_client import BlockingKernelClient

    # With the manager as parent, the client asks it whether the kernel lives (else: the heartbeat,
    # which a loaded machine can miss). Not manager.client(): that shares the manager's Session,
    # whose replay check then refuses the IOPub messages a second client of it also receives.
    client = BlockingKernelClient(parent=manager)
    client.load_connection_info(info)
    channel = channel(client, manager, kernel=kernel, **extra)  # refuses an empty key first
    client.start_channels()
    try:
        client.wait_for_ready(timeout=timeout)
    except RuntimeError as exc:
        client.stop_channels()
        raise TargetError(f"the kernel {kernel} does not answer: {exc}") from None
    return channel


def start_local(timeout=60):
    """A :class:`ZmqChannel` owning a new kernel: ``python -m ipykernel_launcher`` on *this*
    interpreter.

    It listens on Unix sockets (the ``ipc`` transport, files next to its connection file) where
    there are any: local only, and faster than TCP on loopback for large payloads; on TCP
    otherwise (Windows, or a runtime folder whose path is too long for a socket's).

    The kernel spec is built here rather than looked up: a user-level ``python3`` spec may point
    at another Python. The kernel's own stdout/stderr (log noise, warnings) go to a temporary file,
    shown only if it fails to start; the manager keeps it (a restart launches with it again).
    """
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

    class ThisInterpreter(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f",
                                    "{connection_file}"],
                              display_name=f"Python {PYTHON}", language="python")

    manager = KernelManager(kernel_name="python3", kernel_spec_manager=ThisInterpreter(),
                            **_local_transport())
    log = tempfile.TemporaryFile()
    manager.start_kernel(stdout=subprocess.DEVNULL, stderr=log)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=timeout)
    except RuntimeError as exc:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
        log.seek(0)
        raise ShipError(f"the local kernel did not start: {exc}\n"
                        f"{log.read()[-2000:].decode(errors='replace')}") from None
    return ZmqChannel(client, manager, owned=True, kernel=manager.kernel_id)


def _local_transport():
    """The KernelManager's transport settings: ``ipc`` (Unix sockets named after an absolute path
    in the Jupyter runtime folder, one name per kernel) where Unix sockets exist and their paths
    fit, else ``tcp`` (jupyter_client's defaults)."""
    from jupyter_core.paths import jupyter_runtime_dir
    from jupyter_core.utils import ensure_dir_exists

    if os.name != "posix":
        return {}
    runtime = os.path.abspath(jupyter_runtime_dir())
    ip = os.path.join(runtime, f"cloudpickle_ipy-{uuid.uuid4().hex[:12]}-ipc")
    if len(ip) + 6 > 100:  # a socket is <ip>-<port>; sun_path holds 107 (104 on macOS) bytes
        return {}
    ensure_dir_exists(runtime, 0o700)
    return {"transport": "ipc", "ip": ip}
