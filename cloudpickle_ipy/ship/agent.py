"""What runs inside the target kernel: receive a payload, verify it, load it, act, reply.

Needs only ipykernel, :mod:`cloudpickle_ipy.core` and the standard-library parts of this package.

How a request travels (and why):

1. The client opens a comm with target ``cloudpickle_ipy`` once; the agent answers with a
   ``hello`` message (its Python and package version, its pid). Replies travel on that comm. The
   two agree the key that signs the comm's envelopes as it opens (:mod:`.keys`): the ``comm_open``
   data carries the client's public value (``key``), the hello the agent's. ``"text": true`` in
   that data says the client's way to the kernel mangles binary frames: buffers then travel as
   base64 strings, the client's under ``b64`` in a message's content, the agent's in its data.
2. Each request is an ``execute_request`` (``silent``, no history) whose code is
   ``serve(request_id, comm_id)``, so the work happens in a real execution: the kernel reports
   busy/idle for it, stdout, stderr and display output reach the client as the IOPub messages of
   that request, and an interrupt (SIGINT or ``interrupt_request``) stops it like any cell. The
   envelope frames (:mod:`.envelope`) travel in one of two ways, chosen by the client:

   - **whole** (small payloads; one shell message per request): the ``execute_request``'s own
     buffers are the whole envelope ``[header, signature, pickle, buffer_1, ...]``; ``serve`` reads
     them from the message being executed (``kernel.get_parent()["buffers"]``, ipykernel 6+);
   - **split** (large payloads): first the envelope's body ``[pickle, buffer_1, ...]`` in parts
     (:mod:`.parts`: ``comm_msg`` s on the comm whose data is ``{"id": request_id, "pieces"...}``,
     each at most the part size the client gave when it opened the comm, each acknowledged with
     ``{"ack": request_id, "done", "total"}``: the agent only assembles them under that id, no
     work happens in a comm handler), then the ``execute_request`` whose buffers are exactly
     ``[header, signature]``. The client sends the body *before* computing the signature, so that
     its hashing overlaps with the transfer.

   The kernel handles one client's shell messages in order, so a split body is there when
   ``serve`` runs. Either way ``serve`` reassembles ``[header, signature, body...]`` and unseals it:
   the signature (HMAC keyed with the comm's key) covers the header and every byte of every
   body frame, wherever each travelled, and the id in the executed code (signed by Jupyter) must
   equal the id in the envelope header (signed by us), so a payload cannot be moved under
   another request. Frames in an unexpected arrangement are refused like a malformed envelope.
3. ``serve`` verifies the envelope (refusing unsigned, tampered, other key, other request, other
   format or other Python payloads before anything is unpickled), installs the module sources it
   carries, loads it with the core, acts, and sends the reply envelope over the comm *before* the
   execution ends, as ``comm_msg`` s ``{"id": request_id}``: a large reply's body goes first in
   parts, signed while they travel, then ``[header, signature]``; a small one whole. The client
   then waits for that execution's idle status.

``serve`` never raises for a request's own failure: that travels back in the reply (with the
formatted traceback), so the kernel does not abort the client's queued requests. It raises only
when it cannot answer (no such comm, or a split payload whose body never arrived).

4. Stopping a request (Ctrl-C or a timeout on the client) must touch nothing that is not ours: the
   kernel may be shared, busy with another client's cell while ours waits in its queue. So the
   client does not interrupt the kernel; it sends a ``cloudpickle_ipy_stop_request`` ``{"id"}`` on
   the *control* channel, which ipykernel handles on its own thread at once, even while a cell
   runs. The agent answers ``cloudpickle_ipy_stop_reply`` with the request's ``state``:
   ``"cancelled"`` (it has not started: it never will, ``serve`` drops it when its turn comes),
   ``"interrupted"`` (it is running: the agent raises ``KeyboardInterrupt`` in it, and only in it,
   deciding and signalling under the lock that ``serve`` takes to start and end a request) or
   ``"finished"``.
5. A split body never stays in the kernel's memory past its request: it goes when its request is
   served or cancelled, when a later request of the same comm is served (its own execute request
   was aborted, as ipykernel does to queued executions after an error), when the client says
   ``{"drop": id}`` (it saw the abort, or never sent the execute request), and when the comm closes.
"""
import ast
import base64
import collections
import os
import signal
import threading
import traceback

from .. import __version__, core
from . import envelope, keys
from .modules import ShippedModules
from .parts import PART, SPLIT_MIN, Assembly, cut

TARGET_NAME = "cloudpickle_ipy"
STOP_REQUEST, STOP_REPLY = "cloudpickle_ipy_stop_request", "cloudpickle_ipy_stop_reply"
NOT_INSTALLED = "the cloudpickle_ipy agent is not installed in this kernel"

_agent = None


def install(shell):
    """Register the comm target on ``shell``'s kernel (once per kernel) and return the agent."""
    global _agent
    if _agent is None or _agent.shell is not shell:
        _agent = Agent(shell)
    shell.kernel.comm_manager.register_target(TARGET_NAME, _agent.open)
    shell.kernel.control_handlers[STOP_REQUEST] = _agent.stop
    return _agent


def serve(request_id, comm_id):
    """Run request ``request_id`` and answer on comm ``comm_id`` (the code the client executes)."""
    if _agent is None:
        raise RuntimeError(NOT_INSTALLED)  # the kernel restarted: the client starts it again
    _agent.serve(request_id, comm_id)


class Agent:
    """The kernel side of every comm opened with ``cloudpickle_ipy``."""

    def __init__(self, shell):
        self.shell = shell
        self.modules = ShippedModules()
        self.comms = {}  # comm id -> (comm, the largest part its client takes)
        self.keys = {}  # comm id -> the key agreed with its client (signs its envelopes)
        self.text = set()  # ids of the comms whose buffers travel as base64 text
        self.pending = {}  # request id -> (comm, Assembly) of split requests
        self.runs = 0
        # Guarded by _lock (stop() runs on the control thread): the request being served, the
        # ones stopped before they started, the last ones served.
        self._lock = threading.Lock()
        self.running = None
        self.cancelled = set()
        self.finished = collections.deque(maxlen=64)

    def open(self, comm, msg):
        data = msg["content"]["data"]
        public, self.keys[comm.comm_id] = keys.answer(data.get("key"), comm.comm_id)
        if data.get("text"):
            self.text.add(comm.comm_id)
        part = data.get("part_size")
        self.comms[comm.comm_id] = comm, part if isinstance(part, int) and part > 0 else PART
        comm.on_msg(lambda m: self._received(comm, m))
        comm.on_close(lambda m: self._closed(comm))
        comm.send({"hello": {"python": envelope.PYTHON, "version": __version__,
                             "pid": os.getpid(), "format": envelope.FORMAT, "key": public}})

    def _received(self, comm, msg):
        data = msg["content"]["data"]
        request_id = data.get("id")
        if isinstance(request_id, str) and "pieces" in data:
            if "lengths" in data:
                self.pending[request_id] = (comm, Assembly(data["lengths"]))
            assembly = self.pending[request_id][1]
            assembly.add(data, _buffers(msg))
            comm.send({"ack": request_id, "done": assembly.done, "total": assembly.total})
        elif isinstance(data.get("drop"), str):
            self.pending.pop(data["drop"], None)

    def _closed(self, comm):
        self.comms.pop(comm.comm_id, None)
        self.keys.pop(comm.comm_id, None)
        self.text.discard(comm.comm_id)
        self._drop_bodies(comm)

    def _drop_bodies(self, comm, keep=None):
        for request_id in [r for r, (c, _) in self.pending.items() if c is comm and r != keep]:
            del self.pending[request_id]

    def stop(self, stream, idents, msg):
        """The control channel's ``cloudpickle_ipy_stop_request``: see the module docstring."""
        request_id = msg["content"].get("id")
        with self._lock:
            if request_id == self.running:
                state = "interrupted"
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            elif request_id in self.finished:
                state = "finished"
            else:
                state = "cancelled"
                self.cancelled.add(request_id)
        self.shell.kernel.session.send(stream, STOP_REPLY, {"id": request_id, "state": state},
                                       parent=msg, ident=idents)

    def _frames(self, request_id):
        """The envelope frames of ``request_id``: the executed message's buffers, completed by
        the body sent ahead in a comm message when they are only ``[header, signature]``."""
        get_parent = getattr(self.shell.kernel, "get_parent", None)
        if get_parent is None:
            raise RuntimeError("this kernel cannot serve requests: ipykernel 6 or later is needed")
        frames = _buffers(get_parent())
        split = self.pending.pop(request_id, None)
        if len(frames) == 2:
            if split is None or not split[1].complete:
                raise RuntimeError(f"no payload arrived for request {request_id!r}")
            frames += split[1].frames()
        return frames

    def serve(self, request_id, comm_id):
        comm, part = self.comms.get(comm_id, (None, None))
        if comm is None:
            raise RuntimeError(f"no comm {comm_id!r} to answer on")
        self._drop_bodies(comm, keep=request_id)  # of requests whose execution was aborted
        with self._lock:
            if request_id in self.cancelled:
                self.cancelled.discard(request_id)
                self.pending.pop(request_id, None)
                return
            self.running = request_id
        try:
            self._answer(comm, part, request_id)
        finally:
            self._ended(request_id)

    def _ended(self, request_id):
        """Mark ``request_id`` served; a stop signalled just before lands here and is absorbed."""
        while True:
            try:
                with self._lock:
                    self.running = None
                    self.finished.append(request_id)
                return
            except KeyboardInterrupt:
                continue

    def _answer(self, comm, part, request_id):
        frames = self._frames(request_id)
        key = self.keys[comm.comm_id]
        try:
            reply = self._handle(key, request_id, frames)
        finally:
            del frames
        # No flush of stdout/stderr here (it costs a round trip to the IOPub thread, ~0.7 ms):
        # ipykernel (6 and 7) flushes them before its execute_reply and idle status, which the
        # client waits for, so what the request printed still reaches it before the result.
        buffers = []
        try:
            data = core.dumps(reply, protocol=5, buffer_callback=buffers.append)
        except BaseException as exc:  # the value cannot travel back: say so, with what it is
            buffers = []
            data = core.dumps({"ok": False, "loaded": reply.get("loaded", False), "error": _error(
                exc, "the result could not be pickled on the target")}, protocol=5)
        header, body = envelope.frame("reply", request_id, data, buffers)
        split = sum(memoryview(frame).nbytes for frame in body) >= SPLIT_MIN
        if split:  # the body first, in parts; signed while they travel
            for piece, piece_buffers in cut(body, part):
                self._send(comm, {"id": request_id, **piece}, piece_buffers)
        signature = envelope.sign(key, header, body)
        self._send(comm, {"id": request_id}, [header, signature, *([] if split else body)])

    def _send(self, comm, data, buffers):
        """Send ``data`` and ``buffers`` on ``comm``: as base64 strings in the data for a client
        whose way to the kernel mangles binary frames."""
        if comm.comm_id in self.text:
            comm.send({**data, "b64": [base64.b64encode(b).decode() for b in buffers]})
        else:
            comm.send(data, buffers=buffers)

    def _handle(self, key, request_id, frames):
        try:
            sealed = envelope.unseal(key, frames, kind="request", request_id=request_id)
        except envelope.EnvelopeError as exc:
            return {"ok": False, "refused": True, "error": {
                "type": "EnvelopeError", "message": str(exc), "traceback": ""}}
        try:
            request = core.loads(sealed.pickle, buffers=sealed.buffers)
        except BaseException as exc:
            return {"ok": False, "error": _error(exc, "the payload could not be loaded on the "
                                                      "target")}
        self.modules.install()
        self.modules.update(request["modules"])
        action = {"push": self._push, "pull": self._pull, "call": self._call,
                  "run": self._run, "cell": self._cell}[request["op"]]
        try:
            # "loaded": the modules shipped with it are installed, whatever the code does next.
            return {"ok": True, "loaded": True, "value": action(**request["args"])}
        except BaseException as exc:  # the user's code raised (or was interrupted): report it
            return {"ok": False, "loaded": True, "error": _error(exc)}

    def _push(self, names):
        self.shell.user_ns.update(names)

    def _pull(self, names):
        missing = [n for n in names if n not in self.shell.user_ns]
        if missing:
            raise NameError(f"not defined on the target: {', '.join(missing)}")
        return [self.shell.user_ns[n] for n in names]

    def _call(self, fn, args, kwargs):
        return fn(*args, **kwargs)

    def _cell(self, names, code, pull):
        """A shipped cell in one request: push ``names``, run ``code``, pull the names ``pull``."""
        self._push(names)
        value = self._run(code)
        return value, self._pull(pull)

    def _run(self, code):
        """Run ``code`` in the user namespace like a cell and return its last expression's value.

        IPython syntax (``%magic``, ``!cmd``) goes through the shell's transformers; the source is
        cached like a cell's so tracebacks show its lines. Top-level ``await`` is not supported.
        """
        self.runs += 1
        shell = self.shell
        source = shell.transform_cell(code)
        filename = shell.compile.cache(source, self.runs, raw_code=code)
        tree = ast.parse(source, filename)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        ns = shell.user_ns
        exec(compile(tree, filename, "exec"), ns, ns)
        return None if last is None else eval(compile(last, filename, "eval"), ns, ns)


def _buffers(msg):
    """A message's buffers: binary frames, or the base64 strings of a text-mode client."""
    return list(msg.get("buffers")
                or [bytearray(base64.b64decode(b)) for b in msg["content"].get("b64", ())])


def _error(exc, context=None, own=__file__):
    """``exc`` as plain data: type, message, the traceback without the leading frames of the module
    ``own`` (this one; :mod:`.dask_worker` gives its own), and the module a ``ModuleNotFoundError``
    names (the client says how to make it travel)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == own:
        tb = tb.tb_next
    message = str(exc) if context is None else f"{context}: {type(exc).__name__}: {exc}"
    return {"type": type(exc).__name__, "message": message,
            "traceback": "".join(traceback.format_exception(type(exc), exc, tb)),
            "module": getattr(exc, "name", None) if isinstance(exc, ImportError) else None}
