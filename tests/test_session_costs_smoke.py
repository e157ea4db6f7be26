"""The session-costs benchmark still runs (it is not a test: its timings are never asserted).

``--quick``: 20 and 200 modules, a few calls each. What it prints must hold for what it measured:
one line announced the modules registered at once, and nothing was re-sent when nothing changed.
"""
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "session_costs.py"


def test_session_costs_benchmark_runs_and_prints_its_tables():
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    firsts = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert firsts.count("20") == firsts.count("200") == 2, out  # a row in each table
    assert "1 for 200" in out and "nothing re-sent when nothing changed: yes" in out, out
    assert "command: python" in out and "per request" in out and "per cell" in out, out
