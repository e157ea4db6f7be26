"""The Dask benchmark still runs (it is not a test: its timings are never asserted).

``--quick``: a scheduler and two workers, a few rounds of each measurement; every edit must have
reached every worker.
"""
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "dask_overhead.py"


def test_dask_benchmark_runs_and_prints_its_table():
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    ratios = {tuple(line.split()[:4]) for line in lines if line.startswith("  ")}
    for row in [("map", "ours", "/", "plain"), ("edit", "ours", "/", "upload_file"),
                ("cell", "ours", "/", "plain")]:
        assert row in ratios, done.stdout
    assert "every worker ran the new code after each edit: yes" in done.stdout, done.stdout
    assert "command: python" in done.stdout, done.stdout
