"""benchmarks/reducer_overhead.py still runs (it is not a test: its timings are never asserted).

A tenth-size corpus, one round, two cases; every mode must print a row.
"""
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reducer_overhead.py"


def test_reducer_benchmark_runs_and_prints_its_table():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--rounds", "1", "--only", "ints,small_objects"],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stdout.splitlines() if line.startswith("case "))
    assert header.split()[1:] == ["none", "none", "again", "per", "call", "registered"]
    rows = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    assert rows.count("ints") == 2 and rows.count("small_objects") == 2, done.stdout
    assert "geometric" in rows, done.stdout
