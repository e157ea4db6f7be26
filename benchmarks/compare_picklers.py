"""Side-by-side benchmark: cloudpickle_ipy.core against cloudpickle, dill and the standard pickle.

For each case of ``bench_corpus`` and each pickler: the time of ``dumps`` and of ``loads`` (best of
``--repeat`` rounds) and the payload size, then ratios against each peer and their geometric means
over the function-heavy and the data-heavy cases, and the goals of issue 13 checked on the run.

How it measures, and why:
- Rounds are interleaved: each round times every pickler, in an order rotated by one per round,
  so that machine noise (frequency changes, neighbours) hits every pickler alike. Within a round, a
  call quicker than 0.5 s is repeated (up to 20 times, best kept), and the repeats are interleaved
  too (ours, cloudpickle, dill, pickle, ours, ...): a burst of noise lasting a few calls falls on
  all of them, so that the ratios of one round (printed for the data cases) compare like with like.
- One process; the corpus is built once per case and shared by all picklers.
- Protocol 5 for every pickler, so formats compare like with like.
- The clock is the process's CPU time: every timed call is single-threaded, so on an idle machine
  it equals wall time, and on a busy one (tests running next to it) it is far steadier, since time
  spent waiting for a core is not counted (page faults are: they are system time).
- The garbage collector is collected before and disabled during each timed call, as ``timeit``
  does: otherwise a collection's cost depends on whatever else the process holds. The time to free
  the loaded objects is not counted.
- After timing, each pickler's payload is loaded and checked (in this process), so that a pickler
  cannot win by producing garbage; a failed check shows ``FAIL`` and leaves the ratios.

Run after ``pip install -e '.[bench]'``:  python benchmarks/compare_picklers.py [--quick]
A pickler that is not installed, or cannot pickle a case (pickle and ``__main__`` code), shows
``n/a``. Exits with 1 if cloudpickle_ipy fails or cannot do a case.
"""
import argparse
import gc
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from functools import partial

from bench_corpus import CASES
from bench_peers import NAMES, PROTOCOL, distribution_version, load_peer

OURS = "cloudpickle_ipy"
CASE_NAMES = [case.name for case in CASES]

# The goals of issue 13, checked on every run and printed (never enforced: the exit status says only
# whether cloudpickle_ipy did every case). Ratios are peer/ours (above 1: ours faster) except for
# the data goal, which is ours/pickle time (below 1: ours faster).
GEOMEAN_GOALS = {"dumps": 2.5, "loads": 2.0}  # function-heavy cases against cloudpickle
EACH_LOADS_VS_CLOUDPICKLE = 1.0  # every function-heavy case's loads
# Every data case's dumps, by the run's ratio (best against best, as every ratio here); the ratio of
# each round (whose calls of both picklers are interleaved) and their median are printed with it,
# to show how far noise moves it.
DATA_DUMPS_VS_PICKLE = 1.05
GROUP_TITLES = {"function": "function-heavy", "data": "data-heavy"}


class Result:
    """One pickler on one case: the time of every round, the payload size, the check's verdict."""

    def __init__(self):
        self.dumps = []
        self.loads = []
        self.size = None
        self.out_of_band = 0
        self.status = None  # "ok", "n/a" or "FAIL" once known
        self.note = ""

    @property
    def running(self):
        return self.status is None

    def give_up(self, status, note):
        self.status, self.note = status, note

    def to_json(self):
        ok = self.status == "ok"
        return {"status": self.status, "note": self.note,
                "dumps_s": min(self.dumps) if ok else None,
                "loads_s": min(self.loads) if ok else None,
                "size": self.size if ok else None, "out_of_band": self.out_of_band,
                "dumps_rounds_s": self.dumps, "loads_rounds_s": self.loads}


def _timed(function, keep=True):
    """Run ``function`` with the collector off; return (CPU seconds, its result, or None unless
    ``keep``: then the result is freed outside the timed call)."""
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        result = function()
        return time.process_time() - start, result if keep else None
    finally:
        gc.enable()


def _short(error):
    text = f"{type(error).__name__}: {error}".splitlines()[0]
    return text if len(text) <= 90 else text[:87] + "..."


def run_case(case, peers, repeat, scale):
    """Time every pickler on ``case``, interleaved; return {pickler name: Result}."""
    corpus = case.build(scale)
    results = {peer.name: Result() for peer in peers}
    active = []
    for peer in peers:
        if peer.missing:
            results[peer.name].give_up("n/a", peer.missing)
        elif corpus.by_value_module is not None and not peer.has_registry:
            results[peer.name].give_up("n/a", "no register_pickle_by_value (would go by reference)")
        else:
            active.append(peer)
    registered = []
    try:
        if corpus.by_value_module is not None:
            for peer in active:
                peer.register(corpus.by_value_module)
                registered.append(peer)
        payloads = _time_rounds(corpus, active, results, repeat)
        for peer in active:
            if results[peer.name].running:
                _check(corpus, peer, payloads[peer.name], results[peer.name])
    finally:
        for peer in registered:
            peer.unregister(corpus.by_value_module)
        if corpus.cleanup is not None:
            corpus.cleanup()
    return results


def _time_rounds(corpus, active, results, repeat):
    """The interleaved rounds; returns each pickler's last (payloads, buffers)."""
    last = {}
    calls = {}  # (pickler, "dumps" or "loads"): calls per round, set by the first call
    for round_number in range(repeat):
        shift = round_number % len(active) if active else 0
        order = active[shift:] + active[:shift]
        best = {}  # (pickler, "dumps" or "loads"): the round's best time so far
        for call in range(MAX_CALLS):
            ran = False
            for peer in order:
                if results[peer.name].running:
                    ran |= _time_call(corpus, peer, results[peer.name], call, calls, best, last)
            if not ran:
                break
        for peer in order:
            result = results[peer.name]
            if result.running:
                result.dumps.append(best[peer.name, "dumps"])
                result.loads.append(best[peer.name, "loads"])
    return last


def _time_call(corpus, peer, result, call, calls, best, last):
    """The ``call``-th dumps and loads of ``peer`` in a round, each if its count for the round is
    not reached (the first call of a case sets the count); whether either ran."""
    ran = False
    if call < calls.get((peer.name, "dumps"), 1):
        dumps = partial(_dumps_all, peer, corpus.objects, corpus.out_of_band)
        try:
            seconds, (payloads, buffers) = _timed(dumps)
        except Exception as e:  # noqa: BLE001 -- whatever it is, the pickler cannot do this case
            result.give_up("n/a", f"cannot pickle: {_short(e)}")
            return False
        calls.setdefault((peer.name, "dumps"), _calls_per_round(seconds))
        best[peer.name, "dumps"] = min(seconds, best.get((peer.name, "dumps"), math.inf))
        result.size = sum(len(p) for p in payloads)
        if buffers is not None:
            result.out_of_band = sum(b.raw().nbytes for bs in buffers for b in bs)
        last[peer.name] = payloads, buffers
        ran = True
    if call < calls.get((peer.name, "loads"), 1):
        loads = partial(_loads_all, peer, *last[peer.name])
        try:
            seconds, _ = _timed(loads, keep=False)
        except Exception as e:  # noqa: BLE001
            result.give_up("FAIL", f"loads raised {_short(e)}")
            return False
        calls.setdefault((peer.name, "loads"), _calls_per_round(seconds))
        best[peer.name, "loads"] = min(seconds, best.get((peer.name, "loads"), math.inf))
        ran = True
    return ran


# A call faster than this is repeated within each round (up to MAX_CALLS times, best kept): quick
# calls get more samples, against noise, at little cost, while slow ones (dill) are not repeated.
CALL_TARGET_S = 0.5
MAX_CALLS = 20


def _calls_per_round(seconds):
    return max(1, min(MAX_CALLS, int(CALL_TARGET_S / max(seconds, 1e-9))))


def _dumps_all(peer, objects, out_of_band):
    """One payload per object; with ``out_of_band``, also each payload's buffers."""
    if not out_of_band:
        return [peer.dumps(obj) for obj in objects], None
    buffers = [[] for _ in objects]
    return [peer.dumps(obj, bs.append) for obj, bs in zip(objects, buffers)], buffers


def _loads_all(peer, payloads, buffers):
    return [peer.loads(p, bs) for p, bs in zip(payloads, buffers or itertools.repeat(None))]


def _check(corpus, peer, last, result):
    payloads, buffers = last
    try:
        corpus.check(partial(_loads_all, peer, payloads, buffers))
    except Exception as e:  # noqa: BLE001 -- a wrong load, whatever its form, is a failure
        result.give_up("FAIL", f"check failed: {_short(e)}")
    else:
        result.give_up("ok", "")


# Ratios --------------------------------------------------------------------------------------------

def ratios(case_results, peer_name):
    """peer/ours for dumps, loads and size (above 1: ours better), or None if either is not ok."""
    ours, peer = case_results.get(OURS), case_results.get(peer_name)
    if ours is None or peer is None or ours.status != "ok" or peer.status != "ok":
        return None
    return {"dumps": min(peer.dumps) / min(ours.dumps), "loads": min(peer.loads) / min(ours.loads),
            "size": peer.size / ours.size}


def geometric_means(all_results, group, peer_name):
    """Geometric means of the ratios over the cases of ``group`` both picklers did; (means, n, of)."""
    names = [case.name for case in CASES if case.group == group and case.name in all_results]
    found = [r for r in (ratios(all_results[name], peer_name) for name in names) if r is not None]
    if not found:
        return None, 0, len(names)
    means = {key: math.exp(sum(math.log(r[key]) for r in found) / len(found))
             for key in ("dumps", "loads", "size")}
    return means, len(found), len(names)


# Report --------------------------------------------------------------------------------------------

def _ms(seconds):
    ms = seconds * 1e3
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def _bytes(n):
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _ratio(value):
    return "n/a" if value is None else f"{value:.0f}" if value >= 100 else f"{value:.2f}"


def machine():
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable,
            "os": platform.platform(), "python": f"{platform.python_implementation()} "
                                                 f"{platform.python_version()}"}


def report_header(info, versions, method, command, load_at_start):
    """The lines above a benchmark's table: what it ran on, with what, how, and how busy."""
    header = [
        (f"machine: {info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), "
         f"{info['os']}"),
        f"python: {info['python']}",
        "packages: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in versions.items()),
        f"method: {method}",
        f"command: {command}",
        f"load average: {load_at_start:.2f} at start, {os.getloadavg()[0]:.2f} at end",
    ]
    if load_at_start >= info["usable_cores"] / 2:
        header.append("warning: other processes kept the machine busy; timings are noisier than "
                      "on an idle machine")
    return header


def git_revision():
    """The checkout's commit, with ``+modified`` if the working tree differs, or None."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, text=True,
                                capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               text=True, capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+modified" if dirty else "")


def packages(peers):
    versions = {peer.name: peer.version for peer in peers if peer.name != "pickle"}
    versions["numpy"] = distribution_version("numpy")
    return versions


def print_report(header, all_results, peers, scale):
    print("\n".join(header))
    print()
    print("cases:")
    for case in CASES:
        if case.name in all_results:
            print(f"  {case.name:<20} {case.group:<9} {case.describe(scale)}")
    print()
    row = "{:<20} {:<16} {:>10} {:>10} {:>11}  {}"
    print(row.format("case", "pickler", "dumps ms", "loads ms", "size", "check"))
    for name, case_results in all_results.items():
        for peer in peers:
            result = case_results[peer.name]
            if result.status == "ok":
                check = "ok" + (f" ({_bytes(result.out_of_band)} out of band)"
                                if result.out_of_band else "")
                print(row.format(name, peer.name, _ms(min(result.dumps)), _ms(min(result.loads)),
                                 _bytes(result.size), check))
            else:
                print(row.format(name, peer.name, "n/a", "n/a", "n/a",
                                 f"{result.status}: {result.note}"))
    others = [peer.name for peer in peers if peer.name != OURS]
    if OURS not in [peer.name for peer in peers] or not others:
        return
    print()
    print(f"ratios, peer / {OURS} (above 1: {OURS} is faster, or its payload smaller):")
    top = "{:<20}" + " {:^23}" * len(others)
    print(top.format("", *[f"vs {other}" for other in others]))
    cells = "{:<20}" + " {:>7}{:>8}{:>8}" * len(others)
    print(cells.format("case", *["dumps", "loads", "size"] * len(others)))
    for name, case_results in all_results.items():
        values = []
        for other in others:
            r = ratios(case_results, other) or {}
            values += [_ratio(r.get("dumps")), _ratio(r.get("loads")), _ratio(r.get("size"))]
        print(cells.format(name, *values))
    print()
    print("geometric means of the ratios:")
    for group, title in GROUP_TITLES.items():
        for other in others:
            means, n, of = geometric_means(all_results, group, other)
            if of == 0:
                continue
            label = f"{title} vs {other}"
            if means is None:
                print(f"  {label:<32} n/a (no case both could do)")
                continue
            print(f"  {label:<32} dumps {means['dumps']:.2f}  loads {means['loads']:.2f}  "
                  f"size {means['size']:.2f}  ({n} of {of} cases)")
    _print_goal_checks(all_results)


def round_ratios(case_results, peer_name, key="dumps"):
    """ours/peer time of each round (below 1: ours faster), or None unless both did the case."""
    ours, peer = case_results.get(OURS), case_results.get(peer_name)
    if ours is None or peer is None or ours.status != "ok" or peer.status != "ok":
        return None
    return [a / b for a, b in zip(getattr(ours, key), getattr(peer, key))]


class Goal:
    """One goal of issue 13 on this run: what it asks, whether it holds, and the figures behind."""

    def __init__(self, name, asks, met, figures):
        self.name, self.asks, self.met, self.figures = name, asks, met, figures  # figures: lines

    def to_json(self):
        return {"goal": self.name, "asks": self.asks, "met": self.met, "figures": self.figures}


def goal_checks(all_results):
    """The goals of issue 13 that this run's cases allow checking, as :class:`Goal` objects."""
    goals = []
    groups = {case.name: case.group for case in CASES}
    loads = {name: r["loads"] for name, case_results in all_results.items()
             if groups[name] == "function"
             and (r := ratios(case_results, "cloudpickle")) is not None}
    if loads:
        worst = min(loads, key=loads.get)
        goals.append(Goal(
            "core loads", f"every function-heavy case loads at least as fast as cloudpickle "
            f"(cloudpickle / {OURS} >= {EACH_LOADS_VS_CLOUDPICKLE:.2f}); worst: {worst}",
            loads[worst] >= EACH_LOADS_VS_CLOUDPICKLE,
            [f"{name:<20} {value:.2f}" for name, value in loads.items()]))
    means, n, of = geometric_means(all_results, "function", "cloudpickle")
    if means is not None:
        goals.append(Goal(
            "core geomeans", "function-heavy geometric means against cloudpickle: "
            + ", ".join(f"{key} >= {target:.2f}" for key, target in GEOMEAN_GOALS.items()),
            all(means[key] >= target for key, target in GEOMEAN_GOALS.items()),
            [f"dumps {means['dumps']:.2f}, loads {means['loads']:.2f} ({n} of {of} cases)"]))
    data = {}
    for name, case_results in all_results.items():
        rounds = round_ratios(case_results, "pickle")
        if groups[name] == "data" and rounds:
            data[name] = 1 / ratios(case_results, "pickle")["dumps"], statistics.median(rounds), rounds
    if data:
        goals.append(Goal(
            "core data", f"every data case dumps in at most {DATA_DUMPS_VS_PICKLE:.2f}x pickle's "
            f"time ({OURS} / pickle, the run's best against best; then each round's)",
            all(best <= DATA_DUMPS_VS_PICKLE for best, _, _ in data.values()),
            [f"{name:<20} {best:.2f}, median round {median:.2f} (rounds: "
             + " ".join(f"{r:.2f}" for r in rounds) + ")"
             for name, (best, median, rounds) in data.items()]))
    return goals


def _print_goal_checks(all_results):
    goals = goal_checks(all_results)
    if not goals:
        return
    print()
    print("goals of issue 13, checked on this run:")
    for goal in goals:
        print(f"  {goal.name}: {'met' if goal.met else 'NOT MET'}: {goal.asks}")
        for line in goal.figures:
            print(f"    {line}")


def to_json(header, settings, all_results, peers):
    others = [peer.name for peer in peers if peer.name != OURS]
    means = {}
    for group in GROUP_TITLES:
        for other in others:
            values, n, of = geometric_means(all_results, group, other)
            if of:
                means[f"{group} vs {other}"] = {"ratios": values, "cases": n, "of": of}
    return {
        "header": header, **settings,
        "cases": {name: {"group": next(c.group for c in CASES if c.name == name),
                         "results": {p: r.to_json() for p, r in case_results.items()},
                         "ratios": {other: ratios(case_results, other) for other in others}}
                  for name, case_results in all_results.items()},
        "geometric_means": means,
        "goals": [goal.to_json() for goal in goal_checks(all_results)],
    }


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a corpus a tenth the size, for smoke tests (2 rounds unless --repeat)")
    parser.add_argument("--repeat", type=int, help="interleaved rounds, best kept (default 5)")
    parser.add_argument("--only", action="append", metavar="CASE[,CASE...]",
                        help=f"run only these cases, of: {', '.join(CASE_NAMES)}")
    parser.add_argument("--picklers", default=",".join(NAMES),
                        help=f"comma-separated, of: {', '.join(NAMES)} (default: all)")
    parser.add_argument("--json", metavar="PATH", help="also save the results as JSON")
    args = parser.parse_args(argv)
    args.only = [n for item in args.only for n in item.split(",") if n] if args.only else CASE_NAMES
    args.picklers = [n for n in args.picklers.split(",") if n]
    for value, known, what in ((args.only, CASE_NAMES, "case"), (args.picklers, NAMES, "pickler")):
        unknown = sorted(set(value) - set(known))
        if unknown:
            parser.error(f"unknown {what} {', '.join(unknown)}; choose from {', '.join(known)}")
    if args.repeat is None:
        args.repeat = 2 if args.quick else 5
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    scale = 0.1 if args.quick else 1.0
    peers = [load_peer(name) for name in args.picklers]
    info = machine()
    versions = packages(peers)
    if OURS in versions:
        revision = git_revision()
        versions[OURS] = f"{versions[OURS]} (git {revision})" if revision else versions[OURS]
    command = " ".join(["python", os.path.relpath(sys.argv[0])] + sys.argv[1:])
    load_at_start = os.getloadavg()[0]
    all_results = {}
    for case in CASES:
        if case.name in args.only:
            print(f"running {case.name} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            all_results[case.name] = run_case(case, peers, args.repeat, scale)
            print(f"  {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    method = (f"protocol {PROTOCOL} for every pickler; best of {args.repeat} interleaved rounds "
              f"(calls under {CALL_TARGET_S:g} s repeated up to {MAX_CALLS}x per round); "
              f"process CPU time; gc off while timing; corpus scale {scale:g}")
    header = report_header(info, versions, method, command, load_at_start)
    print_report(header, all_results, peers, scale)
    if args.json:
        settings = {"machine": info, "packages": versions, "protocol": PROTOCOL,
                    "repeat": args.repeat, "scale": scale, "command": command}
        with open(args.json, "w") as f:
            json.dump(to_json(header, settings, all_results, peers), f, indent=1)
    ours_failed = [name for name, r in all_results.items() if OURS in r and r[OURS].status != "ok"]
    if ours_failed:
        print(f"\n{OURS} did not pass: {', '.join(ours_failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
