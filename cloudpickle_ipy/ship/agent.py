"""What runs inside the target kernel: receive a payload, verify it, load it, act, reply.

Needs only ipykernel, :mod:`cloudpickle_ipy.core` and the standard-library parts of this package.

How a request travels (and why):

1. The client opens a comm with target ``cloudpickle_ipy`` once; the agent answers with a
   ``hello`` message (its Python and package version, its pid). Replies travel on that comm.
2. Each request is an ``execute_request`` (``silent``, no history) whose code is
   ``serve(request_id, comm_id)``, so the work happens in a real execution: the kernel reports
   busy/idle for it, stdout, stderr and display output reach the client as the IOPub messages of
   that request, and an interrupt (SIGINT or ``interrupt_request``) stops it like any cell. The
   envelope frames (:mod:`.envelope`) travel in one of two ways, chosen by the client:

   - **whole** (small payloads; one shell message per request): the ``execute_request``'s own
     buffers are the whole envelope ``[header, signature, pickle, buffer_1, ...]``; ``serve`` reads
     them from the message being executed (``kernel.get_parent()["buffers"]``, ipykernel 6+);
   - **split** (large payloads): first a ``comm_msg`` on the comm whose JSON data is
     ``{"id": request_id}`` and whose buffers are the envelope's body ``[pickle, buffer_1, ...]``
     (the agent only keeps them under that id: no work happens in a comm handler), then the
     ``execute_request`` whose buffers are exactly ``[header, signature]``. The client sends the
     body *before* computing the signature, so that its hashing overlaps with the transfer.

   The kernel handles one client's shell messages in order, so a split body is there when
   ``serve`` runs. Either way ``serve`` reassembles ``[header, signature, body...]`` and unseals it:
   the signature (HMAC keyed with the connection key) covers the header and every byte of every
   body frame, wherever each travelled, and the id in the executed code (signed by Jupyter) must
   equal the id in the envelope header (signed by us), so a payload cannot be moved under
   another request. Frames in an unexpected arrangement are refused like a malformed envelope.
3. ``serve`` verifies the envelope (refusing unsigned, tampered, other key, other request, other
   format or other Python payloads before anything is unpickled), installs the module sources it
   carries, loads it with the core, acts, and sends the reply envelope (whole, as a
   ``comm_msg`` ``{"id": request_id}``) over the comm *before* the execution ends; the client
   then waits for that execution's idle status.

``serve`` never raises for a request's own failure: that travels back in the reply (with the
formatted traceback), so the kernel does not abort the client's queued requests. It raises only
when it cannot answer (no such comm, or a split payload whose body never arrived).
"""
import ast
import os
import traceback

from .. import __version__, core
from . import envelope
from .modules import ShippedModules

TARGET_NAME = "cloudpickle_ipy"
NOT_INSTALLED = "the cloudpickle_ipy agent is not installed in this kernel"

_agent = None


def install(shell):
    """Register the comm target on ``shell``'s kernel (once per kernel) and return the agent."""
    global _agent
    if _agent is None or _agent.shell is not shell:
        _agent = Agent(shell)
    shell.kernel.comm_manager.register_target(TARGET_NAME, _agent.open)
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
        self.comms = {}  # comm id -> comm
        self.pending = {}  # request id -> (comm, body frames) of split requests
        self.runs = 0

    @property
    def key(self):
        return self.shell.kernel.session.key

    def open(self, comm, msg):
        self.comms[comm.comm_id] = comm
        comm.on_msg(lambda m: self._received(comm, m))
        comm.on_close(lambda m: self._closed(comm))
        comm.send({"hello": {"python": envelope.PYTHON, "version": __version__,
                             "pid": os.getpid(), "format": envelope.FORMAT}})

    def _received(self, comm, msg):
        request_id = msg["content"]["data"].get("id")
        if isinstance(request_id, str):
            self.pending[request_id] = (comm, msg.get("buffers") or [])

    def _closed(self, comm):
        self.comms.pop(comm.comm_id, None)
        for request_id in [r for r, (c, _) in self.pending.items() if c is comm]:
            del self.pending[request_id]

    def _frames(self, request_id):
        """The envelope frames of ``request_id``: the executed message's buffers, completed by
        the body sent ahead in a comm message when they are only ``[header, signature]``."""
        get_parent = getattr(self.shell.kernel, "get_parent", None)
        if get_parent is None:
            raise RuntimeError("this kernel cannot serve requests: ipykernel 6 or later is needed")
        frames = list(get_parent().get("buffers") or [])
        split = self.pending.pop(request_id, None)
        if len(frames) == 2:
            if split is None:
                raise RuntimeError(f"no payload arrived for request {request_id!r}")
            frames += split[1]
        return frames

    def serve(self, request_id, comm_id):
        comm = self.comms.get(comm_id)
        if comm is None:
            raise RuntimeError(f"no comm {comm_id!r} to answer on")
        frames = self._frames(request_id)
        try:
            reply = self._handle(request_id, frames)
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
        comm.send({"id": request_id},
                  buffers=envelope.seal(self.key, "reply", request_id, data, buffers))

    def _handle(self, request_id, frames):
        try:
            sealed = envelope.unseal(self.key, frames, kind="request", request_id=request_id)
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
                  "run": self._run}[request["op"]]
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


def _error(exc, context=None, own=__file__):
    """``exc`` as plain data: type, message and the traceback without the leading frames of the
    module ``own`` (this one; :mod:`.dask_worker` gives its own)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == own:
        tb = tb.tb_next
    message = str(exc) if context is None else f"{context}: {type(exc).__name__}: {exc}"
    return {"type": type(exc).__name__, "message": message,
            "traceback": "".join(traceback.format_exception(type(exc), exc, tb))}
