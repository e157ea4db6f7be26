"""A Jupyter kernel as a target: the channels (jupyter_client), not the wire format (:mod:`.envelope`).

:class:`KernelTarget` starts the agent in the kernel (:mod:`.agent`, whose docstring describes how
a request travels), after checking the kernel's Python (another minor version is refused before
anything is sent) and shipping the agent and the core when the kernel lacks them or has another
version (:mod:`.bootstrap`). It sends each request as an ``execute_request`` that serves it and
carries the envelope frames (a large payload's body goes ahead in a comm message, its signature
computed while it travels: see :mod:`.agent`), and then reads IOPub until that execution is idle:
stdout and stderr are written to the local ``sys.stdout``/``sys.stderr`` as they arrive, display
output as its ``text/plain``, and the reply envelope comes back as a comm message. Waiting
is done in short slices; between them a dead kernel (process gone, or no heartbeat) raises
:class:`KernelDied`, and the timeout raises :class:`ShipTimeout`, so nothing waits forever on a
kernel that cannot answer. A ``KeyboardInterrupt`` or a timeout while waiting interrupts the kernel
too and waits (briefly) for it to stop, so the target is usable right after (a timeout, only when
what runs is a request of ours). A kernel restarted between requests gets the agent again.
"""
import ast
import atexit
import re
import sys
import time
import uuid

import zmq

from .. import core
from . import KernelDied, PayloadRefused, RemoteError, ShipError, ShipTimeout, bootstrap, envelope
from .agent import NOT_INSTALLED, TARGET_NAME
from .sources import SourceTracker

AGENT_MODULE = "cloudpickle_ipy.ship.agent"
_SLICE = 0.2  # seconds between liveness checks while nothing arrives
_INTERRUPT_GRACE = 10  # seconds to wait for an interrupted request to stop on the target
_TIMEOUT_GRACE = 5  # the same after a timeout
# Payloads of at least this many bytes go split (body first, then the signature: see .agent).
SPLIT_MIN = 1 << 22


class KernelTarget:
    """Push, pull, call and run on one Jupyter kernel.

    ``client`` is a started ``BlockingKernelClient`` used by this target alone (its replies are
    read here and others dropped); ``manager``, when given, tells whether the kernel process lives
    and, with ``owned``, is shut down by :meth:`close`. ``timeout`` (seconds, ``None``: no limit)
    bounds every request; a dead kernel is reported whatever the timeout.
    """

    def __init__(self, client, manager=None, *, owned=False, timeout=None, name=None,
                 startup_timeout=30):
        self.client, self.manager, self.owned = client, manager, owned
        self.timeout, self.startup_timeout = timeout, startup_timeout
        self.name = name
        self.session = client.session
        self.sources = SourceTracker()
        self.agent = None  # the agent's hello: python, version, pid, format
        self.shipped = False  # whether the agent runs from code this client sent (bootstrap)
        self._process = None  # the kernel process the agent was started in (see _restarted)
        self._comm_id = None
        self._closed = False
        self._shell = client.shell_channel.socket
        self._iopub = client.iopub_channel.socket
        self._poller = zmq.Poller()
        self._poller.register(self._shell, zmq.POLLIN)
        self._poller.register(self._iopub, zmq.POLLIN)
        self._start_agent(startup_timeout)

    def __repr__(self):
        python = self.agent["python"] if self.agent else "?"
        return f"<KernelTarget {self.name or ''} python={python} alive={self.alive}>"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def alive(self):
        if self.manager is not None:
            return self.manager.is_alive()
        return self.client.hb_channel.is_beating()

    # -- the Python API ------------------------------------------------------------------------

    def push(self, mapping=None, /, **names):
        """Place names into the target's namespace: ``push(x=1)`` or ``push({"x": 1})``."""
        names = {**(mapping or {}), **names}
        self.request("push", {"names": names})

    def pull(self, *names):
        """The values of ``names`` on the target: one value for one name, else a tuple."""
        values = self.request("pull", {"names": list(names)})
        return values[0] if len(names) == 1 else tuple(values)

    def call(self, fn, /, *args, **kwargs):
        """``fn(*args, **kwargs)`` on the target; its return value comes back."""
        return self.request("call", {"fn": fn, "args": args, "kwargs": kwargs})

    def run(self, code, *, timeout=None):
        """Run ``code`` on the target like a cell and return its last expression's value.

        Output is relayed as it is produced; an exception raises :class:`RemoteError` showing the
        target's traceback.
        """
        return self.request("run", {"code": code}, timeout=timeout)

    def close(self):
        """Shut down a kernel this target started; otherwise close the comm and the channels."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        try:
            if self.owned and self.manager is not None:
                self.client.stop_channels()
                self.manager.shutdown_kernel(now=not self.manager.is_alive())
                return
            if self._comm_id is not None and self.alive:
                self.session.send(self._shell, "comm_close", {"comm_id": self._comm_id, "data": {}})
            self.client.stop_channels()
        finally:
            self._poller = None

    # -- the protocol --------------------------------------------------------------------------

    def request(self, op, args, timeout=None):
        """Send one request (with the module sources the target lacks) and return its value."""
        if self._closed:
            raise ShipError(f"{self!r} is closed")
        if not self.alive:
            raise KernelDied(f"the kernel of {self.name or 'the target'} is dead")
        try:
            modules, reply = self._exchange(op, args, timeout)
        except _AgentGone:  # restarted unnoticed: nothing ran, so start the agent and resend
            self._comm_id = None
            modules, reply = self._exchange(op, args, timeout)
        if reply.get("loaded"):
            self.sources.sent(modules)
        if reply["ok"]:
            return reply["value"]
        error = reply["error"]
        if reply.get("refused"):
            raise PayloadRefused(f"the target refused the payload: {error['message']}")
        raise RemoteError(error["type"], error["message"], error["traceback"])

    def _exchange(self, op, args, timeout):
        """Start the agent if the kernel lacks it, send the request; return (modules, reply)."""
        if self._comm_id is not None and self._restarted():
            self._comm_id = None
        if self._comm_id is None:  # the kernel restarted: start the agent in the new one
            try:
                self.client.wait_for_ready(timeout=self.startup_timeout)  # drains stale output
            except RuntimeError as exc:
                raise KernelDied(f"the kernel does not answer: {exc}") from None
            self._start_agent(self.startup_timeout)
        modules = self.sources.changed(core.list_registry_pickle_by_value())
        buffers = []
        data = core.dumps({"op": op, "args": args, "modules": modules}, protocol=5,
                          buffer_callback=buffers.append)
        request_id = uuid.uuid4().hex
        header, body = envelope.frame("request", request_id, data, buffers)
        key = self.session.key
        return modules, self._send(request_id, header, body,
                                   lambda: envelope.sign(key, header, body), timeout)

    def send_frames(self, request_id, frames, timeout=None, split=None):
        """The raw exchange: send envelope ``frames`` (``[header, signature, body...]``, as they
        are, valid or not) as request ``request_id``, serve it, and return the loaded reply (a dict
        with ``ok`` and ``value`` or ``error``). ``split``: send the body ahead in a comm message
        (``None``: when it is large)."""
        frames = list(frames)
        return self._send(request_id, frames[0], frames[2:], lambda: frames[1], timeout, split)

    def _send(self, request_id, header, body, signature, timeout=None, split=None):
        """Send request ``request_id`` (its ``header``, its ``body`` frames, and ``signature()``,
        called once the body is on its way when split) in the way :mod:`.agent` describes."""
        if split is None:
            split = sum(memoryview(f).nbytes for f in body) >= SPLIT_MIN
        waiting = []
        if split:
            sent = self.session.send(self._shell, "comm_msg", {
                "comm_id": self._comm_id, "data": {"id": request_id}}, buffers=body)
            waiting.append(sent["header"]["msg_id"])
            buffers = [header, signature()]
        else:
            buffers = [header, signature(), *body]
        code = (f"__import__({AGENT_MODULE!r}, fromlist=['serve'])"
                f".serve({request_id!r}, {self._comm_id!r})")
        replies = []

        def on_comm(msg):
            if msg["content"]["data"].get("id") == request_id:
                replies.append(msg["buffers"])

        executed = self._execute(code, waiting, on_comm,
                                 self.timeout if timeout is None else timeout, buffers=buffers,
                                 interrupt_on_timeout=True)
        if not replies:
            content = executed["content"]
            if content["status"] == "error" and (
                    content["evalue"] == NOT_INSTALLED or content["ename"] == "ModuleNotFoundError"
                    and "cloudpickle_ipy" in content["evalue"]):
                self._comm_id = None
                raise _AgentGone("the kernel lost the agent (it restarted): nothing ran")
            raise self._execute_error(executed, "the agent sent no reply")
        try:
            sealed = envelope.unseal(self.session.key, replies[0], kind="reply",
                                     request_id=request_id)
        except envelope.EnvelopeError as exc:
            raise PayloadRefused(f"refused the target's reply: {exc}") from None
        return core.loads(sealed.pickle, buffers=sealed.buffers)

    def _start_agent(self, timeout):
        """Check the kernel's Python and cloudpickle_ipy (shipping ours when it lacks it or has
        another version), install the agent and open the comm; wait for the agent's hello."""
        report = self._probe(timeout)
        if report["python"] != envelope.PYTHON:
            raise ShipError(
                f"the target kernel runs Python {report['python']} and this is Python "
                f"{envelope.PYTHON}: functions and classes pickled by value do not load across "
                f"Python minor versions; start the target kernel on Python {envelope.PYTHON}")
        shipped = bootstrap.needs_shipping(report)
        comm_id = uuid.uuid4().hex
        hello = []

        def on_comm(msg):
            if "hello" in msg["content"]["data"]:
                hello.append(msg["content"]["data"]["hello"])

        self._comm_id = comm_id
        code = f"__import__({AGENT_MODULE!r}, fromlist=['install']).install(get_ipython())"
        if shipped:
            code = f"{bootstrap.install_code()}\n{code}"
        try:
            executed = self._execute(code, [], on_comm, timeout, then=(
                "comm_open", {"comm_id": comm_id, "target_name": TARGET_NAME, "data": {}}))
        except BaseException:
            self._comm_id = None
            raise
        if executed["content"]["status"] != "ok" or not hello:
            self._comm_id = None
            raise self._execute_error(executed, "the agent did not answer",
                                      "could not start the agent on the target")
        self.agent, self.shipped = hello[0], shipped
        self._process = self._kernel_process()
        self.sources.forget()

    def _kernel_process(self):
        """The manager's handle on the kernel process (a new one after each restart), if any."""
        return getattr(getattr(self.manager, "provisioner", None), "process", None)

    def _restarted(self):
        """Whether the kernel restarted since the agent started, between requests: its manager
        has a new process, or a ``starting`` status waits on IOPub (stale output is dropped)."""
        if self._kernel_process() is not self._process:
            return True
        restarted = False
        while self._iopub.poll(0):
            msg = self._recv(self._iopub)
            restarted |= (msg["msg_type"] == "status"
                          and msg["content"]["execution_state"] == "starting")
        return restarted

    def _probe(self, timeout):
        """What the kernel runs (:data:`.bootstrap.PROBE`): its Python, and the version and
        fingerprint of the cloudpickle_ipy it can import. Nothing is sent to it before this."""
        executed = self._execute("", [], None, timeout,
                                 user_expressions={"probe": bootstrap.probe_expression()})
        content = executed["content"]
        result = content.get("user_expressions", {}).get("probe", {})
        if content["status"] != "ok" or result.get("status") != "ok":
            raise ShipError(f"could not inspect the target kernel: "
                            f"{result.get('ename', content.get('ename'))}: "
                            f"{result.get('evalue', content.get('evalue'))}")
        return ast.literal_eval(result["data"]["text/plain"])

    def _execute(self, code, waiting, on_comm, timeout, then=None, user_expressions=None,
                 buffers=None, interrupt_on_timeout=False):
        """Execute ``code`` silently (after the messages ``waiting`` lists, before ``then``; the
        message carrying ``buffers``), relay its output, pass this comm's messages to
        ``on_comm``, and return the execute reply once every one of these messages is done (idle).

        A ``KeyboardInterrupt`` while waiting (Ctrl-C, an interrupted notebook cell) interrupts the
        kernel, waits up to :data:`_INTERRUPT_GRACE` seconds for the execution to stop there (so the
        target stays usable), then raises ``KeyboardInterrupt`` here. A timeout raises
        :class:`ShipTimeout`; with ``interrupt_on_timeout`` (a request: what runs is ours) it first
        interrupts the kernel and waits up to :data:`_TIMEOUT_GRACE` seconds for it to stop. The
        probe and the agent's start do not interrupt: on a kernel busy with someone else's cell,
        that cell is not ours to stop.
        """
        msg = self.session.send(self._shell, "execute_request", {
            "code": code, "silent": True, "store_history": False,
            "user_expressions": user_expressions or {}, "allow_stdin": False,
            "stop_on_error": False}, buffers=buffers)
        exchange = _Exchange(msg["header"]["msg_id"], waiting, on_comm)
        if then is not None:
            exchange.pending.add(self.session.send(self._shell, *then)["header"]["msg_id"])
        try:
            return self._wait(exchange, timeout)
        except ShipTimeout as exc:
            if not interrupt_on_timeout or not self.alive:
                raise ShipTimeout(f"{exc}; it may still be running there (interrupt or restart "
                                  f"it)") from None
            if not self._interrupt_and_settle(exchange, _TIMEOUT_GRACE):
                raise ShipTimeout(f"{exc}; interrupted, but the target did not stop within "
                                  f"{_TIMEOUT_GRACE} s (restart it)") from None
            raise ShipTimeout(f"{exc}; the run on the target was interrupted, the target is "
                              f"usable") from None
        except KeyboardInterrupt:
            if not self._interrupt_and_settle(exchange, _INTERRUPT_GRACE):
                raise KeyboardInterrupt(f"interrupted; the target did not stop within "
                                        f"{_INTERRUPT_GRACE} s (restart it)") from None
            raise KeyboardInterrupt("interrupted; the run on the target was interrupted "
                                    "too") from None

    def _interrupt_and_settle(self, exchange, grace):
        """Interrupt the running request and wait up to ``grace`` s for the target to go idle;
        whether it did. The reply of an interrupted request is dropped."""
        self.interrupt()
        exchange.on_comm = None
        try:
            self._wait(exchange, grace)
        except ShipTimeout:
            return False
        return True

    def interrupt(self):
        """Interrupt the kernel (what it runs stops like an interrupted cell): through its
        manager (a signal, or an ``interrupt_request`` if its kernel spec asks for messages), else
        with an ``interrupt_request`` on the control channel (ipykernel 6+ handles it whatever
        its spec says)."""
        if self.manager is not None:
            self.manager.interrupt_kernel()
        else:
            self.session.send(self.client.control_channel.socket, "interrupt_request", {})

    def _wait(self, exchange, timeout):
        """Read the channels until ``exchange`` has its execute reply and is idle everywhere."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while exchange.pending or exchange.executed is None:
            left = _SLICE if deadline is None else min(_SLICE, deadline - time.monotonic())
            if left <= 0:
                raise ShipTimeout(f"no answer from the kernel within {timeout} s")
            events = dict(self._poller.poll(left * 1000))
            if not events:
                if not self.alive:
                    self._comm_id = None
                    raise KernelDied("the kernel died before answering the request")
                continue
            if self._shell in events:
                reply = self._recv(self._shell)
                if reply["parent_header"].get("msg_id") == exchange.exec_id:
                    exchange.executed = reply
            if self._iopub in events:
                msg = self._recv(self._iopub)
                kind, content = msg["msg_type"], msg["content"]
                parent = msg["parent_header"].get("msg_id")
                if kind == "status":
                    if content["execution_state"] == "starting":
                        self._comm_id = None
                        raise KernelDied("the kernel restarted while running the request; what "
                                         "it held is gone")
                    if content["execution_state"] == "idle":
                        exchange.pending.discard(parent)
                elif kind == "comm_msg" and content.get("comm_id") == self._comm_id:
                    if exchange.on_comm is not None:
                        exchange.on_comm(msg)
                elif parent == exchange.exec_id:
                    _relay(kind, content)
        return exchange.executed

    def _recv(self, socket):
        _, parts = self.session.feed_identities(socket.recv_multipart(copy=False), copy=False)
        return self.session.deserialize(parts, content=True, copy=False)

    @staticmethod
    def _execute_error(executed, missing, context=None):
        """The error to raise for an execution that did not produce what it should have."""
        content = executed["content"]
        if content["status"] == "error":
            return RemoteError(content["ename"], f"{context}: {content['evalue']}" if context
                               else content["evalue"], _strip_ansi("\n".join(content["traceback"])))
        if content["status"] == "aborted":
            return ShipError("the kernel aborted the request (an earlier execution failed)")
        return ShipError(missing)


class _AgentGone(KernelDied):
    """The kernel has no agent any more (it restarted between requests); the request never ran."""


class _Exchange:
    """One execution being waited for: what is still not idle, and its execute reply."""

    def __init__(self, exec_id, waiting, on_comm):
        self.exec_id, self.on_comm = exec_id, on_comm
        self.pending = {*waiting, exec_id}
        self.executed = None


def _relay(kind, content):
    """Write one IOPub output message to the local streams, as plain text."""
    if kind == "stream":
        stream = sys.stderr if content["name"] == "stderr" else sys.stdout
        stream.write(content["text"])
        stream.flush()
    elif kind in ("display_data", "update_display_data", "execute_result"):
        text = content["data"].get("text/plain")
        if text is not None:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()


def _strip_ansi(text):
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
