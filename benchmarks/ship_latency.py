"""Shipping to a local kernel: round-trip latency of a small cell, and push throughput (issue 6).

Side by side with ipyparallel (a local cluster of one engine) when it is installed:

- **latency**: ours ``run("1 + 1")`` and ``call(lambda x: x + 1, 1)`` on ``connect("local")``;
  ipyparallel ``execute("1 + 1")`` and ``apply_sync(lambda x: x + 1, 1)`` on a blocking
  ``DirectView`` of the engine. Wall time of each round trip; median, p90 and min over ``--runs``.
- **throughput**: pushing one float64 numpy array of ``--size-mb`` MiB (ours ``push(a=...)``,
  ipyparallel ``push({"a": ...}, block=True)``), in MB/s (10**6 bytes per second): best and median
  of ``--repeat`` pushes. Each system's last push is checked on the target (size and last value),
  outside the timings, so that nobody wins by sending garbage.

How it measures, and why:
- Interleaved: each round does one call of every system, in an order rotated by one per round, so
  that machine noise (other processes, frequency changes) hits both alike.
- Wall time (``time.perf_counter``): the work happens in several processes (this one, the kernel,
  for ipyparallel also its controller), so CPU time of this process would mean nothing.
- Warm-up calls first (imports, the agent, the engine's first executions are not measured); the
  garbage collector is collected before each push and disabled while it is timed.

Run after ``pip install -e '.[bench]'``:  python benchmarks/ship_latency.py [--quick]
``--quick`` (tiny sizes, few runs) is for the smoke test. If ipyparallel is missing or its cluster
cannot start, the reason is printed and only ours is measured. Exits with 1 if ours fails.
"""
import argparse
import gc
import json
import os
import statistics
import sys
import time

from compare_picklers import git_revision, machine, report_header

OURS = "cloudpickle_ipy"
PEER = "ipyparallel"
GOAL_MEDIAN_MS = 20.0
GOAL_MB_S = 500.0
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

    def check(self):
        return tuple(self.target.run(f"{ARRAY_NAME}.nbytes, float({ARRAY_NAME}[-1])"))

    def close(self):
        self.target.close()


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


def start_peer():
    """(IPyParallel, None), or (None, why it is not measured)."""
    if _version("ipyparallel") is None:
        return None, "ipyparallel is not installed (pip install -e '.[bench]')"
    try:
        return IPyParallel(), None
    except Exception as e:  # noqa: BLE001 -- whatever the reason, say it and measure ours alone
        text = f"{type(e).__name__}: {e}".splitlines()[0][:200]
        return None, f"the ipyparallel cluster could not start: {text}"


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


def measure_push(systems, array, repeat):
    """{system: [seconds per push]}, interleaved, and {system: check result} after the last."""
    times = {system.name: [] for system in systems}
    for system in systems:  # warm-up: the first push also pays for imports on the target
        system.push(array[:1024])
    for round_number in range(repeat):
        for system in _rotated(list(systems), round_number):
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter()
                system.push(array)
                times[system.name].append(time.perf_counter() - start)
            finally:
                gc.enable()
    expected = (array.nbytes, float(array[-1]))
    checks = {system.name: system.check() == expected for system in systems}
    return times, checks


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


def print_report(header, latency, push, checks, nbytes, peer_note):
    print("\n".join(header))
    if peer_note:
        print(f"{PEER}: not measured: {peer_note}")
    print()
    print("latency of a small round trip (wall time, ms):")
    row = "{:<16} {:<31} {:>8} {:>8} {:>8} {:>5}"
    print(row.format("system", "operation", "median", "p90", "min", "runs"))
    labels = {"run": 'run("1 + 1")', "call": "call(lambda x: x + 1, 1)",
              "execute": 'execute("1 + 1")', "apply": "apply_sync(lambda x: x + 1, 1)"}
    for (name, op), r in latency.items():
        print(row.format(name, labels[op], f"{r['median_ms']:.2f}", f"{r['p90_ms']:.2f}",
                         f"{r['min_ms']:.2f}", r["runs"]))
    print()
    print(f"push of a {nbytes / MIB:.0f} MiB float64 numpy array ({nbytes / MB:.1f} MB):")
    row = "{:<16} {:>12} {:>14} {:>10} {:>7}  {}"
    print(row.format("system", "best MB/s", "median MB/s", "best s", "pushes", "check"))
    for name, r in push.items():
        print(row.format(name, f"{r['best_mb_s']:.0f}", f"{r['median_mb_s']:.0f}",
                         f"{r['best_s']:.3f}", r["pushes"], "ok" if checks[name] else "FAIL"))
    print()
    if PEER in push:
        print(f"ratios ({OURS} vs {PEER}; above 1: {OURS} is better):")
        for ours_op, peer_op in (("run", "execute"), ("call", "apply")):
            for stat in ("median_ms", "p90_ms"):
                ratio = latency[PEER, peer_op][stat] / latency[OURS, ours_op][stat]
                print(f"  latency {stat[:-3]:<6} {peer_op + ' / ' + ours_op:<22} {ratio:6.2f}x")
        for stat in ("best_mb_s", "median_mb_s"):
            ratio = push[OURS][stat] / push[PEER][stat]
            print(f"  push    {stat[:-5]:<6} {'ours / ' + PEER:<22} {ratio:6.2f}x")
        print()
    median = max(latency[OURS, op]["median_ms"] for op in Ours.ops)
    best = push[OURS]["best_mb_s"]
    print(f"goals: median latency under {GOAL_MEDIAN_MS:g} ms: "
          f"{'met' if median < GOAL_MEDIAN_MS else 'not met'} ({median:.2f} ms, the slower op); "
          f"push at least {GOAL_MB_S:g} MB/s: {'met' if best >= GOAL_MB_S else 'not met'} "
          f"({best:.0f} MB/s best)")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and few runs, for the smoke test")
    parser.add_argument("--runs", type=int, help="round trips per operation (default 100)")
    parser.add_argument("--size-mb", type=float, help="array size in MiB (default 256)")
    parser.add_argument("--repeat", type=int, help="pushes per system, best kept (default 5)")
    parser.add_argument("--no-peer", action="store_true", help=f"measure {OURS} alone")
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
                PEER: _version(PEER), "ipykernel": _version("ipykernel"),
                "jupyter_client": _version("jupyter_client"), "pyzmq": _version("pyzmq"),
                "numpy": numpy.__version__}
    count = max(1, int(args.size_mb * MIB) // 8)
    array = numpy.random.default_rng(0).random(count)
    warmup = 2 if args.quick else 10
    print("starting a local kernel ...", file=sys.stderr, flush=True)
    systems = [Ours()]
    peer_note = None
    try:
        if args.no_peer:
            peer_note = "--no-peer"
        else:
            print(f"starting an {PEER} cluster (one engine) ...", file=sys.stderr, flush=True)
            peer, peer_note = start_peer()
            if peer is not None:
                systems.append(peer)
        print("measuring latency ...", file=sys.stderr, flush=True)
        latency = latency_rows(measure_latency(systems, args.runs, warmup))
        print("measuring push throughput ...", file=sys.stderr, flush=True)
        times, checks = measure_push(systems, array, args.repeat)
        push = push_rows(times, array.nbytes)
    finally:
        for system in systems:
            try:
                system.close()
            except Exception as e:  # noqa: BLE001 -- report, and still close the others
                print(f"closing {system.name} failed: {e}", file=sys.stderr)
    method = (f"local kernel vs {PEER} cluster of 1 engine on this machine; interleaved rounds; "
              f"wall time; {warmup} warm-up calls; latency over {args.runs} round trips; push "
              f"best of {args.repeat}; MB = 10**6 bytes")
    header = report_header(info, versions, method, command, load_at_start)
    print_report(header, latency, push, checks, array.nbytes, peer_note)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"header": header, "machine": info, "packages": versions,
                       "command": command, "peer_note": peer_note,
                       "latency": {f"{n} {op}": r for (n, op), r in latency.items()},
                       "push": push, "checks": checks, "bytes": array.nbytes}, f, indent=1)
    if not checks[OURS]:
        print(f"\n{OURS}: the pushed array did not arrive intact", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
