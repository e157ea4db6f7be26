"""Kernels behind a Jupyter Server's REST API and websocket: JupyterLab and Jupyter Server (their URL
as they print it), a JupyterHub user's server (``/user/NAME/``), jupyter-kernel-gateway and
Enterprise Gateway (the same API), on ``http`` or ``https`` (certificates verified).

``requests`` carries the REST calls (start, look up, interrupt and shut down a kernel), the
``websockets`` library the kernel's messages (``/api/kernels/ID/channels``). The token goes in an
``Authorization`` header, never in a URL, a listing or a message: it comes from the URL the user
gave, else ``JUPYTER_TOKEN``, else ``getpass`` (asked only if the server refuses us without one).

Three ways of framing messages on the websocket, chosen when it opens:

- ``v1``: the ``v1.kernel.websocket.jupyter.org`` subprotocol, offered and taken by Jupyter Server
  2 and the gateways built on it. Binary frames: offsets, the channel, the message's JSON parts as
  the server forwards them to ZeroMQ unparsed, then the buffers as they are.
- ``binary``: the default protocol, when the server does not take ``v1``: JSON text frames, and a
  binary frame (offsets, the JSON message, the buffers) for a message with buffers.
- ``text``: the default protocol without binary frames, for a path that mangles them (a Jupyter
  Server in front of a gateway decodes what the gateway sends as UTF-8 text, and sends what we
  send as text). Buffers travel as base64 strings (:mod:`..agent` says where). Chosen, and said in
  one line, when a binary test message sent on the default protocol gets no answer.

A websocket that drops is opened again with the same session id: the server has kept the
kernel's messages meanwhile (while no other client is connected to that kernel) and replays
them. One that cannot be opened again within :data:`RECONNECT` seconds is one error line.
"""
import base64
import datetime
import getpass
import json
import os
import re
import ssl
import struct
import time
import uuid
from urllib.parse import parse_qs, quote, unquote, urljoin, urlsplit, urlunsplit

from .. import KernelDied, TargetError
from . import Channel

V1 = "v1.kernel.websocket.jupyter.org"
# Tornado's default limit on one websocket message (websocket_max_message_size), which Jupyter
# Server, jupyter-kernel-gateway and Enterprise Gateway keep, and which the tornado client of a
# Jupyter Server in front of a gateway applies too: parts leave room for the message around them.
MAX_MESSAGE = 10 * 1024 * 1024
PART_SIZE = {"v1": 8 << 20, "binary": 8 << 20, "text": 6 << 20}  # base64: 4/3 of it
# A larger binary message goes as frames of this size (one message, fragmented): the client masks
# and copies each frame it sends into new buffers, and small ones are reused memory, not fresh
# pages to fault in (a 256 MiB push: half the client's CPU time).
FRAME = 1 << 20
RECONNECT = 10  # seconds to open a dropped websocket again
_REST_TIMEOUT = 30
_ALIVE_EVERY = 1.0  # seconds between two looks at the kernel's REST model
_UI_PATHS = re.compile(r"/(lab|tree|notebooks|doc|edit|consoles|terminals)(/.*)?$")


class TokenRefused(TargetError):
    """The server refused the token (401 or 403)."""


def parse_url(url):
    """``(base URL, kernel id or None, token or None)`` of a server or kernel URL.

    ``http(s)://HOST:PORT[/BASE]/[?token=T]`` names a server, and the pages of its web UI
    (``.../lab?token=T`` as JupyterLab prints it) name it too; ``.../api/kernels/ID`` a kernel on
    it. The base URL ends with ``/`` and holds no token, user or password.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"not a server URL: {shown(url)}")
    token = parse_qs(parts.query).get("token", [None])[0] or None
    path, kernel_id = parts.path, None
    found = re.search(r"/api/kernels/([^/]+)/?$", path)
    if found:
        kernel_id, path = unquote(found[1]), path[:found.start()]
    else:
        path = _UI_PATHS.sub("", path)
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, path.rstrip("/") + "/", "", "")), kernel_id, token


def shown(url):
    """``url`` as listings and errors show it: no query (a token), no user or password (anything
    but a URL unchanged)."""
    if not is_url(url):
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def is_url(spec):
    return isinstance(spec, str) and spec.startswith(("http://", "https://"))


def ca_bundle():
    """The CA certificates that https servers are verified against: ``REQUESTS_CA_BUNDLE`` (or
    ``CURL_CA_BUNDLE``) if set, else requests' own bundle (certifi); the websocket uses the same."""
    import requests.certs

    return (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            or requests.certs.where())


class Server:
    """A Jupyter Server's (or gateway's) REST API at ``base``, with ``token`` (or none)."""

    def __init__(self, base, token):
        import requests

        self.base, self._token = base, token
        self.http = requests.Session()
        self.http.verify = ca_bundle()

    @property
    def headers(self):
        return {"Authorization": f"token {self._token}"} if self._token else {}

    def call(self, method, path, body=None, timeout=_REST_TIMEOUT):
        """The response to ``method`` on ``base + path``; one-line :class:`TargetError` for a
        server that cannot be reached and :class:`TokenRefused` for a 401 or 403."""
        import requests

        try:
            response = self.http.request(method, self.base + path, json=body, headers=self.headers,
                                         timeout=timeout, allow_redirects=False)
        except requests.exceptions.SSLError as exc:
            raise TargetError(f"could not verify the https certificate of {self.base}: "
                              f"{_reason(exc)} (set REQUESTS_CA_BUNDLE to the CA file that "
                              f"signed it)") from None
        except requests.RequestException as exc:
            raise TargetError(f"cannot reach {self.base}: {_reason(exc)}") from None
        if response.status_code in (401, 403):
            raise TokenRefused(f"the server said {response.status_code}: check the token "
                               f"({self.base})")
        if 300 <= response.status_code < 400:  # e.g. JupyterHub, for a server not running
            raise TargetError(f"{self.base} sends its API requests to "
                              f"{shown(urljoin(self.base, response.headers.get('Location', '')))}"
                              f": not a Jupyter "
                              f"Server there (on a JupyterHub, start your server first)")
        return response

    def authenticate(self, path):
        """Make sure the token works, by a GET of ``path``: without a token, ``JUPYTER_TOKEN``
        is tried, then the user is asked (getpass). Returns the response."""
        if self._token is None and os.environ.get("JUPYTER_TOKEN"):
            self._token = os.environ["JUPYTER_TOKEN"]
        try:
            return self.call("GET", path)
        except TokenRefused:
            if self._token is not None:
                raise
        self._token = getpass.getpass(f"Token for {self.base}: ").strip() or None
        return self.call("GET", path)

    def kernel(self, kernel_id):
        """The kernel's REST model, or None if the server has no such kernel."""
        response = self.call("GET", f"api/kernels/{quote(kernel_id, safe='')}")
        if response.status_code == 404:
            return None
        _check(response, f"looking up kernel {kernel_id}")
        return response.json()

    def start_kernel(self, kernel_name=None):
        """Start a kernel (of the server's default spec, or ``kernel_name``); its id."""
        response = self.call("POST", "api/kernels", {"name": kernel_name} if kernel_name else {})
        if response.status_code >= 400 and kernel_name:
            specs = self.call("GET", "api/kernelspecs")
            names = sorted(specs.json().get("kernelspecs", {})) if specs.ok else []
            if names and kernel_name not in names:
                raise TargetError(f"{self.base} has no kernel spec {kernel_name!r} (it has: "
                                  f"{', '.join(names)})")
        _check(response, "starting a kernel")
        return response.json()["id"]

    def interrupt(self, kernel_id):
        _check(self.call("POST", f"api/kernels/{quote(kernel_id, safe='')}/interrupt"),
               "interrupting the kernel")

    def shutdown(self, kernel_id):
        response = self.call("DELETE", f"api/kernels/{quote(kernel_id, safe='')}", timeout=10)
        if response.status_code != 404:
            _check(response, "shutting the kernel down")

    def websocket_url(self, kernel_id, session_id):
        parts = urlsplit(self.base)
        scheme = {"http": "ws", "https": "wss"}[parts.scheme]
        return urlunsplit((scheme, parts.netloc,
                           f"{parts.path}api/kernels/{quote(kernel_id, safe='')}/channels",
                           f"session_id={session_id}", ""))


def _check(response, doing):
    if response.status_code >= 400:
        try:
            message = response.json().get("message") or response.reason
        except ValueError:
            message = response.reason
        raise TargetError(f"the server said {response.status_code} {doing}: "
                          f"{str(message).splitlines()[0] if message else ''}".rstrip(": "))


def _reason(exc):
    """The innermost cause of a requests or websockets error, in a few words."""
    text = str(exc)
    for pattern in (r"certificate verify failed: ([^(')\]]+)", r"\[Errno -?\d+\] ([^')]+)",
                    r"(Read timed out)", r"(timed out)"):
        found = re.search(pattern, text)
        if found:
            return found[1].strip().rstrip(".")
    return type(exc).__name__


class WebSocketChannel(Channel):
    """The kernel ``kernel_id`` of ``server``, over its websocket. ``owned``: started for this
    channel, shut down by :meth:`close`. ``say`` shows one line to the user (the framing chosen
    when it is the fallback)."""

    def __init__(self, server, kernel_id, *, owned=False, timeout=60, say=print):
        self.server, self.kernel_id, self.owned = server, kernel_id, owned
        self.kernel = f"{kernel_id} on {server.base}"
        self.session_id = uuid.uuid4().hex
        self.say = say
        self.mode = None  # "v1", "binary" or "text": see the module docstring
        self._ws = None
        self._closed = False
        self._dead = False  # the server said the kernel is dead
        self._looked = (0.0, True)  # (when, alive) of the last look at the REST model
        deadline = time.monotonic() + timeout
        self._open(timeout)
        self.wait_for_ready(max(deadline - time.monotonic(), 1))
        if self.mode == "binary" and not self._passes_binary(deadline):
            self.mode = "text"
            self.say(f"{server.base} does not pass binary websocket frames (as a Jupyter Server "
                     f"in front of a gateway does not): payloads travel as base64 text")
            self.wait_for_ready(max(deadline - time.monotonic(), 1))

    @property
    def binary(self):
        return self.mode != "text"

    @property
    def part_size(self):
        return PART_SIZE[self.mode]

    # -- the websocket ---------------------------------------------------------------------------

    def _open(self, timeout):
        """Open the websocket (offering ``v1``); keep the framing chosen the first time."""
        from websockets.exceptions import InvalidStatus, WebSocketException
        from websockets.sync.client import connect

        context = None
        if self.server.base.startswith("https:"):
            context = ssl.create_default_context(cafile=ca_bundle())
        try:
            self._ws = connect(
                self.server.websocket_url(self.kernel_id, self.session_id), ssl=context,
                create_connection=_quick_ack_connection(),
                subprotocols=[V1], additional_headers=self.server.headers, compression=None,
                max_size=None, open_timeout=timeout, ping_interval=20, ping_timeout=60,
                close_timeout=5).__enter__()  # the open connection (closed by close())
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise TokenRefused(f"the server said {status}: check the token "
                                   f"({self.server.base})") from None
            if status == 404:
                raise KernelDied(f"the kernel {self.kernel_id} is gone from "
                                 f"{self.server.base}") from None
            raise TargetError(f"the server said {status} to the kernel's websocket "
                              f"({self.server.base})") from None
        except ssl.SSLError as exc:
            raise TargetError(f"could not verify the https certificate of {self.server.base}: "
                              f"{_reason(exc)} (set REQUESTS_CA_BUNDLE to the CA file that "
                              f"signed it)") from None
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise TargetError(f"cannot open the kernel's websocket at {self.server.base}: "
                              f"{_reason(exc)}") from None
        if self.mode is None:
            self.mode = "v1" if self._ws.subprotocol == V1 else "binary"

    def _reopen(self):
        """Open a dropped websocket again, within :data:`RECONNECT` seconds, or say why not."""
        give_up, pause = time.monotonic() + RECONNECT, 0.1
        while True:
            try:
                self._open(min(5, max(give_up - time.monotonic(), 0.5)))
                return
            except KernelDied:
                self._dead = True
                raise
            except TargetError as exc:
                if isinstance(exc, TokenRefused) or time.monotonic() + pause > give_up:
                    raise TargetError(f"the websocket to {self.server.base} closed and could not "
                                      f"be opened again within {RECONNECT} s: {exc}") from None
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def send(self, channel, msg_type, content, buffers=None):
        from websockets.exceptions import ConnectionClosed

        header = {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": self.session_id,
                  "username": "cloudpickle_ipy", "version": "5.3",
                  "date": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        msg = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
        data = _encode(self.mode, channel, msg, list(buffers or ()))
        for attempt in (1, 2):
            if self._closed:
                raise TargetError(f"the websocket to {self.server.base} is closed")
            try:
                self._ws.send(_frames(data))
                break
            except ConnectionClosed:
                if attempt == 2:
                    raise TargetError(f"the websocket to {self.server.base} closed while "
                                      f"sending") from None
                self._reopen()
        return header["msg_id"]

    def receive(self, timeout):
        from websockets.exceptions import ConnectionClosed

        out = []
        wait = max(timeout, 0)
        while True:
            try:
                raw = self._ws.recv(timeout=wait)
            except TimeoutError:
                return out
            except ConnectionClosed:
                if self._closed:
                    return out
                self._reopen()
                return out
            wait = 0
            received = _decode(self.mode, raw)
            if received is None:
                continue
            channel, msg = received
            if channel == "iopub" and msg["msg_type"] == "status" and (
                    msg["content"].get("execution_state") == "dead"):
                self._dead = True
            out.append((channel, msg))

    @property
    def alive(self):
        """The server's word, looked up at most once a second: the kernel exists there and is
        not dead. While the server cannot be reached, the last answer stands: the websocket then
        says what is wrong (it is opened again, or it says in one line why it cannot be)."""
        if self._dead or self._closed:
            return False
        when, alive = self._looked
        if time.monotonic() - when >= _ALIVE_EVERY:
            try:
                model = self.server.kernel(self.kernel_id)
                alive = model is not None and model.get("execution_state") != "dead"
            except TargetError:
                pass
            self._looked = (time.monotonic(), alive)
        return alive

    def wait_for_ready(self, timeout):
        """Send ``kernel_info_request`` (again each second: a path being set up may drop one)
        until the kernel answers; what else arrives meanwhile is dropped."""
        deadline = time.monotonic() + timeout
        asked = set()
        while True:
            asked.add(self.send("shell", "kernel_info_request", {}))
            resend = time.monotonic() + 1
            while time.monotonic() < min(resend, deadline):
                for channel, msg in self.receive(min(resend, deadline) - time.monotonic()):
                    if (msg["msg_type"] == "kernel_info_reply"
                            and msg["parent_header"].get("msg_id") in asked):
                        return
            if time.monotonic() >= deadline:
                raise RuntimeError(f"the kernel did not answer within {timeout:g} s")
            if not self.alive:
                raise RuntimeError("the kernel is dead")

    def _passes_binary(self, deadline):
        """Whether a binary message reaches the kernel: a ``kernel_info_request`` on the control
        channel with a buffer that is not UTF-8 gets its reply within a few seconds."""
        start = time.monotonic()
        asked = self.send("control", "kernel_info_request", {}, buffers=[b"\xff\xfe\x00\x80"])
        until = min(deadline, start + 3)
        while time.monotonic() < until:
            for channel, msg in self.receive(until - time.monotonic()):
                if channel == "control" and msg["parent_header"].get("msg_id") == asked:
                    return True
        return False

    def interrupt(self):
        """Through the server's interrupt endpoint (its kernel manager signals the kernel)."""
        self.server.interrupt(self.kernel_id)

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            if self._ws is not None:
                self._ws.close()
        finally:
            if self.owned:
                try:
                    self.server.shutdown(self.kernel_id)
                except TargetError:  # the server is gone: so is its kernel
                    pass
            self.server.http.close()


def _quick_ack_connection():
    """The websockets connection class to use: one whose socket acknowledges at once.

    Jupyter Server leaves Nagle's algorithm on for its websockets, so after one small message
    (the kernel's ``busy`` status) it holds the next ones until that one is acknowledged, and
    Linux delays acknowledgements by up to 40 ms: every round trip would take 40 ms. On Linux,
    re-arming ``TCP_QUICKACK`` after each read makes the acknowledgement immediate (a server is
    not ours to set ``TCP_NODELAY`` on); elsewhere the plain class is used.
    """
    import socket

    from websockets.sync.client import ClientConnection

    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is None:
        return None

    class QuickAckSocket:
        def __init__(self, sock):
            self._sock = sock

        def recv(self, size, *flags):
            data = self._sock.recv(size, *flags)
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
            except OSError:
                pass
            return data

        def __getattr__(self, name):
            return getattr(self._sock, name)

    class QuickAckConnection(ClientConnection):
        def __init__(self, sock, *args, **kwargs):
            super().__init__(QuickAckSocket(sock), *args, **kwargs)

    return QuickAckConnection


def open_url(url, *, kernel_name=None, timeout=60, say=print):
    """A :class:`WebSocketChannel` to what ``url`` names: a new kernel on a server (of its
    default spec, or ``kernel_name``), owned by the channel, or an existing kernel
    (``.../api/kernels/ID``), never shut down by us."""
    base, kernel_id, token = parse_url(url)
    server = Server(base, token)
    if kernel_id is None:
        server.authenticate("api/kernelspecs")
        kernel_id, owned = server.start_kernel(kernel_name), True
    else:
        if kernel_name is not None:
            raise TargetError("kernel_name chooses the spec of a kernel the server starts; "
                              "this URL names a running kernel")
        if server.authenticate(f"api/kernels/{quote(kernel_id, safe='')}").status_code == 404:
            raise TargetError(f"{base} has no kernel {kernel_id}")
        owned = False
    try:
        return WebSocketChannel(server, kernel_id, owned=owned, timeout=timeout, say=say)
    except BaseException:
        if owned:
            try:
                server.shutdown(kernel_id)
            except TargetError:
                pass
        raise


# -- framing ---------------------------------------------------------------------------------------

def _json(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def _frames(data):
    """``data`` as the websocket client should send it: a binary message larger than ``FRAME``
    as slices of it (sent as the fragments of one message), anything else as it is."""
    if isinstance(data, str) or len(data) <= FRAME:
        return data
    view = memoryview(data)
    return [view[at:at + FRAME] for at in range(0, len(view), FRAME)]


def _encode(mode, channel, msg, buffers):
    """One websocket message (bytes or str) carrying ``msg`` and its ``buffers`` on ``channel``."""
    if mode == "v1":
        parts = [_json(msg["header"]), _json(msg["parent_header"]), _json(msg["metadata"]),
                 _json(msg["content"]), *(memoryview(b).cast("B") for b in buffers)]
        name = channel.encode()
        offsets = [8 * (len(parts) + 3)]
        offsets.append(offsets[-1] + len(name))
        for part in parts:
            offsets.append(offsets[-1] + len(part))
        return b"".join([struct.pack(f"<{len(offsets) + 1}Q", len(offsets), *offsets), name,
                         *parts])
    msg = {**msg, "channel": channel}
    if mode == "text" or not buffers:
        if buffers:
            msg["content"] = {**msg["content"], "b64": [
                base64.b64encode(b).decode() for b in buffers]}
        return json.dumps(msg, separators=(",", ":"))
    parts = [_json(msg), *(memoryview(b).cast("B") for b in buffers)]
    offsets = [4 * (len(parts) + 1)]
    for part in parts[:-1]:
        offsets.append(offsets[-1] + len(part))
    return b"".join([struct.pack(f"!{len(parts) + 1}I", len(parts), *offsets), *parts])


def _decode(mode, raw):
    """``(channel, message dict)`` from one websocket message framed as ``mode`` says (a text
    message is JSON whatever the mode); None for one that carries no kernel message."""
    buffers = []
    if isinstance(raw, str):
        msg = json.loads(raw)
    elif mode == "v1":
        view = memoryview(raw)
        count = int.from_bytes(raw[:8], "little")
        offsets = struct.unpack_from(f"<{count}Q", raw, 8)
        channel = bytes(view[offsets[0]:offsets[1]]).decode()
        parts = [view[offsets[i]:offsets[i + 1]] for i in range(1, count - 1)]
        header, parent, metadata, content = (json.loads(bytes(p)) for p in parts[:4])
        return channel, _message(header, parent, metadata, content, map(bytearray, parts[4:]))
    else:
        view = memoryview(raw)
        count = struct.unpack_from("!I", raw)[0]
        offsets = struct.unpack_from(f"!{count}I", raw, 4) + (len(raw),)
        msg = json.loads(bytes(view[offsets[0]:offsets[1]]))
        buffers = [bytearray(view[offsets[i]:offsets[i + 1]]) for i in range(1, count)]
    if "header" not in msg:
        return None
    content = msg.get("content") or {}
    if isinstance(content.get("b64"), list):  # the agent's replies to a text-mode client
        buffers = [bytearray(base64.b64decode(b)) for b in content.pop("b64")]
    return msg.get("channel"), _message(msg["header"], msg.get("parent_header") or {},
                                        msg.get("metadata") or {}, msg.get("content") or {},
                                        buffers)


def _message(header, parent, metadata, content, buffers):
    """A jupyter_client message dict; ``buffers`` are copied out of the websocket message into
    buffers of their own (as ZeroMQ frames are), so arrays loaded on them are aligned and
    writeable."""
    return {"header": header, "parent_header": parent, "metadata": metadata, "content": content,
            "buffers": list(buffers), "msg_id": header.get("msg_id"),
            "msg_type": header.get("msg_type")}
