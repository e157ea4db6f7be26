"""A Dask cluster as a target: cells on workers, and the modules being edited on every worker.

Built on Dask's own mechanisms, through one ``distributed.Client``: a named worker plugin and a
named scheduler plugin carry the modules, tasks (``submit``) carry the requests, ``Client.run``
interrupts them, and ``Worker.log_event`` / ``Client.subscribe_topic`` relay their output.

**The modules being edited** (:func:`sync`). Dask pickles a function it can import by reference
(``mylib.f``), whatever any by-value registry says, and unpickles task graphs on the scheduler as
well as on the workers. So rather than changing how Dask pickles, the modules pickled by value are
made *importable* there: their sources travel in the plugins :class:`~.dask_worker.WorkerModules`
and :class:`~.dask_worker.SchedulerModules` (both named ``cloudpickle_ipy``), served to ``import``
by a finder placed first on ``sys.meta_path``. Then plain ``client.submit(mylib.f, x)``,
``client.map``, ``dask.delayed`` and ``dask.array.map_blocks`` work on the code being written, with
Dask's own small by-reference pickles, and the sources travel once per edit, not once per task.
The scheduler keeps the worker plugin and gives it to workers that join later.

A sync sends the whole state whenever a source changed: the scheduler's plugin and the workers' are
replaced at the same time, and the sync returns once both are (``register_plugin`` returns once
every worker has applied it). A worker applies
it in one step of its event loop: a package with any changed module is dropped from ``sys.modules``
as a whole and its new sources replace the old in one assignment, before any later task is
deserialized there. So the tasks submitted after a sync run the new code on every worker, and none
mixes new modules with old ones. (A task already running keeps the objects it holds.) The extension
syncs every target's cluster before each cell and after ``%pickle_by_value``; every request syncs
first; scripts call :meth:`DaskTarget.sync` after registering a module. Dask names tasks after a
token of their function: for code pickled by value the token includes the shipped sources
(:func:`_normalize_code`), so the same call after an edit is a new task, not the cached old result.

**Workers need only distributed.** A plugin pickles as a call to ``eval`` of :data:`_BOOT` (plain
Python, any version): unpickled on a worker or scheduler where cloudpickle_ipy is missing or
differs from this one, it installs this client's core and :mod:`.dask_worker` as in-memory
modules first (the sources of :mod:`.bootstrap`, as for kernels). A worker on another Python minor
version gets a plugin that refuses (its ``setup`` raises one line naming the worker) and nothing
else; :class:`DaskTarget` refuses such a cluster with that line.

**Cells** (:class:`DaskTarget`). A request is one task, pinned to one worker, that runs
:func:`~.dask_worker.serve` there on a payload pickled by the core (functions and classes by value);
``run_all`` is one such task per worker. Names persist: each target has a namespace on each worker
it ran on, kept until :meth:`DaskTarget.close`, and its cells run on the same worker while that
worker lives, as a kernel target's do. That is what makes ``push`` then ``run``, ``--pull`` and
``%cloudpickle_pull`` work; a worker that dies takes its names along (the request that finds it
gone says so; the next one runs on another). Pushed names travel with the next request, to every
worker it runs on. A scheduler or workers running in this very process (a LocalCluster of threads)
leave its modules alone: they are the originals.
"""
import asyncio
import hashlib
import sys
import threading
import time
import types
import uuid
import weakref
from concurrent.futures import ThreadPoolExecutor
from queue import Empty, SimpleQueue

from dask.tokenize import normalize_object, normalize_token
from distributed import Client

from .. import __version__, core
from ..core.registry import INTERACTIVE_MODULES, is_registered_by_value
from . import KernelDied, RemoteError, ShipError, ShipTimeout, Target, bootstrap, dask_worker
from .envelope import PYTHON
from .sources import SourceTracker
from .targets import TargetError

PROCESS = uuid.uuid4().hex  # this process: a scheduler or worker running in it leaves its modules be
SCATTER_MIN = 1 << 20  # payloads of at least this many bytes go to the workers ahead of the task
_SLICE = 0.1  # seconds between checks while waiting
_LIVENESS = 0.5  # seconds between checks that the workers of a request still live
_OUTPUT_GRACE = 5  # seconds to wait for output still on its way once a request is done
_REFUSED = ("the worker {worker} runs Python {python} and this is Python " + PYTHON + ": functions "
            "and classes pickled by value do not load across Python minor versions; start the "
            "workers on Python " + PYTHON)

# Runs where a plugin is unpickled, in the globals that _Shipped.__reduce__ gives (any Python 3).
_BOOT = '''
import sys


def boot():
    python = "%d.%d" % sys.version_info[:2]
    if KIND == "worker" and python != PYTHON:
        from distributed.diagnostics.plugin import WorkerPlugin

        class Refused(WorkerPlugin):
            name = NAME

            def setup(self, worker):
                raise RuntimeError(REFUSED.format(worker=worker.address, python=python))

        return Refused()
    module = sys.modules.get(WORKER_MODULE)
    if getattr(module, "FINGERPRINT", None) != FINGERPRINT:
        probe = {}
        exec(PROBE, probe)
        if probe["probe"](VERSION, NAMES)["fingerprint"] != FINGERPRINT:
            exec(INSTALL, {"SOURCES": SOURCES, "ORIGIN": ORIGIN})
        module = __import__(WORKER_MODULE, fromlist=["plugin"])
        module.FINGERPRINT = FINGERPRINT
    return module.plugin(KIND, MODULES, PROCESS)


made = boot()
'''


class _Shipped:
    """Pickles a plugin as the boot code, so that it unpickles where cloudpickle_ipy is missing."""

    kind = None

    def __reduce__(self):
        sources, fingerprint = bootstrap.sources()
        return eval, ("exec(BOOT, globals()) or made", {
            "BOOT": _BOOT, "KIND": self.kind, "NAME": dask_worker.NAME, "PYTHON": PYTHON,
            "REFUSED": _REFUSED, "WORKER_MODULE": dask_worker.__name__, "PROBE": bootstrap.PROBE,
            "VERSION": __version__, "NAMES": [n for n in sources if n != "cloudpickle_ipy"],
            "FINGERPRINT": fingerprint, "INSTALL": bootstrap.INSTALL, "SOURCES": sources,
            "ORIGIN": bootstrap.ORIGIN, "MODULES": self.modules, "PROCESS": self.origin})


class _ShippedWorkerModules(_Shipped, dask_worker.WorkerModules):
    kind = "worker"


class _ShippedSchedulerModules(_Shipped, dask_worker.SchedulerModules):
    kind = "scheduler"


# -- the modules on every worker ------------------------------------------------------------------

class _Cluster:
    """What this process shipped to one cluster (one scheduler address)."""

    def __init__(self):
        self.tracker = SourceTracker()
        self.modules = {}  # the state registered there: {name: (filename, is_package, source)}
        self.registered = False


_clusters = {}  # scheduler address -> _Cluster
_sync_lock = threading.Lock()
_digest = None  # of the sources last shipped anywhere: part of the Dask tokens of by-value code


def sync(client):
    """Make every module pickled by value importable on the scheduler and on every worker of
    ``client``'s cluster, now and on workers that join later; a no-op when nothing changed.
    Raises :class:`ShipError` (one line) when the cluster refuses them."""
    global _digest
    address = client.scheduler.address
    with _sync_lock:
        cluster = _clusters.setdefault(address, _Cluster())
        registered = core.list_registry_pickle_by_value()
        changed = cluster.tracker.changed(registered)
        modules = cluster.modules
        if any(not is_registered_by_value(name) for name in modules):  # unregistered since
            cluster.tracker.forget()
            changed, modules = cluster.tracker.changed(registered), {}
        elif cluster.registered and not changed:
            return
        modules = {**modules, **changed}
        _register(client, modules, address)
        cluster.tracker.sent(changed)
        cluster.modules, cluster.registered = modules, True
        _digest = hashlib.sha256(repr(sorted(modules.items())).encode()).hexdigest()


def _register(client, modules, address):
    """Replace the plugins of the cluster at ``address`` by ones carrying ``modules``: the
    workers' (in a thread) while the scheduler's is replaced, both done on return."""
    try:
        with ThreadPoolExecutor(1) as pool:
            workers = pool.submit(client.register_plugin, _ShippedWorkerModules(modules, PROCESS))
            try:  # replaced, not overwritten: the scheduler warns on a plugin name it already has
                client.unregister_scheduler_plugin(dask_worker.NAME)
            except ValueError:
                pass
            client.register_plugin(_ShippedSchedulerModules(modules, PROCESS))
            workers.result()
    except Exception as exc:
        message = str(exc)
        if message.startswith("the worker "):  # refused by a worker: its one line says why
            raise ShipError(message) from None
        raise ShipError(f"could not install the modules pickled by value on the Dask cluster at "
                        f"{address}: {type(exc).__name__}: {message}") from None


def _forget(client):
    """Remove the modules from the cluster of ``client`` (its last target of ours was closed)."""
    address = client.scheduler.address
    with _sync_lock:
        if _clusters.pop(address, None) is None:
            return
        _register(client, {}, address)  # empties the finders, then the plugins go
        client.unregister_worker_plugin(dask_worker.NAME)
        client.unregister_scheduler_plugin(dask_worker.NAME)


@normalize_token.register((types.FunctionType, type))
def _normalize_code(obj):
    """Dask's token of a function or class: for one pickled by value (from a module registered by
    value, or interactive), the sources last shipped count too, so that after an edit the same
    call is a new task rather than the result of the old code."""
    module = getattr(obj, "__module__", None)
    if _digest is not None and isinstance(module, str) and (
            module in INTERACTIVE_MODULES or is_registered_by_value(module)):
        return "cloudpickle_ipy", _digest, normalize_object(obj)
    return normalize_object(obj)


_targets = weakref.WeakSet()  # the open DaskTargets of this process


def sync_all():
    """Sync the cluster of every open target (the extension calls it before each cell); the
    one-line messages of those that failed."""
    failed = []
    for target in list(_targets):
        if target.alive:
            try:
                target.sync()
            except ShipError as exc:
                failed.append(f"{target.name}: {exc}")
    return failed


# -- the target ------------------------------------------------------------------------------------

def open_cluster(spec, *, timeout=None, connect_timeout=10, name=None):
    """``(shown in listings, DaskTarget)`` for a ``distributed.Client`` (left open by ``close``) or
    a ``tcp://`` scheduler address (a Client of the target's own, closed with it)."""
    if isinstance(spec, str):
        try:
            client = Client(spec, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise TargetError(f"no Dask scheduler answers at {spec}: {exc}") from None
        owned = True
    else:
        client, owned = spec, False
    try:
        target = DaskTarget(client, owned=owned, timeout=timeout, name=name or spec)
    except BaseException:
        if owned:
            client.close()
        raise
    return f"scheduler {client.scheduler.address}", target


class DaskTarget(Target):
    """Push, pull, call and run on a worker of a Dask cluster; ``run_all`` on every worker; ``map``
    over the cluster. ``timeout`` (seconds, ``None``: no limit) bounds every request."""

    def __init__(self, client, *, owned=False, timeout=None, name=None):
        self.client, self.owned, self.timeout = client, owned, timeout
        self.name = name or client.scheduler.address
        self.session = uuid.uuid4().hex
        self.agent = {"python": PYTHON}  # what listings show: workers on another Python are refused
        self.worker = None  # where requests run, chosen at the first one
        self._pending = []  # pushes (pickled) that travel with the next request
        self._cells = 0
        self._events = SimpleQueue()  # output events and ended gathers, for the waiting thread
        self._topic = f"cloudpickle_ipy-{self.session}"
        self._closed = False
        client.subscribe_topic(self._topic, self._events.put)
        try:
            self.sync()
        except BaseException:
            client.unsubscribe_topic(self._topic)
            raise
        _targets.add(self)

    def __repr__(self):
        return f"<DaskTarget {self.name} scheduler={self.client.scheduler.address}>"

    @property
    def alive(self):
        return not self._closed and self.client.status == "running"

    @property
    def worker_count(self):
        return len(self.client.nthreads())

    # -- the Python API ------------------------------------------------------------------------

    def sync(self):
        """Make the modules pickled by value importable on the whole cluster now (see :func:`sync`)."""
        sync(self.client)

    def push(self, mapping=None, /, **names):
        """Place names into this target's namespace on the worker(s) of the next request:
        ``push(x=1)`` or ``push({"x": 1})``. They are pickled now (an error raises here)."""
        self._check_open()
        self._pending.append(core.dumps({**(mapping or {}), **names}, protocol=5))

    def request(self, op, args, timeout=None):
        """One request to the target's worker; its value."""
        return self._request(op, args, timeout)

    def run(self, code, *, timeout=None):
        """Run ``code`` (Python: a worker has no IPython shell for %magics) like a cell on the
        target's worker and return its last expression's value. Output is relayed as it is
        printed; an exception raises :class:`RemoteError` showing the worker's traceback."""
        return self._request("run", self._cell(code), timeout)

    def cell(self, code, *, push=None, pull=(), timeout=None, everywhere=False):
        """What ``%%cloudpickle_ship`` does, in one request bounded by one ``timeout``: place the
        names of ``push`` (a dict), run ``code`` as :meth:`run` does, and return ``(value, {name:
        value})`` with the value of each name of ``pull`` afterwards. ``everywhere``: on every
        worker, returning ``{worker address: value}`` (``pull`` must then be empty)."""
        if everywhere and pull:
            raise ShipError("names can be pulled from one worker, not from all of them at once")
        if push:
            self.push(push)
        replies = self._request("cell", {**self._cell(code), "pull": list(pull)}, timeout,
                                everywhere=everywhere)
        if everywhere:
            return {worker: value for worker, (value, _) in replies.items()}, {}
        value, pulled = replies
        return value, dict(zip(pull, pulled))

    def run_all(self, code, *, timeout=None):
        """Run ``code`` like a cell on every worker: ``{worker address: value}``."""
        return self._request("run", self._cell(code), timeout, everywhere=True)

    def map(self, fn, iterable, *, timeout=None):
        """``[fn(x) for x in iterable]``, computed across the cluster by Dask (one task per item),
        ``fn`` and the items pickled by the core; an error raises :class:`RemoteError` for the
        first item that failed."""
        self._check_open()
        self.sync()
        items = [core.dumps(item, protocol=5) for item in iterable]
        request_id = uuid.uuid4().hex
        futures = self.client.map(
            dask_worker.apply, items, fn=core.dumps(fn, protocol=5), topic=self._topic,
            request_id=request_id, key=[f"cloudpickle_ipy-map-{request_id}-{i}"
                                        for i in range(len(items))], pure=False)
        replies = self._wait(request_id, futures, None, timeout)
        for index, reply in enumerate(replies):
            if not reply["ok"]:
                raise _remote_error(reply["error"], f" (item {index})")
        return [reply["value"] for reply in replies]

    def close(self):
        """Forget this target's namespaces on the workers; when it is the last open target of this
        process on its cluster, remove the modules from it; close a Client of its own."""
        if self._closed:
            return
        self._closed = True
        _targets.discard(self)
        client = self.client
        try:
            if client.status != "running":
                return
            client.unsubscribe_topic(self._topic)
            client.run(dask_worker.forget, self.session, on_error="return")
            address = client.scheduler.address
            if not any(t.client.scheduler.address == address for t in _targets if t.alive):
                _forget(client)
        finally:
            if self.owned:
                client.close()

    # -- requests ------------------------------------------------------------------------------

    def _cell(self, code):
        self._cells += 1
        return {"code": code, "filename": f"<cell {self._cells}>"}

    def _check_open(self):
        if self._closed:
            raise ShipError(f"{self!r} is closed")
        if self.client.status != "running":
            raise ShipError(f"the client of {self.name} is {self.client.status}: the scheduler "
                            f"at {self.client.scheduler.address} is not reachable")

    def _request(self, op, args, timeout=None, everywhere=False):
        """Send one request to the target's worker (or to every worker); its value (or
        ``{worker: value}``)."""
        self._check_open()
        self.sync()
        workers = self._workers(everywhere)
        pending, self._pending = self._pending, []
        payload = core.dumps({"op": op, "args": args, "push": pending}, protocol=5)
        if len(payload) >= SCATTER_MIN:
            payload = self.client.scatter(payload, workers=workers, broadcast=True, hash=False)
        request_id = uuid.uuid4().hex
        futures = [self.client.submit(
            dask_worker.serve, self.session, request_id, self._topic, payload, workers=[worker],
            allow_other_workers=False, pure=False, key=f"cloudpickle_ipy-{op}-{request_id}-{i}")
            for i, worker in enumerate(workers)]
        replies = self._wait(request_id, futures, workers, timeout)
        for worker, reply in zip(workers, replies):
            if not reply["ok"]:
                raise _remote_error(reply["error"], f" (on {worker})" if everywhere else "")
        if everywhere:
            return {worker: reply["value"] for worker, reply in zip(workers, replies)}
        return replies[0]["value"]

    def _workers(self, everywhere):
        """The workers of the next request: all of them, or the target's (chosen now if it has
        none yet or it left: the wait notices). A cluster with a worker on another Python is
        refused when workers are chosen."""
        if self.worker is not None and not everywhere:
            return [self.worker]
        pythons = self.client.run_on_scheduler(dask_worker.worker_pythons)
        for worker, python in sorted(pythons.items()):
            if python != PYTHON:
                raise ShipError(_REFUSED.format(worker=worker, python=python))
        if not pythons:
            raise ShipError(f"the Dask cluster at {self.client.scheduler.address} has no worker")
        if everywhere:
            return sorted(pythons)
        self.worker = min(pythons)
        return [self.worker]

    def _wait(self, request_id, futures, workers, timeout):
        """Relay the request's output until its futures are done; their replies, once the output
        they printed has arrived. Ctrl-C or the timeout interrupts the request on the workers; a
        worker of ``workers`` that leaves ends the wait with :class:`KernelDied`."""
        timeout = self.timeout if timeout is None else timeout
        gathered = self._gather(futures)
        try:  # the loop runs in a frame of its own: see _relay_until
            received = self._relay_until(request_id, gathered, futures, workers, timeout)
        except KeyboardInterrupt:
            self._stop(request_id, futures)
            raise KeyboardInterrupt("interrupted; the run on the worker was interrupted too") \
                from None
        try:
            replies = [core.loads(reply) for reply in gathered.result()]
        except Exception:  # a task failed or was cancelled: each future says which, in one line
            replies = [self._reply(future) for future in futures]
        printed = sum(reply["printed"] for reply in replies)
        deadline = time.monotonic() + _OUTPUT_GRACE
        while received < printed and time.monotonic() < deadline:
            event = self._next_event(deadline)
            if isinstance(event, tuple):
                received += _relay(event, request_id)
        return replies

    def _gather(self, futures):
        """The futures' results, gathered on the client's event loop as soon as they are done (not
        awaited here, then fetched: a hop between threads less per request); a concurrent future,
        put on the events queue when it ends."""
        gathered = asyncio.run_coroutine_threadsafe(
            self.client.gather(futures, asynchronous=True), self.client.loop.asyncio_loop)
        gathered.add_done_callback(self._events.put)
        return gathered

    def _relay_until(self, request_id, gathered, futures, workers, timeout):
        """Relay output until ``gathered`` (``futures``' results) is done; how many output events
        there were.

        (On CPython 3.11 and 3.12, a ``KeyboardInterrupt`` that arrives at the jump back of a loop
        that begins a ``try`` block escapes that block's handler: the caller catches it here.)
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        received, checked = 0, time.monotonic()
        while not gathered.done():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                self._stop(request_id, futures)
                raise ShipTimeout(f"no answer from the Dask cluster within {timeout:g} s; the "
                                  f"run on the worker was interrupted")
            if workers and now - checked >= _LIVENESS:
                checked = now
                self._check_workers(workers, request_id, futures)
            event = self._next_event(deadline)
            if isinstance(event, tuple):  # output (a finished request's future also wakes us)
                received += _relay(event, request_id)
        return received

    def _next_event(self, deadline):
        """The next output event or finished future, or None after a slice (or at ``deadline``)."""
        wait = _SLICE if deadline is None else min(_SLICE, deadline - time.monotonic())
        try:
            return self._events.get(timeout=max(wait, 0))
        except Empty:
            return None

    def _reply(self, future):
        if future.status == "finished":
            return core.loads(future.result())
        exc = future.exception() if future.status == "error" else None
        raise ShipError(f"the request failed on the Dask cluster: "
                        f"{type(exc).__name__ if exc else future.status}: {exc or ''}".rstrip(": "))

    def _check_workers(self, workers, request_id, futures):
        gone = sorted(set(workers) - set(self.client.nthreads()))
        if gone:
            self._stop(request_id, futures)
            if self.worker in gone:
                self.worker = None
            raise KernelDied(f"the worker {', '.join(gone)} left the cluster (it died or was "
                             f"stopped) before the request finished; the names it held are gone; "
                             f"the next request runs on another worker")

    def _stop(self, request_id, futures):
        """Interrupt the request's runs on the workers and cancel its tasks."""
        self.client.cancel(futures)
        self.client.run(dask_worker.interrupt, request_id, on_error="return")


def _relay(event, request_id):
    """Write one output event of ``request_id`` (``(time, {"id", "out"})``) here; 1 if it was one."""
    message = event[1]
    if not isinstance(message, dict) or message.get("id") != request_id:
        return 0  # late output of a request that was interrupted
    for stream, text in message["out"]:
        out = sys.stderr if stream == "stderr" else sys.stdout
        out.write(text)
        out.flush()
    return 1


def _remote_error(error, where):
    return RemoteError(error["type"], error["message"] + where, error["traceback"])
