"""The request protocol with a Jupyter kernel, written once for every way of reaching one
(:mod:`.channels`): the agent, its comm, envelopes, output relay, stopping a request, bootstrap.

:class:`KernelTarget` starts the agent in the kernel (:mod:`.agent`, whose docstring describes how
a request travels), after checking the kernel's Python (another minor version is refused before
anything is sent) and shipping the agent and the core when the kernel lacks them or has another
version (:mod:`.bootstrap`). It sends each request as a shell message of our own that carries the
envelope frames (a large payload's body goes ahead in parts, its signature computed while they
travel), and then reads the channel until the request is idle: its output is relayed as it arrives
(:mod:`.relay`), and the reply envelope comes back on the shell channel.

Waiting is done in short slices; between them a dead kernel raises :class:`KernelDied`, so nothing
waits forever on a kernel that cannot answer. A deadline covers everything a call does, queueing
included. The kernel may be shared, so a timeout or a ``KeyboardInterrupt`` never interrupts the
kernel: it asks the agent to stop *our* request (agent docstring, point 4), which cancels it if it
has not started (the kernel is busy with someone else's work: nothing of ours ran, and nothing of
ours will) and interrupts it if it runs. A request that does not stop is remembered: the next one
says so at once, or, with a timeout, waits for it under that timeout. A kernel restarted between
requests gets the agent again.
"""
import ast
import atexit
import io
import pickle
import re
import sys
import time
import uuid

from .. import core
from . import (
    Interrupted,
    KernelDied,
    PayloadRefused,
    RemoteError,
    ShipError,
    ShipTimeout,
    Target,
    bootstrap,
    envelope,
    keys,
)
from .agent import ACK, DROP, PART, REPLY, REQUEST, STOP_REPLY, STOP_REQUEST, TARGET_NAME
from .parts import PROGRESS_PART, SPLIT_MIN, Assembly, cut
from .relay import as_text
from .sources import SourceTracker

AGENT_MODULE = "cloudpickle_ipy.ship.agent"
_SLICE = 0.2  # seconds between liveness checks while nothing arrives
_STOP_ANSWER = 5  # seconds for the agent to answer a stop request (its control thread answers)
# Seconds a request's reply may trail its idle status (they travel on two sockets, and a large one
# takes long) before the kernel is asked whether one is coming (_Exchange.probe).
_PROBE_AFTER_IDLE = 0.25
_START_ATTEMPT = 10  # seconds an agent's start in a restarted kernel waits before trying again


class KernelTarget(Target):
    """Push, pull, call and run on one Jupyter kernel, reached through ``channel``.

    ``timeout`` (seconds, ``None``: no limit) bounds every call; a dead kernel is reported whatever
    the timeout. The channel is this target's alone (messages for others are dropped).
    ``settle``: seconds an interrupted request is given to end before it counts as stuck.
    ``output``: where the IOPub output of our requests goes, called ``output(msg_type, content)``
    as it arrives (:mod:`.relay`; by default its text, to ``sys.stdout`` and ``sys.stderr``).
    ``progress``, when set, is called as ``progress(direction, done, total)`` (``"push"`` or
    ``"pull"``, bytes) each time a part of a large transfer arrives at the other side, and with
    ``done=0`` when a push starts; its ``close()``, if it has one, when a request ends (a failed
    one may end half-way through a transfer).
    """

    settle = 10
    progress = None

    def __init__(self, channel, *, timeout=None, name=None, startup_timeout=30, output=as_text):
        self.channel, self.output = channel, output
        self.timeout, self.startup_timeout = timeout, startup_timeout
        self.name = name
        self.sources = SourceTracker()
        self.agent = None  # the agent's hello: python, version, pid, format
        self.key = None  # signs this comm's envelopes: agreed with the agent as it starts (.keys)
        self.shipped = False  # whether the agent runs from code this client sent (bootstrap)
        self._incarnation = None  # the channel's incarnation() when the agent started
        self._comm_id = None
        self._closed = False
        self._stuck = None  # the execution of a request that was stopped but did not end
        self._stops = {}  # request id -> the agent's answer to our stop request
        self._start_agent(Deadline(startup_timeout))

    def __repr__(self):
        python = self.agent["python"] if self.agent else "?"
        return f"<KernelTarget {self.name or ''} python={python} alive={self.alive}>"

    @property
    def alive(self):
        return self.channel.alive

    @property
    def owned(self):
        return self.channel.owned

    @property
    def part_size(self):
        """The largest message a transfer is cut into (:mod:`.parts`; ``None``: none): the
        channel's limit, and :data:`.parts.PROGRESS_PART` while progress is shown."""
        sizes = [size for size in (self.channel.part_size,
                                   PROGRESS_PART if self.progress is not None else None) if size]
        return min(sizes, default=None)

    def _report(self, direction, done, total):
        if self.progress is not None:
            self.progress(direction, done, total)

    # -- the Python API ------------------------------------------------------------------------

    def push(self, mapping=None, /, **names):
        """Place names into the target's namespace: ``push(x=1)`` or ``push({"x": 1})``."""
        names = {**(mapping or {}), **names}
        self.request("push", {"names": names})

    def run(self, code, *, timeout=None):
        """Run ``code`` on the target like a cell and return its last expression's value.

        Output is relayed as it is produced; an exception raises :class:`RemoteError` showing the
        target's traceback.
        """
        return self.request("run", {"code": code}, timeout=timeout)

    def cell(self, code, *, push=None, pull=(), timeout=None):
        """What ``%%cloudpickle_ship`` does, in one request bounded by one ``timeout``: place the
        names of ``push`` (a dict), run ``code`` as :meth:`run` does, and return ``(value,
        {name: value})`` with the value of each name of ``pull`` afterwards."""
        value, pulled = self.request("cell", {"names": dict(push or {}), "code": code,
                                              "pull": list(pull)}, timeout=timeout)
        return value, dict(zip(pull, pulled))

    def interrupt(self):
        """Interrupt whatever the kernel runs now, ours or not (the notebook's interrupt button)."""
        self.channel.interrupt()

    def close(self):
        """Shut down a kernel this target started; otherwise close the comm and the channel."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        try:
            if self._comm_id is not None and not self.owned and self.alive:
                self.channel.send("shell", "comm_close", {"comm_id": self._comm_id, "data": {}})
        finally:
            self.channel.close()

    # -- the protocol --------------------------------------------------------------------------

    def request(self, op, args, timeout=None):
        """Send one request (with the module sources the target lacks) and return its value."""
        if self._closed:
            raise ShipError(f"{self!r} is closed")
        if not self.alive:
            raise KernelDied(f"the kernel of {self.name or 'the target'} is dead")
        deadline = Deadline(self.timeout if timeout is None else timeout)
        try:
            try:
                modules, reply = self._exchange(op, args, deadline)
            except _AgentGone:  # restarted unnoticed: nothing ran, so start the agent and resend
                self._comm_id = None
                modules, reply = self._exchange(op, args, deadline)
        finally:
            if hasattr(self.progress, "close"):
                self.progress.close()
        if reply.get("loaded"):
            self.sources.sent(modules)
        if reply["ok"]:
            return reply["value"]
        error = reply["error"]
        if reply.get("refused"):
            raise PayloadRefused(f"the target refused the payload: {error['message']}")
        raise RemoteError(error["type"], _with_hint(error), error["traceback"])

    def _exchange(self, op, args, deadline):
        """Start the agent if the kernel lacks it, send the request; return (modules, reply)."""
        restarted = self._drain()
        if self._comm_id is not None and (restarted
                                          or self.channel.incarnation() is not self._incarnation):
            self._comm_id = self._stuck = None
        if self._comm_id is None:  # the kernel restarted: start the agent in the new one
            self._restart_agent(deadline)
        if self._stuck is not None:
            self._wait_for_stuck(deadline)
        modules = self.sources.changed(core.list_registry_pickle_by_value())
        buffers = []
        try:
            data = core.dumps({"op": op, "args": args, "modules": modules}, protocol=5,
                              buffer_callback=buffers.append)
        except Exception as exc:
            raise _in_user_terms(exc) from None
        request_id = uuid.uuid4().hex
        cover = envelope.PICKLE if self.channel.private else envelope.ALL
        header, body = envelope.frame("request", request_id, data, buffers, cover=cover)
        key = self.key
        return modules, self._send(request_id, header, body,
                                   lambda: envelope.sign(key, header, body, cover=cover),
                                   deadline, cover=cover)

    def send_frames(self, request_id, frames, timeout=None, split=None):
        """The raw exchange: send envelope ``frames`` (``[header, signature, body...]``, as they
        are, valid or not) as request ``request_id``, serve it, and return the loaded reply (a dict
        with ``ok`` and ``value`` or ``error``). ``split``: send the body ahead in a comm message
        (``None``: when it is large)."""
        frames = list(frames)
        return self._send(request_id, frames[0], frames[2:], lambda: frames[1],
                          Deadline(self.timeout if timeout is None else timeout), split)

    def _send(self, request_id, header, body, signature, deadline, split=None, cover=envelope.ALL):
        """Send request ``request_id`` (its ``header``, its ``body`` frames, and ``signature()``,
        called once the body is on its way when split, which has ``cover``) in the way
        :mod:`.agent` describes, and return its loaded reply."""
        if split is None:
            split = sum(memoryview(f).nbytes for f in body) >= SPLIT_MIN
        parts = []
        if split:
            self._report("push", 0, sum(memoryview(f).nbytes for f in body))  # its start
            for data, buffers in cut(body, self.part_size, cover):
                parts.append(self.channel.send("shell", PART, {
                    "id": request_id, "comm": self._comm_id, **data}, buffers=buffers))
        try:
            buffers = [header, signature()] + ([] if split else list(body))
        except BaseException:  # Ctrl-C while signing: the body sent ahead must not stay there
            if split:
                self.channel.send("shell", DROP, {"id": request_id})
            raise
        reply_body = []  # the Assembly of a reply that comes in parts

        def on_reply(msg):
            content = msg["content"]
            if msg["msg_type"] == ACK:
                self._report("push", content.get("done"), content.get("total"))
            elif "pieces" in content:
                if "lengths" in content:
                    reply_body.append(Assembly(content["lengths"], content.get("cover")))
                reply_body[0].add(content, msg["buffers"])
                self._report("pull", reply_body[0].done, reply_body[0].total)

        exchange = _Exchange(self.channel.send("shell", REQUEST, {
            "id": request_id, "comm": self._comm_id, "part": self.part_size}, buffers=buffers),
            parts, on_reply=on_reply)
        self._await(exchange, deadline, request_id)
        if exchange.executed is None or "lost" in exchange.executed["content"]:
            self._comm_id = None
            raise _AgentGone("the kernel lost the agent (it restarted): nothing ran")
        frames = list(exchange.executed["buffers"])
        known = None
        if reply_body:
            frames, known = frames + reply_body[0].frames(), reply_body[0].digests()
        try:
            sealed = envelope.unseal(self.key, frames, kind="reply", request_id=request_id,
                                     known=known)
        except envelope.EnvelopeError as exc:
            raise PayloadRefused(f"refused the target's reply: {exc}") from None
        return _load_reply(sealed)

    def _restart_agent(self, deadline, attempts=3):
        """Start the agent in a kernel that restarted, once it answers. A restart notice that
        arrives while the agent starts (a server sends its own, and may send it late), or a start
        that gets no answer (a message sent while a server was still reconnecting to the new
        kernel), makes it start again: only our agent's start was under way."""
        for attempt in range(attempts):
            try:
                self.channel.wait_for_ready(self.startup_timeout)  # drains stale output
            except RuntimeError as exc:
                raise KernelDied(f"the kernel does not answer: {exc}") from None
            last = attempt == attempts - 1
            try:
                return self._start_agent(deadline if last else deadline.within(_START_ATTEMPT))
            except (KernelDied, ShipTimeout):
                if last or deadline.left() <= 0:
                    raise

    def _start_agent(self, deadline):
        """Check the kernel's Python and cloudpickle_ipy (shipping ours when it lacks it or has
        another version), install the agent and open the comm; wait for the agent's hello."""
        report = self._probe(deadline)
        if report["python"] != envelope.PYTHON:
            raise ShipError(
                f"the target kernel runs Python {report['python']} and this is Python "
                f"{envelope.PYTHON}: functions and classes pickled by value do not load across "
                f"Python minor versions; start the target kernel on Python {envelope.PYTHON}")
        shipped = bootstrap.needs_shipping(report)
        comm_id = uuid.uuid4().hex
        private, public = keys.offer()
        hello = []

        def on_comm(msg):
            if "hello" in msg["content"]["data"]:
                hello.append(msg["content"]["data"]["hello"])

        self._comm_id = comm_id
        code = f"__import__({AGENT_MODULE!r}, fromlist=['install']).install(get_ipython())"
        if shipped:
            code = f"{bootstrap.install_code()}\n{code}"
        try:
            executed = self._execute(code, on_comm, deadline, then=(
                "comm_open", {"comm_id": comm_id, "target_name": TARGET_NAME,
                              "data": {"key": public,
                                       "text": not self.channel.binary}}))
        except BaseException:
            self._comm_id = None
            raise
        if executed["content"]["status"] != "ok" or not hello:
            self._comm_id = None
            raise _execute_error(executed, "the agent did not answer",
                                 "could not start the agent on the target")
        try:
            self.key = keys.finish(private, public, hello[0].get("key"), comm_id)
        except keys.BadPublicValue as exc:
            self._comm_id = None
            raise PayloadRefused(f"could not agree a key with the agent: {exc}") from None
        self.agent, self.shipped = hello[0], shipped
        self._incarnation = self.channel.incarnation()
        self.sources.forget()

    def _probe(self, deadline):
        """What the kernel runs (:data:`.bootstrap.PROBE`): its Python, and the version and
        fingerprint of the cloudpickle_ipy it can import. Nothing is sent to it before this."""
        executed = self._execute("", None, deadline,
                                 user_expressions={"probe": bootstrap.probe_expression()})
        content = executed["content"]
        result = content.get("user_expressions", {}).get("probe", {})
        if content["status"] != "ok" or result.get("status") != "ok":
            raise ShipError(f"could not inspect the target kernel: "
                            f"{result.get('ename', content.get('ename'))}: "
                            f"{result.get('evalue', content.get('evalue'))}")
        return ast.literal_eval(result["data"]["text/plain"])

    def _execute(self, code, on_comm, deadline, then=None, user_expressions=None):
        """Execute ``code`` silently (before the message ``then``), pass this comm's messages to
        ``on_comm``, and return its execute reply once both are done (idle). Only the probe and
        the agent's start execute code: at the deadline (or on ``KeyboardInterrupt``) nothing is
        stopped, as what waits in the queue is harmless and interrupting the kernel could hit
        someone else's cell."""
        exchange = _Exchange(self.channel.send("shell", "execute_request", {
            "code": code, "silent": True, "store_history": False,
            "user_expressions": user_expressions or {}, "allow_stdin": False,
            "stop_on_error": False}), on_comm=on_comm)
        if then is not None:
            exchange.pending.add(self.channel.send("shell", *then))
        try:
            return self._wait(exchange, deadline).executed
        except ShipTimeout as exc:
            raise ShipTimeout(f"{exc} (it may be busy with other work)") from None
        except KeyboardInterrupt:
            raise Interrupted("interrupted; nothing of ours was running on the target") from None

    def _await(self, exchange, deadline, request_id):
        """Wait for request ``request_id`` to be answered (:meth:`_wait`); at ``deadline`` or on
        ``KeyboardInterrupt``, have the agent stop it (never the kernel: see the module
        docstring) and raise saying what became of it."""
        try:
            self._wait(exchange, deadline)
        except ShipTimeout as exc:
            if not self.alive:
                raise
            outcome = self._stop(exchange, request_id)
            if outcome is None:  # it finished as the time ran out: its answer is here or coming
                self._wait(exchange, Deadline(self.settle))
                return
            raise ShipTimeout(f"{exc}; {outcome}") from None
        except KeyboardInterrupt:
            outcome = self._stop(exchange, request_id)
            raise Interrupted(f"interrupted; {outcome or 'the request had finished on the target'}"
                              ) from None

    def _stop(self, exchange, request_id):
        """Ask the agent to stop ``request_id`` (never the kernel: see the module docstring) and
        say what became of it; None if it had finished."""
        exchange.on_reply = None  # the parts of its reply, if they come, are dropped
        self.channel.send("control", STOP_REQUEST, {"id": request_id})
        state = self._wait_for_stop(exchange, request_id)
        if state == "finished":
            return None
        if state == "cancelled":
            return ("the target was busy with other work and nothing of ours ran (nor will: the "
                    "request was withdrawn)")
        if state == "interrupted":
            try:
                self._wait(exchange, Deadline(self.settle))
                return "the run on the target was interrupted too"
            except ShipTimeout:
                pass
        self._stuck = exchange.exec_id
        if state == "interrupted":
            return (f"the run on the target was interrupted but did not stop within "
                    f"{self.settle:g} s; the next request waits for it (or restart the kernel)")
        return ("the target did not answer the request to stop it; it may still run there (the "
                "next request waits for it, or restart the kernel)")

    def _wait_for_stop(self, exchange, request_id):
        deadline = Deadline(_STOP_ANSWER)
        while request_id not in self._stops and deadline.left() > 0:
            for channel, msg in self.channel.receive(deadline.left()):
                self._dispatch(channel, msg, exchange)
        return self._stops.pop(request_id, None)

    def _wait_for_stuck(self, deadline):
        """An earlier request was stopped but is still running: say so now, or (with a timeout)
        wait for it to end within that timeout."""
        if deadline.at is None:
            raise ShipError("the target is still running an earlier request that was stopped and "
                            "did not end; wait for it (give a timeout to wait here) or restart "
                            "the kernel")
        while self._stuck is not None:
            if deadline.left() <= 0:
                raise deadline.timeout(": it is still running an earlier request that was "
                                       "stopped and did not end; nothing of this one was sent")
            for channel, msg in self.channel.receive(deadline.left()):
                self._dispatch(channel, msg, None)
            if not self.alive:
                raise KernelDied("the kernel died while running an earlier request")

    def _wait(self, exchange, deadline):
        """Read the channel until ``exchange`` has its reply and is idle everywhere, or went idle
        and will get no reply: a kernel that lost the agent has no handler for our requests.

        A reply may trail the idle status by seconds (a large one, a loaded machine), so time
        alone cannot tell. A ``comm_info_request`` sent then is answered on the same socket,
        after whatever the kernel sent for the messages it handled before it: its answer coming
        first means that no reply is coming."""
        while exchange.pending or exchange.executed is None:
            left = deadline.left()
            if left <= 0:
                raise deadline.timeout("")
            if not exchange.pending:
                if exchange.probed:
                    return exchange
                if exchange.probe is None and time.monotonic() > exchange.idle_at + _PROBE_AFTER_IDLE:
                    exchange.probe = self.channel.send("shell", "comm_info_request",
                                                       {"target_name": TARGET_NAME})
            received = self.channel.receive(left)
            if not received and not self.alive:
                self._comm_id = None
                raise KernelDied("the kernel died before answering the request")
            for channel, msg in received:
                if self._dispatch(channel, msg, exchange):
                    self._comm_id = None
                    raise KernelDied("the kernel restarted while running the request; what it "
                                     "held is gone")
        return exchange

    def _drain(self):
        """Read what arrived between requests; whether the kernel restarted meanwhile."""
        restarted = False
        while True:
            received = self.channel.receive(0)
            if not received:
                return restarted
            for channel, msg in received:
                restarted |= self._dispatch(channel, msg, None)

    def _dispatch(self, channel, msg, exchange):
        """Take one message: for ``exchange`` (or none), a stop answer, or the end of a stuck
        request. True if it says the kernel (re)started."""
        kind, content = msg["msg_type"], msg["content"]
        parent = msg["parent_header"].get("msg_id")
        if channel == "control":
            if kind == STOP_REPLY:
                self._stops[content.get("id")] = content.get("state")
            return False
        if channel == "shell":
            if exchange is not None and parent == exchange.probe:
                exchange.probed = exchange.executed is None
            elif exchange is not None and (parent == exchange.exec_id or parent in exchange.parts):
                if kind in (REPLY, ACK) and exchange.on_reply is not None:
                    exchange.on_reply(msg)
                if parent == exchange.exec_id and "pieces" not in content:
                    exchange.executed = msg  # our final reply, or an execute_reply
            return False
        if kind == "status":
            state = content["execution_state"]
            if state in ("starting", "restarting"):  # a server says "restarting" for its kernel
                return True
            if state == "idle":
                if parent == self._stuck:
                    self._stuck = None
                if exchange is not None:
                    exchange.pending.discard(parent)
                    if parent == exchange.exec_id:
                        exchange.idle_at = time.monotonic()
        elif kind == "comm_msg" and content.get("comm_id") == self._comm_id:
            if exchange is not None and exchange.on_comm is not None:
                exchange.on_comm(msg)
        elif exchange is not None and parent == exchange.exec_id:
            self.output(kind, content)
        return False


class Deadline:
    """When a call must be over: ``seconds`` from now (``None``: never); one for everything a call
    does, so that queueing, pushing, running and pulling share it."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds

    def left(self, most=_SLICE):
        """Seconds to wait next: at most ``most``, never past the deadline (0 or less: passed)."""
        return most if self.at is None else min(most, self.at - time.monotonic())

    def within(self, seconds):
        """This deadline, or ``seconds`` from now if that comes first."""
        sooner = Deadline(seconds)
        return sooner if self.at is None or sooner.at < self.at else self

    def timeout(self, what):
        return ShipTimeout(f"no answer from the kernel within {self.seconds:g} s{what}")


class _AgentGone(KernelDied):
    """The kernel has no agent any more (it restarted between requests); the request never ran."""


class _Exchange:
    """One message being answered (a request, or an execute_request): what is still not idle (it,
    and the ``parts`` of its body sent ahead), where the comm's messages and our replies go, its
    final reply once here, and the message asking whether that reply is coming
    (:meth:`KernelTarget._wait`)."""

    def __init__(self, exec_id, parts=(), on_comm=None, on_reply=None):
        self.exec_id, self.on_comm, self.on_reply = exec_id, on_comm, on_reply
        self.parts = set(parts)
        self.pending = {*parts, exec_id}
        self.executed = None
        self.idle_at = float("inf")  # when it went idle
        self.probe = None  # the id of the comm_info_request sent after it went idle without reply
        self.probed = False  # that request was answered before the reply: none is coming


class _ReplyUnpickler(pickle.Unpickler):
    """Loads a reply; a class or function that exists only on the target is named in one line."""

    def find_class(self, module, name):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            raise ShipError(
                f"the result holds {module}.{name}, which exists on the target but not here: "
                f"define it here and push it, or pickle its module by value "
                f"(%pickle_by_value {module.partition('.')[0]}), before shipping") from None


def _load_reply(sealed):
    return _ReplyUnpickler(io.BytesIO(sealed.pickle), buffers=sealed.buffers).load()


# Where the pickler's error paths (``found at obj['args']...``) enter what the user gave.
_USER_PATHS = [(re.compile(r"obj\['args'\]\['names'\]\['(\w+)'\]"), r"\1"),
               (re.compile(r"obj\['args'\]\['fn'\]"), "the function"),
               (re.compile(r"obj\['args'\]\['args'\]\[(\d+)\]"), r"args[\1]"),
               (re.compile(r"obj\['args'\]\['kwargs'\]\['(\w+)'\]"), r"kwargs['\1']")]


def _in_user_terms(error):
    """``error`` from pickling a request, its path into our request dict rewritten into the names
    the user gave (``found at lk.handlers[0]``, not ``found at obj['args']['names']['lk']...``)."""
    message = str(error)
    for pattern, replacement in _USER_PATHS:
        message = pattern.sub(replacement, message)
    if message == str(error):
        return error
    try:
        return type(error)(message)
    except Exception:
        return error


def _with_hint(error):
    """The error's message, with how to fix a module that is importable here but not there."""
    module = error.get("module")
    top = (module or "").partition(".")[0]
    if error["type"] != "ModuleNotFoundError" or top not in sys.modules or top == "cloudpickle_ipy":
        return error["message"]
    return (f"{error['message']} ({top} is importable here but not on the target: pickle it by "
            f"value so that its code travels: cloudpickle_ipy.register_pickle_by_value({top}) in "
            f"a script, %pickle_by_value {top} in IPython)")


def _execute_error(executed, missing, context=None):
    """The error to raise for an execution that did not produce what it should have."""
    content = executed["content"]
    if content["status"] == "error":
        return RemoteError(content["ename"], f"{context}: {content['evalue']}" if context
                           else content["evalue"], _strip_ansi("\n".join(content["traceback"])))
    if content["status"] == "aborted":
        return ShipError("the kernel aborted the request (an earlier execution on it failed); "
                         "nothing of ours ran")
    return ShipError(missing)


def _strip_ansi(text):
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
