"""Round trips through a fresh Python process.

A load in the pickling process can succeed only because the original object is still in memory, so
every round-trip test loads its payload in a new interpreter (with plain ``pickle.loads``) and brings
back a plain-data result.
"""
import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
import types
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]  # the checkout: the package sits at its top level

# Runs in the fresh process: load the payload with the standard pickle module, then evaluate the
# check (an expression, or statements that set ``result``) with the loaded object bound to ``obj``.
_LOADER = r"""
import pickle, sys
with open(sys.argv[1], "rb") as f:
    payload, buffers = pickle.load(f)
obj = pickle.loads(payload, buffers=buffers)
namespace = {"obj": obj, "pickle": pickle, "sys": sys}
check = sys.argv[2]
try:
    code = compile(check, "<check>", "eval")
except SyntaxError:
    exec(compile(check, "<check>", "exec"), namespace)
    result = namespace["result"]
else:
    result = eval(code, namespace)
with open(sys.argv[3], "wb") as f:
    pickle.dump(result, f, protocol=2)
"""


class FreshProcessError(AssertionError):
    """The fresh process failed; ``stderr`` holds what it printed."""

    def __init__(self, returncode, stderr):
        super().__init__(f"fresh process exited with {returncode}:\n{stderr}")
        self.returncode = returncode
        self.stderr = stderr


def load_fresh(payload, check="obj", *, buffers=None, sys_path=(), python=None, env=None,
               timeout=120):
    """Load ``payload`` in a new interpreter, run ``check`` there and return its (plain) result.

    ``sys_path`` entries are importable there (nothing else from the tests is); ``python`` picks
    another interpreter, which then gets this checkout's top level on its path.
    """
    with tempfile.TemporaryDirectory() as tmp:
        inbox, outbox = Path(tmp, "in.pkl"), Path(tmp, "out.pkl")
        with open(inbox, "wb") as f:
            pickle.dump((payload, [bytes(b) for b in buffers or ()]), f, protocol=2)
        paths = list(map(str, sys_path))
        if python is not None:
            paths.append(str(CHECKOUT))
        run_env = dict(os.environ if env is None else env)
        run_env.pop("PYTHONPATH", None)
        if paths:
            run_env["PYTHONPATH"] = os.pathsep.join(paths)
        proc = subprocess.run(
            [python or sys.executable, "-c", _LOADER, str(inbox), check, str(outbox)],
            cwd=tmp, env=run_env, capture_output=True, text=True, timeout=timeout,
        )
        if proc.returncode != 0:
            raise FreshProcessError(proc.returncode, proc.stderr)
        with open(outbox, "rb") as f:
            return pickle.load(f)


def define(source, module="__main__"):
    """Execute ``source`` as if it were the body of module ``module`` and return its namespace.

    With the default name, what it defines looks exactly like code typed into a script, a shell or
    a notebook: ``__module__ == "__main__"``.
    """
    namespace = {"__name__": module, "__builtins__": __builtins__}
    exec(compile(textwrap.dedent(source), f"<{module}>", "exec"), namespace)
    return types.SimpleNamespace(**{k: v for k, v in namespace.items() if k != "__builtins__"})


def run_script(source, *args, python=None, env=None, cwd=None, timeout=120):
    """Run ``source`` as a script (``__main__``) in a new interpreter and return its stdout bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp, "script.py")
        script.write_text(textwrap.dedent(source))
        run_env = dict(os.environ if env is None else env)
        if python is not None:
            run_env["PYTHONPATH"] = os.pathsep.join(
                [str(CHECKOUT)] + [p for p in run_env.get("PYTHONPATH", "").split(os.pathsep) if p])
        proc = subprocess.run(
            [python or sys.executable, str(script), *map(str, args)],
            cwd=cwd or tmp, env=run_env, capture_output=True, timeout=timeout,
        )
        if proc.returncode != 0:
            raise FreshProcessError(proc.returncode, proc.stderr.decode(errors="replace"))
        return proc.stdout


def pyenv_interpreters():
    """Map "3.X" to an interpreter for every CPython 3.9-3.13 that pyenv (or PATH) provides."""
    found = {}
    roots = []
    try:
        roots.append(Path(subprocess.run(["pyenv", "root"], capture_output=True, text=True,
                                         check=True).stdout.strip()) / "versions")
    except (OSError, subprocess.CalledProcessError):
        pass
    roots.append(Path.home() / ".pyenv" / "versions")
    for root in roots:
        for exe in sorted(root.glob("3.*/bin/python3")):
            minor = ".".join(exe.parent.parent.name.split(".")[:2])
            if minor in {"3.9", "3.10", "3.11", "3.12", "3.13"}:
                found.setdefault(minor, exe)
    for minor in ("3.9", "3.10", "3.11", "3.12", "3.13"):
        if minor not in found:
            for directory in os.environ.get("PATH", "").split(os.pathsep):
                exe = Path(directory, f"python{minor}")
                if exe.is_file():
                    found[minor] = exe
                    break
    return found
