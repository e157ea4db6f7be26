"""What a reducer of the user's costs the pickling of every other type (the promise: nothing).

Times ``cloudpickle_ipy.core.dumps`` on every case of ``bench_corpus``, and on ``small_objects``
(where a cost per call would show), protocol 5, in these modes:

- ``none``: no reducer of the user's: the baseline;
- ``none again``: the same, in another process: the noise floor between processes;
- ``per call``: ``dumps(obj, reducers={Unrelated: reduce})``;
- ``registered``: after ``register(Unrelated, reduce)``;
- ``before``, with ``--before DIR``: the baseline on the checkout in DIR (e.g. the branch point).

``register`` cannot be undone, so every mode runs in a worker process of its own. Rounds are
interleaved: each round starts one worker per mode, in an order rotated by one per round; a worker
times every case (CPU time, collector off, quick calls repeated within the round, best kept). The
table shows each mode's best over the rounds and its ratio to ``none`` (above 1: slower).

Run:  python benchmarks/reducer_overhead.py [--quick] [--rounds 5] [--before DIR] [--only a,b]
A benchmark, not a test: it prints a table and checks nothing.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from functools import partial
from pathlib import Path

from bench_corpus import CASES, Case, Corpus, Point, _count
from bench_peers import PROTOCOL
from compare_picklers import _calls_per_round, _timed, git_revision, machine, report_header

HERE = Path(__file__).resolve().parent
MODES = ["none", "none again", "per call", "registered"]


class Unrelated:
    """The type the user's reducer is for: nothing in the corpus is one."""


def reduce_unrelated(obj):
    return Unrelated, ()


def build_small_objects(scale):
    """One dumps call per small object: an int, a short dict, an instance of an importable class."""
    n = _count(30_000, scale)
    objects = [[i, {"id": i, "name": "x"}, Point(i, 0.5, "p")][i % 3] for i in range(n)]
    return Corpus(objects, check=None)


ALL_CASES = CASES + [Case("small_objects", "data", None, build_small_objects)]


def worker(mode, scale, only):
    """Time every case in ``mode``; print {case: best seconds} and where the core came from."""
    import cloudpickle_ipy.core as core

    if mode == "registered":
        core.register(Unrelated, reduce_unrelated)
    reducers = {Unrelated: reduce_unrelated} if mode == "per call" else None
    times = {}
    for case in ALL_CASES:
        if only and case.name not in only:
            continue
        corpus = case.build(scale)
        if corpus.by_value_module is not None:
            core.register_pickle_by_value(corpus.by_value_module)
        try:
            run = partial(_dumps_all, core.dumps, corpus.objects, corpus.out_of_band, reducers)
            seconds, _ = _timed(run, keep=False)
            times[case.name] = min(_timed(run, keep=False)[0]
                                   for _ in range(_calls_per_round(seconds)))
        finally:
            if corpus.by_value_module is not None:
                core.unregister_pickle_by_value(corpus.by_value_module)
            if corpus.cleanup is not None:
                corpus.cleanup()
    print(json.dumps({"core": core.__file__, "times": times}))


def _dumps_all(dumps, objects, out_of_band, reducers):
    """Every mode calls alike; ``reducers`` is None but in mode "per call" (and in "before", whose
    dumps has no such keyword)."""
    if reducers is None:
        return [dumps(obj, protocol=PROTOCOL, buffer_callback=list().append if out_of_band else None)
                for obj in objects]
    return [dumps(obj, protocol=PROTOCOL, buffer_callback=list().append if out_of_band else None,
                  reducers=reducers) for obj in objects]


def run_worker(mode, scale, only, before):
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", mode, "--scale",
               str(scale), "--only", ",".join(only)]
    env = dict(os.environ)
    if mode == "before":
        env["PYTHONPATH"] = before
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.splitlines()[-1])
    expected = Path(before if mode == "before" else HERE.parent).resolve()
    if not Path(result["core"]).resolve().is_relative_to(expected):
        raise SystemExit(f"mode {mode!r} imported {result['core']}, not from {expected}")
    return result["times"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the corpus")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", help="a checkout to time as mode 'before'")
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    only = [name for name in args.only.split(",") if name]
    scale = args.scale if args.scale is not None else 0.1 if args.quick else 1.0
    if args.worker:
        return worker(args.worker, scale, only)
    modes = MODES + (["before"] if args.before else [])
    load_at_start = os.getloadavg()[0]
    best = {mode: {} for mode in modes}
    for round_number in range(args.rounds):
        shift = round_number % len(modes)
        for mode in modes[shift:] + modes[:shift]:
            for case, seconds in run_worker(mode, scale, only, args.before).items():
                best[mode][case] = min(seconds, best[mode].get(case, seconds))
    command = "python benchmarks/reducer_overhead.py " + " ".join(sys.argv[1:])
    method = (f"dumps of each case's objects, protocol {PROTOCOL}, best over {args.rounds} "
              f"interleaved rounds of one worker process per mode; CPU time, collector off")
    print("\n".join(report_header(machine(), {"cloudpickle_ipy": git_revision()}, method, command,
                                  load_at_start)))
    print()
    row = "{:<20}" + " {:>11}" * len(modes)
    print("dumps ms, and mode / none (above 1: slower than without any reducer of the user's)")
    print(row.format("case", *modes))
    cases = list(best["none"])
    for case in cases:
        print(row.format(case, *[f"{best[mode][case] * 1e3:.2f}" for mode in modes]))
    for case in cases:
        print(row.format(case, *[f"{best[mode][case] / best['none'][case]:.3f}" for mode in modes]))
    geomean = {mode: statistics.geometric_mean([best[mode][c] / best["none"][c] for c in cases])
               for mode in modes}
    print(row.format("geometric mean", *[f"{geomean[mode]:.3f}" for mode in modes]))


if __name__ == "__main__":
    main()
