"""A real terminal IPython in a subprocess, fed cells at its simple prompt."""
import subprocess
import sys


def terminal_ipython(cells, cwd):
    """Run ``cells`` (a cell magic's cell ends with two empty lines at a simple prompt) in a new
    terminal IPython working in ``cwd``; return ``(stdout, stderr)``, each with its carriage
    returns as written (text mode would turn them into newlines)."""
    done = subprocess.run(
        [sys.executable, "-m", "IPython", "--simple-prompt", "--no-banner", "--colors=NoColor",
         "--HistoryManager.enabled=False"], input="\n\n\n".join([*cells, "exit"]).encode() + b"\n",
        capture_output=True, timeout=120, cwd=cwd)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, out + err
    return out, err
