"""Shipping to a kernel: round-trip latency of a small cell, and push/pull throughput (issues 6, 10).

Ours over ZeroMQ (``connect("local")``) and ours over a Jupyter Server's websocket (a ``jupyter
server`` this script starts on loopback, a kernel started there from its URL), side by side with
ipyparallel (a local cluster of one engine) and with jupyter-kernel-client's ``execute`` over the
same server's websocket, each when it is installed:

- **latency**: ours ``run("1 + 1")`` and ``call(lambda x: x + 1, 1)`` on ``connect("local")``;
  ipyparallel ``execute("1 + 1")`` and ``apply_sync(lambda x: x + 1, 1)`` on a blocking
  ``DirectView`` of the engine. Wall time of each round trip; median, p90 and min over ``--runs``.
- **throughput**: pushing one float64 numpy array of ``--size-mb`` MiB (ours ``push(a=...)``,
  ipyparallel ``push({"a": ...}, block=True)``), then pulling it back (ours ``pull("a")``,
  ipyparallel ``pull("a", block=True)``), in MB/s (10**6 bytes per second): best and median of
  ``--repeat`` transfers. Each system's last push is checked on the target (size and last value)
  and its last pull here, outside the timings, so that nobody wins by sending garbage.
  (jupyter-kernel-client has no way to move data: latency only.)

How it measures, and why:
- Interleaved: each round does one call of every system, in an order rotated by one per round, so
  that machine noise (other processes, frequency changes) hits both alike.
- Wall time (``time.perf_counter``): the work happens in several processes (this one, the kernel,
  for ipyparallel also its controller), so CPU time of this process would mean nothing.
- Warm-up calls first (imports, the agent, the engine's first executions are not measured); the
  garbage collector is collected before each push and disabled while it is timed.

Run after ``pip install -e '.[bench]'``:  python benchmarks/ship_latency.py [--quick]
``--quick`` (tiny sizes, few runs) is for the smoke test. A peer that is missing or cannot start
(ipyparallel, jupyter-kernel-client; or the websocket path without jupyter_server) is named with
the reason and left out. Exits with 1 if ours fails.
"""
import argparse
import gc
import json
import os
import pickle
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from compare_picklers import git_revision, machine, report_header

OURS = "cloudpickle_ipy"
WS = "cloudpickle_ipy ws"  # ours, over a Jupyter Server's websocket
PEER = "ipyparallel"
JKC = "jupyter-kernel-client"
RAW = "raw pyzmq (the limit)"
GOAL_MEDIAN_MS = 20.0
GOAL_MB_S = 500.0
GOAL_WS_RATIO = 1.5  # websocket round trip at most this many times ZeroMQ's
GOAL_WS_MB_S = 300.0
MB = 1e6
MIB = 2**20
ARRAY_NAME = "_ship_bench_array"


def _version(distribution):
    try:
        from importlib.metadata import PackageNotFoundError, version
        return version(distribution)
    except PackageNotFoundError:
        return None


# The systems ---------------------------------------------------------------------------------------

class Ours:
    name = OURS
    ops = ("run", "call")

    def __init__(self):
        import cloudpickle_ipy
        self.target = cloudpickle_ipy.connect("local", timeout=300)

    def op(self, op):
        if op == "run":
            return lambda: self.target.run("1 + 1")
        fn = lambda x: x + 1  # noqa: E731 -- a lambda is the point: it travels by value
        return lambda: self.target.call(fn, 1)

    def push(self, array):
        self.target.push({ARRAY_NAME: array})

    def pull(self):
        return self.target.pull(ARRAY_NAME)

    def check(self):
        return tuple(self.target.run(f"{ARRAY_NAME}.nbytes, float({ARRAY_NAME}[-1])"))

    def close(self):
        self.target.close()


class JupyterServer:
    """A ``jupyter server`` on loopback (random port and token, its own config folders)."""

    def __init__(self):
        self.folder = tempfile.mkdtemp(prefix="ship-bench-server-")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{port}/user/bench/"
        env = {**os.environ, **{f"JUPYTER_{name}": os.path.join(self.folder, name.lower())
                                for name in ("CONFIG_DIR", "RUNTIME_DIR", "DATA_DIR")}}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--allow-root", "--no-browser",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
             "--ServerApp.base_url=/user/bench/", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={self.folder}"], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        for _ in range(1200):
            try:
                urllib.request.urlopen(self.url + "api", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        self.close()
        raise RuntimeError("jupyter server did not start")

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


class OursWebsocket(Ours):
    name = WS

    def __init__(self, server):
        import cloudpickle_ipy
        self.target = cloudpickle_ipy.connect(f"{server.url}?token={server.token}", timeout=300)


class KernelClientPeer:
    """jupyter-kernel-client's ``execute`` on a kernel of the same server (latency only)."""
    name = JKC
    ops = ("execute",)

    def __init__(self, server):
        from jupyter_kernel_client import JupyterKernelClient
        self.kernel = JupyterKernelClient(server_url=server.url.rstrip("/"), token=server.token)
        self.kernel.start()

    def op(self, op):
        return lambda: self.kernel.execute("1 + 1", silent=True, store_history=False)

    def close(self):
        self.kernel.stop()


class IPyParallel:
    name = PEER
    ops = ("execute", "apply")

    def __init__(self):
        import ipyparallel
        self.cluster = ipyparallel.Cluster(n=1, log_level=40)
        try:
            self.client = self.cluster.start_and_connect_sync()
            self.client.wait_for_engines(1, timeout=120)
            self.view = self.client[0]
            self.view.block = True
        except BaseException:
            self.close()
            raise

    def op(self, op):
        if op == "execute":
            return lambda: self.view.execute("1 + 1", block=True)
        fn = lambda x: x + 1  # noqa: E731
        return lambda: self.view.apply_sync(fn, 1)

    def push(self, array):
        self.view.push({ARRAY_NAME: array}, block=True)

    def pull(self):
        return self.view.pull(ARRAY_NAME, block=True)

    def check(self):
        self.view.execute(f"_ship_bench_check = ({ARRAY_NAME}.nbytes, float({ARRAY_NAME}[-1]))",
                          block=True)
        return tuple(self.view.pull("_ship_bench_check", block=True))

    def close(self):
        client = getattr(self, "client", None)
        try:
            if client is not None:
                client.close()
        finally:
            self.cluster.stop_cluster_sync()


# The other process of the raw pyzmq limit: it keeps the array it receives and sends it back on
# request (the same copies ZeroMQ makes for us: none beyond its own).
_RAW_PEER = """
import sys, zmq
socket = zmq.Context().socket(zmq.DEALER)
socket.connect(sys.argv[1])
socket.send(b"ready")
kept = None
while True:
    frames = socket.recv_multipart(copy=False)
    what = frames[0].bytes
    if what == b"push":
        kept = frames[1]
        socket.send(memoryview(kept.buffer).nbytes.to_bytes(8, "little"))
    elif what == b"pull":
        socket.send(kept, copy=False)
    elif what == b"check":
        import numpy
        last = numpy.frombuffer(kept.buffer, dtype=numpy.float64)[-1]
        socket.send_pyobj((memoryview(kept.buffer).nbytes, float(last)))
    else:
        break
"""


class RawZmq:
    """The limit: the same bytes between two processes with raw pyzmq over IPC (a push is one
    message and a short answer; a pull, a short request and one message), no framing, no
    signature, no pickle."""
    name = RAW
    ops = ()

    def __init__(self):
        import numpy
        import zmq

        self.numpy, self.zmq = numpy, zmq
        self.folder = tempfile.mkdtemp(prefix="ship-bench-raw-")
        address = f"ipc://{self.folder}/socket"
        self.socket = zmq.Context.instance().socket(zmq.ROUTER)
        self.socket.bind(address)
        self.proc = subprocess.Popen([sys.executable, "-c", _RAW_PEER, address])
        self.peer = self.socket.recv_multipart()[0]  # its "ready": who it is

    def _send(self, *frames):
        self.socket.send_multipart([self.peer, *frames], copy=False)

    def push(self, array):
        self._send(b"push", memoryview(array).cast("B"))
        self.socket.recv_multipart()

    def pull(self):
        self._send(b"pull")
        frame = self.socket.recv_multipart(copy=False)[1]
        return self.numpy.frombuffer(frame.buffer, dtype=self.numpy.float64)

    def check(self):
        self._send(b"check")
        return pickle.loads(self.socket.recv_multipart()[1])

    def close(self):
        try:
            self._send(b"stop")
        finally:
            self.proc.wait(10)
            self.socket.close(linger=0)
            shutil.rmtree(self.folder, ignore_errors=True)


def start(name, distribution, make):
    """(``make()``, None), or (None, why ``name`` is not measured)."""
    if _version(distribution) is None:
        return None, f"{distribution} is not installed (pip install -e '.[bench]')"
    try:
        return make(), None
    except Exception as e:  # noqa: BLE001 -- whatever the reason, say it and measure the rest
        text = f"{type(e).__name__}: {e}".splitlines()[0][:200]
        return None, f"{name} could not start: {text}"


# Measuring -----------------------------------------------------------------------------------------

def _rotated(items, round_number):
    shift = round_number % len(items)
    return items[shift:] + items[:shift]


def measure_latency(systems, runs, warmup):
    """{(system, op): [seconds per round trip]}, interleaved."""
    calls = [(system.name, op, system.op(op)) for system in systems for op in system.ops]
    for _, _, call in calls:
        for _ in range(warmup):
            call()
    times = {(name, op): [] for name, op, _ in calls}
    for round_number in range(runs):
        for name, op, call in _rotated(calls, round_number):
            start = time.perf_counter()
            call()
            times[name, op].append(time.perf_counter() - start)
    return times


def measure_transfers(systems, array, repeat):
    """({system: [seconds per push]}, {system: [seconds per pull]}, {system: checks passed}),
    interleaved: each round pushes with every system, then pulls with every system."""
    systems = [system for system in systems if hasattr(system, "push")]
    pushes = {system.name: [] for system in systems}
    pulls = {system.name: [] for system in systems}
    for system in systems:  # warm-up: the first push also pays for imports on the target
        system.push(array[:1024])
        system.pull()
    pulled = {}
    for round_number in range(repeat):
        for kind, times in (("push", pushes), ("pull", pulls)):
            for system in _rotated(list(systems), round_number):
                gc.collect()
                gc.disable()
                try:
                    start = time.perf_counter()
                    result = system.push(array) if kind == "push" else system.pull()
                    times[system.name].append(time.perf_counter() - start)
                finally:
                    gc.enable()
                if kind == "pull":
                    pulled[system.name] = result
                del result
    expected = (array.nbytes, float(array[-1]))
    checks = {system.name: system.check() == expected
              and (pulled[system.name].nbytes, float(pulled[system.name][-1])) == expected
              for system in systems}
    return pushes, pulls, checks


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


# Report --------------------------------------------------------------------------------------------

def latency_rows(times):
    return {key: {"median_ms": statistics.median(v) * 1e3, "p90_ms": percentile(v, 0.9) * 1e3,
                  "min_ms": min(v) * 1e3, "runs": len(v)} for key, v in times.items()}


def push_rows(times, nbytes):
    return {name: {"best_mb_s": nbytes / min(v) / MB, "median_mb_s": nbytes / statistics.median(v) / MB,
                   "best_s": min(v), "pushes": len(v)} for name, v in times.items()}


def print_report(header, latency, transfers, checks, nbytes, notes):
    print("\n".join(header))
    for name, note in notes.items():
        print(f"{name}: not measured: {note}")
    print()
    print("latency of a small round trip (wall time, ms):")
    row = "{:<22} {:<31} {:>8} {:>8} {:>8} {:>5}"
    print(row.format("system", "operation", "median", "p90", "min", "runs"))
    labels = {"run": 'run("1 + 1")', "call": "call(lambda x: x + 1, 1)",
              "execute": 'execute("1 + 1")', "apply": "apply_sync(lambda x: x + 1, 1)"}
    for (name, op), r in latency.items():
        print(row.format(name, labels[op], f"{r['median_ms']:.2f}", f"{r['p90_ms']:.2f}",
                         f"{r['min_ms']:.2f}", r["runs"]))
    for kind, rows in transfers.items():
        print()
        print(f"{kind} of a {nbytes / MIB:.0f} MiB float64 numpy array ({nbytes / MB:.1f} MB):")
        row = "{:<22} {:>12} {:>14} {:>10} {:>7}  {}"
        print(row.format("system", "best MB/s", "median MB/s", "best s", "runs", "check"))
        for name, r in rows.items():
            print(row.format(name, f"{r['best_mb_s']:.0f}", f"{r['median_mb_s']:.0f}",
                             f"{r['best_s']:.3f}", r["pushes"], "ok" if checks[name] else "FAIL"))
    print()
    print("ratios (latency: the second's median time / the first's; MB/s: the first's best / the "
          "second's):")
    pairs = [(OURS, "run", PEER, "execute"), (OURS, "call", PEER, "apply"),
             (OURS, "run", WS, "run"), (OURS, "call", WS, "call"), (WS, "run", JKC, "execute")]
    for ours, ours_op, peer, peer_op in pairs:
        if (ours, ours_op) in latency and (peer, peer_op) in latency:
            ratio = latency[peer, peer_op]["median_ms"] / latency[ours, ours_op]["median_ms"]
            print(f"  latency  {ours} {ours_op} vs {peer} {peer_op}: {ratio:.2f}x")
    for kind, rows in transfers.items():
        for first, second in ((OURS, PEER), (WS, OURS), (OURS, RAW)):
            if first in rows and second in rows:
                ratio = rows[first]["best_mb_s"] / rows[second]["best_mb_s"]
                print(f"  {kind:<8} {first} vs {second}: {ratio:.2f}x")
    print()
    median = max(latency[OURS, op]["median_ms"] for op in Ours.ops)
    best = transfers["push"][OURS]["best_mb_s"]
    print(f"goals: median latency under {GOAL_MEDIAN_MS:g} ms: "
          f"{'met' if median < GOAL_MEDIAN_MS else 'not met'} ({median:.2f} ms, the slower op); "
          f"push at least {GOAL_MB_S:g} MB/s: {'met' if best >= GOAL_MB_S else 'not met'} "
          f"({best:.0f} MB/s best)")
    if (WS, "run") in latency:
        ratio = max(latency[WS, op]["median_ms"] / latency[OURS, op]["median_ms"]
                    for op in Ours.ops)
        ws_best = transfers["push"][WS]["best_mb_s"]
        print(f"goals (websocket): round trip within {GOAL_WS_RATIO:g}x of ZeroMQ's: "
              f"{'met' if ratio <= GOAL_WS_RATIO else 'not met'} ({ratio:.2f}x, the slower op); "
              f"push at least {GOAL_WS_MB_S:g} MB/s: "
              f"{'met' if ws_best >= GOAL_WS_MB_S else 'not met'} ({ws_best:.0f} MB/s best)")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few runs, for the smoke test")
    parser.add_argument("--runs", type=int, help="round trips per operation (default 100)")
    parser.add_argument("--size-mb", type=float, help="array size in MiB (default 256)")
    parser.add_argument("--repeat", type=int,
                        help="pushes and pulls per system, best kept (default 5)")
    parser.add_argument("--no-peer", action="store_true",
                        help="measure ours alone (over ZeroMQ and the websocket)")
    parser.add_argument("--json", metavar="PATH", help="also save the results as JSON")
    args = parser.parse_args(argv)
    defaults = (5, 1.0, 2) if args.quick else (100, 256.0, 5)
    for field, default in zip(("runs", "size_mb", "repeat"), defaults):
        if getattr(args, field) is None:
            setattr(args, field, default)
    if args.runs < 1 or args.repeat < 1 or args.size_mb <= 0:
        parser.error("--runs and --repeat must be at least 1, --size-mb positive")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import numpy

    info = machine()
    command = " ".join(["python", os.path.relpath(sys.argv[0])] + sys.argv[1:])
    load_at_start = os.getloadavg()[0]
    revision = git_revision()
    versions = {OURS: _version(OURS) + (f" (git {revision})" if revision else ""),
                PEER: _version(PEER), JKC: _version(JKC), "ipykernel": _version("ipykernel"),
                "jupyter_client": _version("jupyter_client"), "pyzmq": _version("pyzmq"),
                "jupyter_server": _version("jupyter_server"), "websockets": _version("websockets"),
                "numpy": numpy.__version__}
    count = max(1, int(args.size_mb * MIB) // 8)
    array = numpy.random.default_rng(0).random(count)
    warmup = 2 if args.quick else 10
    print("starting a local kernel ...", file=sys.stderr, flush=True)
    systems, notes, server = [Ours()], {}, None
    try:
        print("starting a jupyter server on loopback ...", file=sys.stderr, flush=True)
        server, notes[WS] = start(WS, "jupyter_server", JupyterServer)
        if server is not None:
            for name, distribution, make in ((WS, "websockets", OursWebsocket),
                                             (JKC, JKC, KernelClientPeer)):
                if name == JKC and args.no_peer:
                    notes[JKC] = "--no-peer"
                    continue
                system, notes[name] = start(name, distribution, lambda: make(server))
                if system is not None:
                    systems.append(system)
        if args.no_peer:
            notes[PEER] = "--no-peer"
        else:
            print(f"starting an {PEER} cluster (one engine) ...", file=sys.stderr, flush=True)
            peer, notes[PEER] = start(f"the {PEER} cluster", PEER, IPyParallel)
            if peer is not None:
                systems.append(peer)
        systems.append(RawZmq())
        print("measuring latency ...", file=sys.stderr, flush=True)
        latency = latency_rows(measure_latency(systems, args.runs, warmup))
        print("measuring push and pull throughput ...", file=sys.stderr, flush=True)
        pushes, pulls, checks = measure_transfers(systems, array, args.repeat)
        transfers = {"push": push_rows(pushes, array.nbytes),
                     "pull": push_rows(pulls, array.nbytes)}
    finally:
        for system in systems:
            try:
                system.close()
            except Exception as e:  # noqa: BLE001 -- report, and still close the others
                print(f"closing {system.name} failed: {e}", file=sys.stderr)
        if server is not None:
            server.close()
    notes = {name: note for name, note in notes.items() if note}
    method = (f"local kernel over ZeroMQ, a kernel of a jupyter server on loopback over its "
              f"websocket, {PEER} cluster of 1 engine, on this machine; interleaved rounds; wall "
              f"time; {warmup} warm-up calls; latency over {args.runs} round trips; push and pull "
              f"best of {args.repeat}; MB = 10**6 bytes")
    header = report_header(info, versions, method, command, load_at_start)
    print_report(header, latency, transfers, checks, array.nbytes, notes)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header, "machine": info, "packages": versions,
                       "command": command, "notes": notes,
                       "latency": {f"{n} {op}": r for (n, op), r in latency.items()},
                       **transfers, "checks": checks, "bytes": array.nbytes}, f, indent=1)
    failed = [name for name in (OURS, WS) if name in checks and not checks[name]]
    if failed:
        print(f"\n{', '.join(failed)}: the array did not travel intact", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
