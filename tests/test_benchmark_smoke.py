"""The benchmark script still runs (it is not a test: its timings are never asserted).

Runs a tenth-size corpus, one round, two cases, with only the picklers every test environment has,
so it needs neither cloudpickle nor dill.
"""
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_picklers.py"


def test_benchmark_runs_and_prints_its_table():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--repeat", "1", "--only", "lambdas,ints",
         "--picklers", "cloudpickle_ipy,pickle"],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    rows = {tuple(line.split()[:2]) for line in done.stdout.splitlines() if line.strip()}
    for case in ("lambdas", "ints"):
        for pickler in ("cloudpickle_ipy", "pickle"):
            assert (case, pickler) in rows, done.stdout
    lambdas_by_pickle = next(line for line in done.stdout.splitlines()
                             if line.startswith("lambdas") and line.split()[1] == "pickle")
    assert "n/a: cannot pickle" in lambdas_by_pickle, done.stdout  # pickle cannot do lambdas
    assert "FAIL" not in done.stdout, done.stdout
