"""Real servers for the remote tests, started on loopback as separate processes and always stopped:
``jupyter server`` (a random token, the JupyterHub-like base URL ``/user/alice/``),
jupyter-kernel-gateway, a Jupyter Server in front of that gateway, and an SSH server (asyncssh's,
:mod:`tests.remote.sshd`) with throwaway keys; and a TCP relay whose connections a test can cut.

Each server gets folders of its own (config, runtime, data, kernel specs), so nothing of the
user's Jupyter setup is read or written. Its kernel specs: ``python3`` (this venv's Python, the
default), ``bare`` (a venv with only ipykernel: no cloudpickle_ipy) and, when asked, ``other`` (a
venv of another Python minor version).
"""
import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from tests.venvs import clean_env

BASE = "/user/alice/"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kernel_spec(folder, name, python, display=None):
    spec = Path(folder, "kernels", name)
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": display or name, "language": "python"}))


class Process:
    """A server process started with ``argv`` in ``folder``, its output in ``folder/log``."""

    def __init__(self, argv, folder, env, ready_url, verify=True, timeout=90):
        self.folder = Path(folder)
        self.log = open(self.folder / "log", "wb")
        self.proc = subprocess.Popen(argv, cwd=folder, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(ready_url, verify=verify, timeout=2).status_code < 500:
                    return
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{argv[2:4]} did not start:\n{self.output()[-3000:]}")
            time.sleep(0.2)

    def output(self):
        return (self.folder / "log").read_text(errors="replace")

    def stop(self):
        """SIGTERM (the servers shut their kernels down), then SIGKILL to the whole group."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()


def _jupyter_env(folder):
    folder = Path(folder)
    for sub in ("config", "runtime", "data", "share/jupyter"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return clean_env(JUPYTER_CONFIG_DIR=str(folder / "config"),
                     JUPYTER_RUNTIME_DIR=str(folder / "runtime"),
                     JUPYTER_DATA_DIR=str(folder / "data"),
                     JUPYTER_PATH=str(folder / "share/jupyter"),
                     JUPYTER_PLATFORM_DIRS="1", PYDEVD_DISABLE_FILE_VALIDATION="1")


class JupyterServer(Process):
    """``jupyter server`` on 127.0.0.1 with a random token and base URL ``base``; ``specs``:
    extra kernel specs ``{name: python}``; ``extra``: more command-line options."""

    def __init__(self, folder, specs=(), base=BASE, extra=(), certfile=None, keyfile=None):
        self.token, self.port, self.base = secrets.token_hex(16), free_port(), base
        env = _jupyter_env(folder)
        for name, python in dict(specs).items():
            kernel_spec(Path(folder, "share/jupyter"), name, python)
        self.scheme, self.verify = ("https", certfile) if certfile else ("http", True)
        argv = [sys.executable, "-m", "jupyter_server", "--allow-root", "--no-browser",
                "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
                f"--ServerApp.base_url={base}", f"--ServerApp.root_dir={folder}", *extra]
        if certfile:
            argv += [f"--ServerApp.certfile={certfile}", f"--ServerApp.keyfile={keyfile}"]
        super().__init__(argv, folder, env, f"{self.url}api", verify=certfile or True)

    @property
    def url(self):
        """The server's URL, without token."""
        return f"{self.scheme}://127.0.0.1:{self.port}{self.base}"

    def with_token(self, path=""):
        return f"{self.url}{path}?token={self.token}"

    def rest(self, method, path, **kwargs):
        kwargs.setdefault("timeout", 30)
        response = requests.request(method, self.url + path, verify=self.verify,
                                    headers={"Authorization": f"token {self.token}"}, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def start_kernel(self, name=None):
        return self.rest("POST", "api/kernels", json={"name": name} if name else {})["id"]

    def kernels(self):
        return {k["id"]: k for k in self.rest("GET", "api/kernels")}


class KernelGateway(JupyterServer):
    """``jupyter kernelgateway`` (its token: ``KG_AUTH_TOKEN``), with the same specs."""

    def __init__(self, folder, specs=(), base="/gateway/"):
        self.token, self.port, self.base = secrets.token_hex(16), free_port(), base
        self.scheme, self.verify = "http", True
        env = _jupyter_env(folder)
        for name, python in dict(specs).items():
            kernel_spec(Path(folder, "share/jupyter"), name, python)
        argv = [sys.executable, "-m", "kernel_gateway", "--KernelGatewayApp.ip=127.0.0.1",
                f"--KernelGatewayApp.port={self.port}", "--KernelGatewayApp.port_retries=0",
                f"--KernelGatewayApp.auth_token={self.token}",
                f"--KernelGatewayApp.base_url={base}", "--JupyterWebsocketPersonality.list_kernels=True"]
        Process.__init__(self, argv, folder, env, f"{self.url}api")


def gateway_front(folder, gateway):
    """A Jupyter Server that runs no kernel itself: its kernels are ``gateway``'s (``--gateway-url``),
    so their messages pass through its gateway connection, which decodes binary frames as text."""
    return JupyterServer(folder, extra=[f"--gateway-url=http://127.0.0.1:{gateway.port}"
                                        f"{gateway.base}",
                                        f"--GatewayClient.auth_token={gateway.token}",
                                        "--GatewayClient.request_timeout=60"])


class Relay:
    """A TCP relay on loopback to ``port``, in a thread of this process: :meth:`cut` closes every
    connection through it (a network drop), ``refuse`` makes it turn new ones away,
    :meth:`tamper` changes a byte on the way (someone on the path), and ``rate`` (bytes per
    second, ``None``: as fast as it goes) slows what the server sends (a slow link)."""

    def __init__(self, port):
        self.target, self.refuse, self.rate = port, False, None
        self._tamper_at = None  # flip a bit of the byte this far ahead in what the server sends
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._writers = set()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._started.wait(10)

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self._started.set()
        self._loop.run_forever()

    async def _serve(self, reader, writer):
        if self.refuse:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self._writers |= {writer, up_writer}

        async def pipe(src, dst, downstream):
            try:
                while data := await src.read(1 << 20):
                    if downstream and self._tamper_at is not None:
                        if self._tamper_at < len(data):
                            data = bytearray(data)
                            data[self._tamper_at] ^= 1
                            self._tamper_at = None
                        else:
                            self._tamper_at -= len(data)
                    dst.write(data)
                    await dst.drain()
                    if downstream and self.rate:
                        await asyncio.sleep(len(data) / self.rate)
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))

    def tamper(self, after):
        """Flip one bit of what the server sends, ``after`` bytes from now (once)."""
        self._tamper_at = after

    def cut(self):
        """Close every connection open through the relay, both ways."""
        def close():
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()
        self._loop.call_soon_threadsafe(close)
        time.sleep(0.2)

    def stop(self):
        self.cut()
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
