"""What runs on a Dask worker and scheduler for :mod:`.dask`: the modules plugins and the requests.

Needs only ``distributed``, :mod:`cloudpickle_ipy.core` and the standard-library parts of this
package: where cloudpickle_ipy is missing (or another version), the plugins' own unpickling installs
the client's copy first (see :mod:`.dask`), so that everything here, and every payload's rebuild
function, is the client's code.

- :class:`WorkerModules` and :class:`SchedulerModules`, both named ``cloudpickle_ipy``: the sources
  of every module the client pickles by value, served to ``import`` by one finder per process. Each
  edit registers the plugins again with the whole new state; applying it (:func:`apply_modules`) is
  one step of the process's event loop, before any later task is deserialized there.
- :func:`serve` runs one request of a :class:`~.dask.DaskTarget` (push, pull, call, run) in that
  target's namespace on this worker; :func:`apply` runs one item of ``map``. Both return their reply
  pickled with the core, and relay what the request prints as events on the target's topic
  (``Worker.log_event``), one per line or flush, as it is printed.
- :func:`interrupt` stops a running request at its next Python instruction (Ctrl-C, timeouts).
"""
import ast
import builtins
import ctypes
import linecache
import sys
import threading

from distributed.diagnostics.plugin import SchedulerPlugin, WorkerPlugin

from .. import core
from . import agent
from .modules import ShippedModules

NAME = "cloudpickle_ipy"
CLIENT_MODULE = "cloudpickle_ipy.ship.dask"
FINGERPRINT = None  # of the cloudpickle_ipy code running here, set by the plugins' unpickling

_modules = ShippedModules()  # the client's modules pickled by value, as last shipped here
_sessions = {}  # target session -> its namespace on this worker
_running = {}  # request id -> the idents of the threads running it
_lock = threading.Lock()
_last_function = (None, None)  # (request id, function) of the last map here


class WorkerModules(WorkerPlugin):
    """The modules pickled by value, importable on every worker (those that join later included:
    the scheduler gives them its registered worker plugins)."""

    name = NAME

    def __init__(self, modules, origin):
        self.modules, self.origin = modules, origin

    def setup(self, worker):
        apply_modules(self.modules, self.origin)


class SchedulerModules(SchedulerPlugin):
    """The same modules on the scheduler, which unpickles the task graphs that name them."""

    name = NAME

    def __init__(self, modules, origin):
        self.modules, self.origin = modules, origin

    async def start(self, scheduler):
        apply_modules(self.modules, self.origin)


def plugin(kind, modules, origin):
    """The plugin of ``kind`` ("worker" or "scheduler") for this state: what unpickling makes."""
    return (WorkerModules if kind == "worker" else SchedulerModules)(modules, origin)


def apply_modules(modules, origin):
    """Serve exactly ``modules`` (``{name: (filename, is_package, source)}``) from now on.

    Nothing happens in the client's own process (a scheduler or workers started in it), whose
    modules are the originals. A package with any changed module is dropped from ``sys.modules``
    as a whole (see :meth:`.ShippedModules.update`): the next import runs its new source.
    """
    if getattr(sys.modules.get(CLIENT_MODULE), "PROCESS", None) == origin:
        return
    _modules.update(modules, complete=True)
    _modules.install()


def worker_pythons(dask_scheduler):
    """``{worker address: "3.X"}`` for the scheduler's workers (what they reported on joining)."""
    return {address: ".".join(state.versions.get("host", {}).get("python", "?").split(".")[:2])
            for address, state in dask_scheduler.workers.items()}


# -- requests --------------------------------------------------------------------------------------

def serve(session, request_id, topic, payload):
    """Run one request (``{"op", "args", "push"}`` pickled by the core) in ``session``'s namespace
    here; return the reply (``ok``, ``value`` or ``error``, ``printed``) pickled by the core."""
    with _Relay(topic, request_id) as relay:
        try:
            request = core.loads(payload)
        except BaseException as exc:
            reply = {"ok": False, "error": _error(exc, "the payload could not be loaded on the "
                                                       "worker")}
        else:
            reply = _run_request(session, request)
    return _reply(reply, relay.sent)


def apply(item, fn, topic, request_id):
    """One item of ``map``: ``fn(item)``, both pickled by the core; the reply as :func:`serve`'s.
    The function is loaded once per ``map`` call (per worker), not once per item."""
    global _last_function
    with _Relay(topic, request_id) as relay:
        try:
            loaded = _last_function
            if loaded[0] != request_id:
                loaded = _last_function = (request_id, core.loads(fn))
            reply = {"ok": True, "value": loaded[1](core.loads(item))}
        except BaseException as exc:
            reply = {"ok": False, "error": _error(exc)}
    return _reply(reply, relay.sent)


def _run_request(session, request):
    namespace = _sessions.get(session)
    if namespace is None:
        namespace = _sessions[session] = {"__name__": "__main__", "__builtins__": builtins}
    try:
        for pushed in request["push"]:
            namespace.update(core.loads(pushed))
        op, args = request["op"], request["args"]
        if op == "run":
            value = _run(namespace, **args)
        elif op == "cell":  # a shipped cell: run, then pull (its pushes came with the request)
            value = _run(namespace, args["code"], args["filename"])
            value = value, _pull(namespace, args["pull"])
        elif op == "call":
            value = args["fn"](*args["args"], **args["kwargs"])
        elif op == "pull":
            value = _pull(namespace, args["names"])
        else:  # "push": the names travelled with the request
            value = None
    except BaseException as exc:  # the user's code raised, or was interrupted: report it
        return {"ok": False, "error": _error(exc)}
    return {"ok": True, "value": value}


def _pull(namespace, names):
    missing = [name for name in names if name not in namespace]
    if missing:
        raise NameError(f"not defined on the worker: {', '.join(missing)}")
    return [namespace[name] for name in names]


def _run(namespace, code, filename):
    """Run ``code`` like a cell: its source cached under ``filename`` for tracebacks; the last
    expression's value is returned."""
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    tree = ast.parse(code, filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, filename, "exec"), namespace)
    return None if last is None else eval(compile(last, filename, "eval"), namespace)


def _reply(reply, printed):
    reply["printed"] = printed
    try:
        return core.dumps(reply, protocol=5)
    except BaseException as exc:  # the value cannot travel back: say so, with what it is
        return core.dumps({"ok": False, "printed": printed, "error": _error(
            exc, "the result could not be pickled on the worker")}, protocol=5)


def _error(exc, context=None):
    return agent._error(exc, context, own=__file__)


def forget(session):
    """Drop ``session``'s namespace on this worker (the target was closed)."""
    _sessions.pop(session, None)


def interrupt(request_id):
    """Raise ``KeyboardInterrupt`` in the threads running ``request_id`` (at their next Python
    instruction: a blocking call returns first); how many there were."""
    with _lock:
        idents = list(_running.get(request_id, ()))
        for ident in idents:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident),
                                                       ctypes.py_object(KeyboardInterrupt))
    return len(idents)


# -- output relay ----------------------------------------------------------------------------------

class _Relay:
    """While a request runs in this thread: what it writes to ``sys.stdout`` and ``sys.stderr``
    goes to the client as events on ``topic``, a line (or a flush) at a time; and the thread can be
    interrupted by :func:`interrupt`. Other threads' output goes where it went before."""

    def __init__(self, topic, request_id):
        self.topic, self.request_id = topic, request_id
        self.pieces = []  # [stream, text] not sent yet
        self.sent = 0  # events sent: the client waits for that many before returning

    def __enter__(self):
        from distributed import get_worker

        self.worker = get_worker()
        for name in ("stdout", "stderr"):
            if not isinstance(getattr(sys, name), _RoutedStream):
                setattr(sys, name, _RoutedStream(name, getattr(sys, name)))
        ident = threading.get_ident()
        with _lock:
            _RoutedStream.relays[ident] = self
            _running.setdefault(self.request_id, set()).add(ident)
        return self

    def __exit__(self, *exc):
        ident = threading.get_ident()
        with _lock:
            _RoutedStream.relays.pop(ident, None)
            idents = _running.get(self.request_id, set())
            idents.discard(ident)
            if not idents:
                _running.pop(self.request_id, None)
            # An interrupt that arrived after the request's own code ended must not hit the
            # next task this thread runs.
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)
        self.flush()
        return False

    def write(self, stream, text):
        if self.pieces and self.pieces[-1][0] == stream:
            self.pieces[-1][1] += text
        else:
            self.pieces.append([stream, text])
        if "\n" in text:
            self.flush()

    def flush(self):
        if self.pieces:
            pieces, self.pieces = self.pieces, []
            self.worker.log_event(self.topic, {"id": self.request_id, "out": pieces})
            self.sent += 1


class _RoutedStream:
    """``sys.stdout`` or ``sys.stderr`` on a worker: a thread running a request writes to its
    relay, every other thread to the stream this replaced."""

    relays = {}  # thread ident -> _Relay

    def __init__(self, name, inner):
        self.name, self.inner = name, inner

    def write(self, text):
        relay = self.relays.get(threading.get_ident())
        if relay is None:
            return self.inner.write(text)
        relay.write(self.name, str(text))
        return len(text)

    def flush(self):
        relay = self.relays.get(threading.get_ident())
        if relay is None:
            self.inner.flush()
        else:
            relay.flush()

    def __getattr__(self, attr):
        return getattr(self.inner, attr)
