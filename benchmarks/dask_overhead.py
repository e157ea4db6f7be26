"""Dask: what the module plugin and shipped cells cost, side by side with plain Dask (issue 11).

One cluster of real processes (a ``dask scheduler`` and ``--workers`` ``dask worker`` processes on
loopback, started as the tests start them: :class:`tests.dask.processes.Cluster`), three
measurements, each with its peer on the same cluster in the same run:

- **map**: wall time of ``client.gather(client.map(f, range(N)))`` per task (``--tasks`` small
  tasks). Ours: ``f`` from a module registered by value, which the workers and the scheduler import
  from the plugin's finder, and whose Dask token includes the shipped sources. Plain Dask: the same
  code in a module the workers and scheduler import from their ``PYTHONPATH``. The plugin is in
  place for both (what it adds to every task is the finder, first on ``sys.meta_path``).
- **edit**: a constant of the module changes on disk, until every worker (and the scheduler) has
  the new source. Ours: a reload here, then ``DaskTarget.sync()`` (the plugins replaced, every
  worker applying them before it returns). Peer: ``client.upload_file`` of a one-file module,
  Dask's own way (it waits for every worker and the scheduler too). After each, untimed, every
  worker is asked for the constant: both must give the new one.
- **cell**: round trip of a small cell, ours ``target.run("1 + 1")``, against
  ``client.submit(f, 1, pure=False).result()`` with ``f`` importable on the workers.

Rounds are interleaved (one of each system per round, the order alternating every round) so that
machine noise hits both alike; wall time (``time.perf_counter``), since the work happens in other
processes; warm-up rounds first. Medians (and p90, min) per system; ratios are ours / peer: above 1,
ours takes longer.

Run after ``pip install -e '.[test]'`` (which includes ``.[dask]``), from the checkout:
``python benchmarks/dask_overhead.py [--workers 4] [--tasks 1000] [--rounds 15] [--quick]``.
``--quick`` (2 workers, few tasks and rounds) is for the smoke test.
"""
import argparse
import importlib
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_peers import distribution_version
from compare_picklers import git_revision, machine, report_header

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the cluster of processes is the tests' (tests/dask/processes.py)

from distributed import Client  # noqa: E402

import cloudpickle_ipy  # noqa: E402
from tests.dask.processes import Cluster  # noqa: E402

GOAL_MAP_RATIO = 1.10
MODULE = '''
VALUE = {value}


def f(x):
    return x + VALUE
'''


class Bench:
    """The cluster, its client, our target and the three modules: ``bench_plain`` (on the
    processes' PYTHONPATH), ``bench_shipped`` (registered by value, this process's path only) and
    ``bench_uploaded`` (for ``upload_file``)."""

    def __init__(self, folder, workers):
        self.folder = Path(folder)
        plain, shipped = self.folder / "plain", self.folder / "shipped"
        for directory in (plain, shipped):
            directory.mkdir()
        (plain / "bench_plain.py").write_text(MODULE.format(value=1))
        self.shipped = shipped / "bench_shipped.py"
        self.shipped.write_text(MODULE.format(value=1))
        self.uploaded = self.folder / "bench_uploaded.py"
        self.uploaded.write_text(MODULE.format(value=1))
        self.cluster = Cluster(self.folder / "cluster", workers=workers, nthreads=1,
                               pythonpath=plain)
        try:
            self.client = Client(self.cluster.address, set_as_default=False, timeout=60)
            self.client.wait_for_workers(workers, timeout=120)
            sys.path[:0] = [str(plain), str(shipped)]
            self.plain = importlib.import_module("bench_plain")
            self.module = importlib.import_module("bench_shipped")
            cloudpickle_ipy.register_pickle_by_value(self.module)
            self.target = cloudpickle_ipy.connect(self.client, timeout=300)
            self.client.upload_file(str(self.uploaded))
        except BaseException:
            self.close()
            raise

    def close(self):
        for part in ("target", "client"):
            if hasattr(self, part):
                getattr(self, part).close()
        self.cluster.close()

    def on_every_worker(self, module):
        return set(self.client.run(lambda: __import__(module).VALUE).values())


# -- the measurements --------------------------------------------------------------------------------

def _interleaved(rounds, systems):
    """``{name: [seconds of each round]}``: each round times ``systems`` (``[(name, fn(round))]``),
    in an order that alternates every round."""
    times = {name: [] for name, _ in systems}
    for number in range(rounds):
        for name, fn in (systems if number % 2 == 0 else systems[::-1]):
            start = time.perf_counter()
            fn(number)
            times[name].append(time.perf_counter() - start)
    return times


def measure_map(bench, tasks, rounds):
    client = bench.client

    def mapper(f):
        def run(number):
            values = client.gather(client.map(f, range(number * tasks, (number + 1) * tasks)))
            assert values[-1] == (number + 1) * tasks  # f(x) = x + 1
        return run

    systems = [("ours", mapper(bench.module.f)), ("plain dask", mapper(bench.plain.f))]
    _interleaved(2, systems)  # warm-up, with other arguments than the timed rounds
    bench.client.cancel(list(bench.client.futures))
    timed = _interleaved(rounds, [(name, lambda n, fn=fn: fn(n + 2)) for name, fn in systems])
    return {name: [t / tasks for t in values] for name, values in timed.items()}


def measure_edit(bench, rounds):
    checks = []

    def ours(number):  # an edit as a notebook makes it: the file, then a reload here
        bench.shipped.write_text(MODULE.format(value=100 + number))
        importlib.reload(bench.module)
        bench.target.sync()

    def upload(number):
        bench.uploaded.write_text(MODULE.format(value=100 + number))
        bench.client.upload_file(str(bench.uploaded))

    times = {"ours": [], "upload_file": []}
    for number in range(rounds + 1):  # the first round warms up
        for name, fn, module in ([("ours", ours, "bench_shipped"),
                                  ("upload_file", upload, "bench_uploaded")][::(-1) ** number]):
            start = time.perf_counter()
            fn(number)
            elapsed = time.perf_counter() - start
            checks.append(bench.on_every_worker(module) == {100 + number})
            if number:
                times[name].append(elapsed)
    return times, all(checks)


def measure_cell(bench, runs):
    client, f = bench.client, bench.plain.f

    systems = [("ours", lambda n: bench.target.run("1 + 1")),
               ("plain dask", lambda n: client.submit(f, 1, pure=False).result())]
    _interleaved(5, systems)
    return _interleaved(runs, systems)


# -- the report ----------------------------------------------------------------------------------------

def _stats(values, scale):
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return statistics.median(values) * scale, p90 * scale, ordered[0] * scale


def print_report(header, results, workers, tasks, edit_checked):
    print("\n".join(header))
    print()
    sections = [
        ("map", f"client.map over {tasks} small tasks, per task (us)", 1e6, "plain dask"),
        ("edit", f"an edit reaching {workers} workers and the scheduler (ms)", 1e3, "upload_file"),
        ("cell", "round trip of a small cell (ms)", 1e3, "plain dask"),
    ]
    ratios = []
    for key, title, scale, peer in sections:
        print(f"{title}:")
        row = "  {:<12} {:>10} {:>10} {:>10} {:>7}"
        print(row.format("system", "median", "p90", "min", "rounds"))
        for name, values in results[key].items():
            median, p90, low = _stats(values, scale)
            print(row.format(name, f"{median:.1f}", f"{p90:.1f}", f"{low:.1f}", len(values)))
        ratio = statistics.median(results[key]["ours"]) / statistics.median(results[key][peer])
        ratios.append((key, peer, ratio))
        print()
    print("ratios of medians, ours / peer (above 1: ours takes longer):")
    for key, peer, ratio in ratios:
        print(f"  {key:<5} ours / {peer:<12} {ratio:6.2f}x")
    print(f"  every worker ran the new code after each edit: {'yes' if edit_checked else 'NO'}")
    map_ratio = ratios[0][2]
    print(f"goal: map within {GOAL_MAP_RATIO - 1:.0%} of plain Dask: "
          f"{'met' if map_ratio <= GOAL_MAP_RATIO else 'not met'} ({map_ratio:.2f}x)")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=1000, help="tasks per map")
    parser.add_argument("--rounds", type=int, default=15, help="rounds of map and of edits")
    parser.add_argument("--runs", type=int, default=200, help="round trips of a small cell")
    parser.add_argument("--quick", action="store_true", help="2 workers, few tasks and rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.workers, args.tasks, args.rounds, args.runs = 2, 100, 3, 10
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cloudpickle_ipy-dask-bench-") as folder:
        print(f"starting a scheduler and {args.workers} workers ...", file=sys.stderr, flush=True)
        bench = Bench(folder, args.workers)
        try:
            print("measuring map ...", file=sys.stderr, flush=True)
            results = {"map": measure_map(bench, args.tasks, args.rounds)}
            print("measuring edits ...", file=sys.stderr, flush=True)
            results["edit"], edit_checked = measure_edit(bench, args.rounds)
            print("measuring cells ...", file=sys.stderr, flush=True)
            results["cell"] = measure_cell(bench, args.runs)
        finally:
            bench.close()
    versions = {name: distribution_version(name) for name in ("distributed", "dask", "cloudpickle_ipy")}
    command = "python " + " ".join(shlex.quote(a) for a in [
        os.path.relpath(__file__), *(sys.argv[1:] if argv is None else argv)])
    method = ("wall time, rounds interleaved (order alternating), warm-up first; "
              f"revision {git_revision()}")
    print_report(report_header(machine(), versions, method, command, load), results, args.workers,
                 args.tasks, edit_checked)
    return 0 if edit_checked else 1


if __name__ == "__main__":
    sys.exit(main())
