"""What runs inside the target kernel: receive a payload, verify it, load it, act, reply.

Needs only ipykernel, :mod:`cloudpickle_ipy.core` and the standard-library parts of this package.

How a request travels (and why):

1. The client opens a comm with target ``cloudpickle_ipy`` once; the agent answers with a
   ``hello`` message (its Python and package version, its pid). The two agree the key that signs
   the comm's envelopes as it opens (:mod:`.keys`): the ``comm_open`` data carries the client's
   public value (``key``), the hello the agent's public value. ``"text": true`` in that data says
   the client's way to the kernel mangles binary frames: buffers then travel as base64 strings
   under ``b64`` in a message's content.
2. Each request is a shell message of our own, ``cloudpickle_ipy_request`` ``{"id", "comm",
   "part"}`` (``part``: the largest message its reply may be, ``None`` for no limit),
   handled by the agent as ipykernel handles its own requests (``apply_request`` in ipyparallel
   works the same way): the kernel reports busy/idle for it, what it prints and displays reaches
   the client as IOPub messages of that request, an interrupt stops it like any cell, and it waits
   in the shell queue behind other clients' cells like one. It skips what an ``execute_request``
   costs and we do not need (transforming and compiling the executed code, history, hooks, the
   comm's IOPub detour for the reply): a round trip takes about half the time. The envelope
   frames (:mod:`.envelope`) travel in one of two ways, chosen by the client:

   - **whole** (small payloads): the request's buffers are the whole envelope ``[header,
     signature, pickle, buffer_1, ...]``;
   - **split** (large payloads): first the envelope's body ``[pickle, buffer_1, ...]`` in parts
     (:mod:`.parts`: ``cloudpickle_ipy_part`` messages ``{"id", "comm", "pieces"...}``, as large
     as the client chose, each acknowledged with a ``cloudpickle_ipy_ack`` reply ``{"id",
     "done", "total"}``: the agent only assembles them), then the request, whose buffers are
     exactly ``[header, signature]``. The client sends the body *before* computing the
     signature, so that its hashing overlaps with the transfer.

   The kernel handles one client's shell messages in order, so a split body is there when its
   request runs. Either way the agent reassembles ``[header, signature, body...]`` and unseals it:
   the signature (HMAC keyed with the comm's key) covers the header and every byte of every body
   frame, wherever each travelled, and the request id (in the message, signed by Jupyter) must
   equal the id in the envelope header (signed by us), so a payload cannot be moved under another
   request. Frames in an unexpected arrangement are refused like a malformed envelope.
3. The agent verifies the envelope (refusing unsigned, tampered, other key, other request, other
   format or other Python payloads before anything is unpickled), installs the module sources it
   carries, loads it with the core, acts, and answers with ``cloudpickle_ipy_reply`` messages
   ``{"id"}`` on the shell channel, straight back to the client: a large reply's body goes first
   in parts, signed while they travel, then ``[header, signature]``; a small one whole. What the
   request printed is flushed after it, before the idle status the client waits for. A request
   that cannot be answered at all (its comm is gone) gets a reply ``{"id", "lost"}``.

A request's own failure travels back in the reply, with the formatted traceback.

4. Stopping a request (Ctrl-C or a timeout on the client) must touch nothing that is not ours: the
   kernel may be shared, busy with another client's cell while ours waits in its queue. So the
   client does not interrupt the kernel; it sends a ``cloudpickle_ipy_stop_request`` ``{"id"}`` on
   the *control* channel, which ipykernel handles on its own thread at once, even while a cell
   runs. The agent answers ``cloudpickle_ipy_stop_reply`` with the request's ``state``:
   ``"cancelled"`` (it has not started: it never will, the agent drops it when its turn comes),
   ``"interrupted"`` (it is running: the agent raises ``KeyboardInterrupt`` in it, and only in it,
   deciding and signalling under the lock that it takes to start and end a request) or
   ``"finished"``.
5. A split body never stays in the kernel's memory past its request: it goes when its request is
   served or cancelled, when a later request of the same comm is served, when the client sends
   ``cloudpickle_ipy_drop`` ``{"id"}`` (it never sent the request: interrupted while signing), and
   when the comm closes.
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
from .parts import SPLIT_MIN, Assembly, cut

TARGET_NAME = "cloudpickle_ipy"
REQUEST, PART, DROP = "cloudpickle_ipy_request", "cloudpickle_ipy_part", "cloudpickle_ipy_drop"
REPLY, ACK = "cloudpickle_ipy_reply", "cloudpickle_ipy_ack"
STOP_REQUEST, STOP_REPLY = "cloudpickle_ipy_stop_request", "cloudpickle_ipy_stop_reply"

_agent = None


def install(shell):
    """Register the comm target and our message handlers on ``shell``'s kernel (once per
    kernel) and return the agent."""
    global _agent
    if _agent is None or _agent.shell is not shell:
        _agent = Agent(shell)
    kernel = shell.kernel
    kernel.comm_manager.register_target(TARGET_NAME, _agent.open)
    kernel.shell_handlers.update({REQUEST: _agent.request, PART: _agent.part, DROP: _agent.drop})
    kernel.control_handlers[STOP_REQUEST] = _agent.stop
    return _agent


class Agent:
    """The kernel side of every comm opened with ``cloudpickle_ipy``, and of their requests."""

    def __init__(self, shell):
        self.shell = shell
        self.session = shell.kernel.session
        self.modules = ShippedModules()
        self.keys = {}  # comm id -> the key agreed with its client (signs its envelopes)
        self.text = set()  # ids of the comms whose buffers travel as base64 text
        self.pending = {}  # request id -> (comm id, Assembly) of split requests
        self.runs = 0
        # Guarded by _lock (stop() runs on the control thread): the request being served, the
        # ones stopped before they started, the last ones served.
        self._lock = threading.Lock()
        self.running = None
        self.cancelled = set()
        self.finished = collections.deque(maxlen=64)

    def open(self, comm, msg):
        data = msg["content"]["data"]
        comm_id = comm.comm_id
        public, self.keys[comm_id] = keys.answer(data.get("key"), comm_id)
        if data.get("text"):
            self.text.add(comm_id)
        comm.on_close(lambda m: self._closed(comm_id))
        comm.send({"hello": {"python": envelope.PYTHON, "version": __version__,
                             "pid": os.getpid(), "format": envelope.FORMAT, "key": public}})

    def _closed(self, comm_id):
        self.keys.pop(comm_id, None)
        self.text.discard(comm_id)
        self._drop_bodies(comm_id)

    def _drop_bodies(self, comm_id, keep=None):
        for request_id in [r for r, (c, _) in self.pending.items() if c == comm_id and r != keep]:
            del self.pending[request_id]

    # -- the shell handlers (ipykernel calls them with the socket and route to answer on) ------

    def part(self, stream, idents, msg):
        """One part of a split request's body: assemble it, acknowledge it."""
        content = msg["content"]
        request_id = content.get("id")
        if "lengths" in content:
            self.pending[request_id] = (content.get("comm"), Assembly(content["lengths"]))
        entry = self.pending.get(request_id)
        if entry is None:  # the start of this body was dropped: nothing to add it to
            return
        assembly = entry[1]
        assembly.add(content, _buffers(msg))
        self.session.send(stream, ACK, {"id": request_id, "done": assembly.done,
                                        "total": assembly.total}, parent=msg, ident=idents)

    def drop(self, stream, idents, msg):
        self.pending.pop(msg["content"].get("id"), None)

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

    def request(self, stream, idents, msg):
        """A request: serve it unless it was cancelled, and answer on ``stream``."""
        content = msg["content"]
        request_id, comm_id = content.get("id"), content.get("comm")
        reply = _Reply(self, stream, idents, msg, request_id, comm_id)
        if comm_id not in self.keys:
            self.pending.pop(request_id, None)
            reply.send({"lost": f"no comm {comm_id!r} on this kernel (it restarted)"}, [])
            return
        self._drop_bodies(comm_id, keep=request_id)  # of requests that were never sent
        with self._lock:
            if request_id in self.cancelled:
                self.cancelled.discard(request_id)
                self.pending.pop(request_id, None)
                return
            self.running = request_id
        try:
            self._answer(reply, _buffers(msg))
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

    def _answer(self, reply, frames):
        body = self.pending.pop(reply.request_id, (None, None))[1]
        key = self.keys[reply.comm_id]
        if len(frames) == 2 and not (body is not None and body.complete):
            value = _refused("the body of this request did not arrive")
        else:
            known = None
            if len(frames) == 2:
                frames, known = frames + body.frames(), body.digests()
            del body
            try:
                value = self._handle(key, reply.request_id, frames, known)
            finally:
                del frames
        buffers = []
        try:
            data = core.dumps(value, protocol=5, buffer_callback=buffers.append)
        except BaseException as exc:  # the value cannot travel back: say so, with what it is
            buffers = []
            data = core.dumps({"ok": False, "loaded": value.get("loaded", False), "error": _error(
                exc, "the result could not be pickled on the target")}, protocol=5)
        header, body = envelope.frame("reply", reply.request_id, data, buffers)
        split = sum(memoryview(frame).nbytes for frame in body) >= SPLIT_MIN
        if split:  # the body first, in parts; signed while they travel
            part = reply.msg["content"].get("part")
            for piece, piece_buffers in cut(body, part if isinstance(part, int) and part > 0
                                            else None):
                reply.send(piece, piece_buffers)
        signature = envelope.sign(key, header, body)
        reply.send({}, [header, signature, *([] if split else body)])

    def _handle(self, key, request_id, frames, known=None):
        try:
            sealed = envelope.unseal(key, frames, kind="request", request_id=request_id,
                                     known=known)
        except envelope.EnvelopeError as exc:
            return _refused(str(exc))
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
        cached like a cell's so tracebacks show its lines. The shell's ``pre_execute`` and
        ``post_execute`` events fire around it, as around a cell (matplotlib's inline backend
        shows the figures drawn when ``post_execute`` fires). Top-level ``await`` is not supported.
        """
        shell = self.shell
        shell.events.trigger("pre_execute")
        try:
            return self._execute(code)
        finally:
            shell.events.trigger("post_execute")

    def _execute(self, code):
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


class _Reply:
    """Where a request's answers go: the socket and route its message came by, in its comm's
    encoding."""

    def __init__(self, agent, stream, idents, msg, request_id, comm_id):
        self.agent, self.stream, self.idents, self.msg = agent, stream, idents, msg
        self.request_id, self.comm_id = request_id, comm_id

    def send(self, content, buffers):
        """One ``cloudpickle_ipy_reply`` ``{"id", **content}`` with ``buffers`` (as base64 text
        for a comm whose client cannot take binary frames)."""
        content = {"id": self.request_id, **content}
        if self.comm_id in self.agent.text:
            content["b64"] = [base64.b64encode(b).decode() for b in buffers]
            buffers = []
        self.agent.session.send(self.stream, REPLY, content, parent=self.msg, ident=self.idents,
                                buffers=buffers)


def _refused(message):
    return {"ok": False, "refused": True,
            "error": {"type": "EnvelopeError", "message": message, "traceback": ""}}


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
