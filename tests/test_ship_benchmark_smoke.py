"""The shipping benchmark still runs (it is not a test: its timings are never asserted).

``--quick``: a 1 MiB array and a few round trips. Without ipyparallel (the test venv has none) it
measures ours alone and says why; with it, the cluster is part of the run.
"""
import importlib.util
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ship_latency.py"


def test_ship_benchmark_runs_and_prints_its_table():
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    rows = {tuple(line.split()[:2]) for line in lines if line.strip()}
    assert ("cloudpickle_ipy", 'run("1') in rows and ("cloudpickle_ipy", "call(lambda") in rows, \
        done.stdout
    push = [line for line in lines if line.startswith("cloudpickle_ipy ") and "MB/s" not in line
            and line.split()[-1] == "ok"]
    assert push, done.stdout  # the push row, its array checked on the target
    assert "FAIL" not in done.stdout and "command: python" in done.stdout, done.stdout
    goals = lines[lines.index("goals:") + 1:]
    for kind in ("push", "pull"):  # met or not (a 1 MiB array says nothing), but always judged
        assert any(f"{kind} median at least 70% of the raw limit's (" in g for g in goals), goals
    if importlib.util.find_spec("ipyparallel") is None:
        assert "ipyparallel: not measured: ipyparallel is not installed" in done.stdout, done.stdout
