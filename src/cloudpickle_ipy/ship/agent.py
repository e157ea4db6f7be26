"""What runs inside the target kernel: receive a payload, verify it, load it, act, reply.

Needs only ipykernel, :mod:`cloudpickle_ipy.core` and the standard-library parts of this package.

How a request travels (and why):

1. The client opens a comm with target ``cloudpickle_ipy`` once; the agent answers with a
   ``hello`` message (its Python and package version, its pid).
2. Each request is **two** shell messages, sent back to back:

   - a ``comm_msg`` whose JSON data is ``{"id": request_id}`` and whose buffers are the envelope
     frames (:mod:`.envelope`). The agent only keeps the frames under that id: no work happens in
     a comm handler;
   - an ``execute_request`` (``silent``, no history) whose code is ``serve(request_id)``. The work
     therefore happens in a real execution: the kernel reports busy/idle for it, stdout, stderr
     and display output reach the client as the IOPub messages of that request, and an interrupt
     (SIGINT or ``interrupt_request``) stops it like any cell.

   The kernel handles one client's shell messages in order, so the payload is there when
   ``serve`` runs. The id in the comm data (signed by Jupyter) must equal the id in the envelope
   header (signed by us), so a payload cannot be moved under another request.
3. ``serve`` verifies the envelope (refusing unsigned, tampered, other format or other Python
   payloads before anything is unpickled), installs the module sources it carries, loads it with
   the core, acts, flushes stdout/stderr, and sends the reply envelope over the comm *before* the
   execution ends; the client then waits for that execution's idle status.

``serve`` never raises for a request's own failure: that travels back in the reply (with the
formatted traceback), so the kernel does not abort the client's queued requests. It raises only
when it has no comm to answer on (a payload that never arrived).
"""
import ast
import os
import sys
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


def serve(request_id):
    """Run the pending request ``request_id`` (the code the client executes)."""
    if _agent is None:
        raise RuntimeError(NOT_INSTALLED)  # the kernel restarted: the client starts it again
    _agent.serve(request_id)


class Agent:
    """The kernel side of every comm opened with ``cloudpickle_ipy``."""

    def __init__(self, shell):
        self.shell = shell
        self.modules = ShippedModules()
        self.pending = {}  # request id -> (comm, envelope frames)
        self.runs = 0

    @property
    def key(self):
        return self.shell.kernel.session.key

    def open(self, comm, msg):
        comm.on_msg(lambda m: self._received(comm, m))
        comm.on_close(lambda m: self._closed(comm))
        comm.send({"hello": {"python": envelope.PYTHON, "version": __version__,
                             "pid": os.getpid(), "format": envelope.FORMAT}})

    def _received(self, comm, msg):
        request_id = msg["content"]["data"].get("id")
        if isinstance(request_id, str):
            self.pending[request_id] = (comm, msg.get("buffers") or [])

    def _closed(self, comm):
        for request_id in [r for r, (c, _) in self.pending.items() if c is comm]:
            del self.pending[request_id]

    def serve(self, request_id):
        try:
            comm, frames = self.pending.pop(request_id)
        except KeyError:
            raise RuntimeError(f"no payload arrived for request {request_id!r}") from None
        try:
            reply = self._handle(request_id, frames)
        finally:
            del frames
        _flush()
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


def _error(exc, context=None):
    """``exc`` as plain data: type, message and the traceback without this module's frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    message = str(exc) if context is None else f"{context}: {type(exc).__name__}: {exc}"
    return {"type": type(exc).__name__, "message": message,
            "traceback": "".join(traceback.format_exception(type(exc), exc, tb))}


def _flush():
    """Push what the request printed out before the reply, so output precedes the result."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a replaced or closed stream must not lose the reply
            pass
