"""What a session pays per cell and per request as it grows to thousands of modules (issue 9).

For each size N (default 100, 1,000 and 10,000), in a fresh process of its own:

- N modules ``m0`` ... in ``./pkgs`` under the working directory (a watched folder), all imported, and
  one package ``bigpkg`` of N submodules elsewhere (imported, its submodules not), so that
  ``sys.modules`` holds N more modules than the interpreter, IPython and numpy bring;
- **per cell**: the extension's check before a cell (``pre_run_cell``) with nothing changed, once
  the watcher has registered the N modules; next to it, on the same modules, what IPython's
  ``%autoreload 2`` does around each cell (its check of every module, then its post-execute hook).
  Rounds interleaved (one call of each per round);
- **per request**: collecting the module sources a target lacks before a request
  (``SourceTracker.changed(core.list_registry_pickle_by_value())``, what ``KernelTarget`` calls)
  with nothing changed since the last request: with the N modules registered, and with only
  ``bigpkg`` registered. The first request (which reads and ships everything) is shown too;
- how many lines the extension printed when the N modules were registered at once.

Wall time of each call (``time.perf_counter_ns``), garbage collector off; median and 99th
percentile. A measurement stops after ``--repeat`` calls or ``--budget`` seconds, whichever comes
first (at least one call), so that a slow implementation is still measured, by fewer calls.

Run after ``pip install -e '.[bench]'``:  python benchmarks/session_costs.py [--sizes 100,1000,10000]
``--quick`` (sizes 20 and 200, few calls) is for the smoke test. A benchmark, not a test: it prints
a table and checks nothing but that each phase ran.
"""
import argparse
import contextlib
import gc
import importlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compare_picklers import git_revision, machine, report_header
from watcher_overhead import autoreload_cell

OURS = "cloudpickle_ipy"


def _version(distribution):
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def timed_calls(calls, repeat, budget):
    """``{name: [ns per call]}`` for ``calls`` (``{name: fn}``), one call of each per round, until
    ``repeat`` rounds or ``budget`` seconds."""
    times = {name: [] for name in calls}
    gc.collect()
    gc.disable()
    try:
        deadline = time.monotonic() + budget
        for _ in range(repeat):
            for name, call in calls.items():
                start = time.perf_counter_ns()
                call()
                times[name].append(time.perf_counter_ns() - start)
            if time.monotonic() > deadline:
                break
    finally:
        gc.enable()
    return times


def summary(ns):
    ordered = sorted(ns)
    return {"median_us": statistics.median(ordered) / 1e3,
            "p99_us": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1e3,
            "calls": len(ordered)}


def write_modules(root, size):
    pkgs = root / "notebook" / "pkgs"
    pkgs.mkdir(parents=True)
    for i in range(size):
        (pkgs / f"m{i}.py").write_text(f"def f(x):\n    return x + {i}\n")
    big = root / "lib" / "bigpkg"
    big.mkdir(parents=True)
    (big / "__init__.py").write_text("VERSION = 1\n")
    for i in range(size):
        (big / f"s{i}.py").write_text(f"def g(x):\n    return x * {i}\n")
    return pkgs, root / "lib"


def measure(size, repeat, budget):
    """Everything for one size, in this process (a child of :func:`main`)."""
    from IPython.core.interactiveshell import InteractiveShell

    from cloudpickle_ipy import core
    from cloudpickle_ipy.extension import state_of
    from cloudpickle_ipy.ship.sources import SourceTracker

    with contextlib.suppress(ImportError):
        import numpy  # noqa: F401  (a big installed package, as in a real notebook)
    result = {"size": size}
    with tempfile.TemporaryDirectory() as tmp:
        pkgs, lib = write_modules(Path(tmp), size)
        os.chdir(pkgs.parent)
        sys.path[:0] = [str(pkgs), str(lib)]
        for i in range(size):
            importlib.import_module(f"m{i}")
        importlib.import_module("bigpkg")  # its submodules are not imported
        result["sys_modules"] = len(sys.modules)

        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", OURS)
        state = state_of(shell)
        printed = io.StringIO()
        start = time.perf_counter_ns()
        with contextlib.redirect_stdout(printed):
            state.pre_run_cell()
        result["first_check_ms"] = (time.perf_counter_ns() - start) / 1e6
        result["lines"] = len(printed.getvalue().splitlines())
        registry = core.list_registry_pickle_by_value()
        result["registered"] = len(registry & {f"m{i}" for i in range(size)})

        times = timed_calls({"watcher": state.pre_run_cell, "autoreload": autoreload_cell(shell, 2)},
                            repeat, budget)
        result["cell"] = {name: summary(ns) for name, ns in times.items()}

        trackers = {}
        for case, registered in (("modules", None), ("package", {"bigpkg"})):
            tracker = trackers[case] = SourceTracker()
            if registered is None:
                def request(tracker=tracker):
                    return tracker.changed(core.list_registry_pickle_by_value())
            else:
                def request(tracker=tracker, registered=registered):
                    return tracker.changed(set(registered))
            start = time.perf_counter_ns()
            first = request()
            result[f"first_request_{case}_ms"] = (time.perf_counter_ns() - start) / 1e6
            result[f"shipped_{case}"] = len(first)
            tracker.sent(first)
            trackers[case] = request
        times = timed_calls(trackers, repeat, budget)
        result["request"] = {name: summary(ns) for name, ns in times.items()}
        result["resent"] = sum(len(call()) for call in trackers.values())  # nothing changed: 0
        os.chdir("/")
    return result


def run_child(size, repeat, budget):
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", str(size),
                           "--repeat", str(repeat), "--budget", str(budget)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"size {size} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def print_report(header, results):
    print("\n".join(header))
    print()
    print("per cell: the extension's check before a cell, nothing changed (us, median / p99); "
          "%autoreload 2 around a cell on the same modules; ratio = autoreload / ours")
    row = "{:>8} {:>12} {:>22} {:>24} {:>8} {:>16}"
    print(row.format("modules", "sys.modules", "ours us", "autoreload 2 us", "ratio",
                     "lines printed"))
    for r in results:
        ours, peer = r["cell"]["watcher"], r["cell"]["autoreload"]
        print(row.format(f"{r['size']:,}", f"{r['sys_modules']:,}",
                         f"{ours['median_us']:.1f} / {ours['p99_us']:.1f}",
                         f"{peer['median_us']:.0f} / {peer['p99_us']:.0f}",
                         f"{peer['median_us'] / ours['median_us']:.0f}x",
                         f"{r['lines']} for {r['registered']:,}"))
    print()
    print("per request: collecting module sources, nothing changed since the last request "
          "(us, median / p99; calls); first request (reads and ships everything), ms")
    row = "{:>8} {:>30} {:>30} {:>14} {:>14}"
    print(row.format("modules", "N modules registered", "1 package of N registered",
                     "first, N", "first, 1 pkg"))
    for r in results:
        cells = [f"{q['median_us']:.1f} / {q['p99_us']:.1f} ({q['calls']})"
                 for q in (r["request"]["modules"], r["request"]["package"])]
        print(row.format(f"{r['size']:,}", *cells, f"{r['first_request_modules_ms']:.0f}",
                         f"{r['first_request_package_ms']:.0f}"))
    print()
    print("first check (classifies and registers the N modules), ms: "
          + ", ".join(f"{r['size']:,}: {r['first_check_ms']:.0f}" for r in results))
    resent = [r["size"] for r in results if r["resent"]]
    print("nothing re-sent when nothing changed: " + ("yes" if not resent else f"NO at {resent}"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="comma-separated module counts")
    parser.add_argument("--repeat", type=int, default=500, help="calls per measurement at most")
    parser.add_argument("--budget", type=float, default=20.0,
                        help="seconds per measurement at most (at least one call)")
    parser.add_argument("--quick", action="store_true", help="sizes 20,200 and few calls")
    parser.add_argument("--json", metavar="PATH", help="also save the results as JSON")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(args.child, args.repeat, args.budget)))
        return 0
    if args.quick:
        args.sizes, args.repeat, args.budget = "20,200", 20, 2.0
    sizes = [int(s) for s in args.sizes.split(",")]
    info = machine()
    command = " ".join(["python", os.path.relpath(sys.argv[0])] + sys.argv[1:])
    load_at_start = os.getloadavg()[0]
    revision = git_revision()
    versions = {OURS: (_version(OURS) or "?") + (f" (git {revision})" if revision else ""),
                "ipython": _version("ipython")}
    results = [run_child(size, args.repeat, args.budget) for size in sizes]
    method = (f"one fresh process per size; wall time per call, garbage collector off; up to "
              f"{args.repeat} calls or {args.budget:g} s per measurement; cell checks interleaved "
              f"with autoreload's")
    print_report(report_header(info, versions, method, command, load_at_start), results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "packages": versions, "command": command,
                       "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
