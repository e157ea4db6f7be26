"""What the extension's module watcher costs per cell, next to IPython's autoreload on the same modules.

Imports 1000+ modules (the standard library, what IPython and numpy bring, and generated packages in
a temporary ``site-packages``), writes a few user packages to a temporary working directory, loads
the extension in an ``InteractiveShell`` and times, call by call (median of many, garbage collector
off):

- the watcher's check (``state.pre_run_cell()``): nothing changed, no user modules; nothing changed
  with the user packages registered; one module imported since the last check;
- autoreload's per-cell work in ``%autoreload 2`` (its ``pre_run_cell`` check of every module, plus
  its ``post_execute`` hook) and in ``%autoreload 1`` with the user packages ``%aimport``-ed.

Run:  python benchmarks/watcher_overhead.py [--generated 400] [--repeat 2000]
A benchmark, not a test: it prints a table and checks nothing.
"""
import argparse
import contextlib
import gc
import importlib
import inspect
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from IPython.core.interactiveshell import InteractiveShell
from IPython.extensions.autoreload import AutoreloadMagics

from cloudpickle_ipy.extension import state_of

# Standard-library modules that act when imported (a browser, printing), or need a display.
SKIP = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "__main__", "pydoc_data"}


def import_stdlib():
    names = getattr(sys, "stdlib_module_names", None)
    if names is None:  # Python 3.9: the top-level modules of the standard library's folder
        import pkgutil
        import sysconfig
        names = {m.name for m in pkgutil.iter_modules([sysconfig.get_paths()["stdlib"]])}
    for name in sorted(set(names) - SKIP):
        with contextlib.suppress(Exception), contextlib.redirect_stdout(io.StringIO()):
            importlib.import_module(name)


def generate(root, packages, per_package=4):
    """``packages`` installed-looking packages (with submodules) in ``root/site-packages``."""
    site = root / "site-packages"
    for p in range(packages // per_package + 1):
        package = site / f"genpkg{p}"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(
            "".join(f"from . import m{i}\n" for i in range(per_package - 1)))
        for i in range(per_package - 1):
            (package / f"m{i}.py").write_text(f"def f(x):\n    return x + {i}\n")
    sys.path.append(str(site))
    for p in range(packages // per_package + 1):
        importlib.import_module(f"genpkg{p}")


def user_packages(cwd, count):
    for k in range(count):
        (cwd / f"mylib{k}").mkdir()
        (cwd / f"mylib{k}" / "__init__.py").write_text("from . import sub\n")
        (cwd / f"mylib{k}" / "sub.py").write_text("def g(x):\n    return x\n")
    for k in range(count):
        importlib.import_module(f"mylib{k}")


def per_call_us(call, repeat):
    """Median and 99th percentile of ``call()``, in microseconds."""
    gc.collect()
    gc.disable()
    try:
        times = []
        for _ in range(repeat):
            start = time.perf_counter_ns()
            call()
            times.append(time.perf_counter_ns() - start)
    finally:
        gc.enable()
    times.sort()
    return statistics.median(times) / 1000, times[int(len(times) * 0.99)] / 1000


def autoreload_cell(shell, mode, aimport=()):
    """What autoreload runs around each cell, in ``%autoreload mode``."""
    magics = AutoreloadMagics(shell)
    magics._reloader.enabled = True
    magics._reloader.check_all = mode == 2
    for name in aimport:
        magics._reloader.mark_module_reloadable(name)
    takes_info = len(inspect.signature(magics.pre_run_cell).parameters) == 1

    def cell():
        if takes_info:
            magics.pre_run_cell(None)
        else:
            magics.pre_run_cell()
        magics.post_execute_hook()

    return cell


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=400, help="generated installed modules")
    parser.add_argument("--user", type=int, default=5, help="user packages (2 modules each)")
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()

    home = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cwd = tmp / "notebook"
        cwd.mkdir()
        os.chdir(cwd)
        sys.path.insert(0, str(cwd))
        import_stdlib()
        with contextlib.suppress(ImportError):
            import numpy  # noqa: F401  (a big installed package, as in a real notebook)
        generate(tmp, args.generated)

        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "cloudpickle_ipy")
        state = state_of(shell)
        rows = []

        start = time.perf_counter_ns()
        state.pre_run_cell()
        first = (time.perf_counter_ns() - start) / 1000
        loaded = len(sys.modules)
        quiet = per_call_us(state.pre_run_cell, args.repeat)
        ar2 = per_call_us(autoreload_cell(shell, 2), max(args.repeat // 10, 50))
        rows.append((f"nothing changed, {loaded} modules", quiet, ar2, "%autoreload 2"))

        user_packages(cwd, args.user)
        with contextlib.redirect_stdout(io.StringIO()):
            state.pre_run_cell()  # registers them (one line each)
        candidates = len(state.watcher._candidates)
        with_user = per_call_us(state.pre_run_cell, args.repeat)
        ar2 = per_call_us(autoreload_cell(shell, 2), max(args.repeat // 10, 50))
        rows.append((f"+{2 * args.user} user modules registered ({candidates} candidate files followed)",
                     with_user, ar2, "%autoreload 2"))
        ar1 = per_call_us(autoreload_cell(shell, 1, [f"mylib{k}" for k in range(args.user)]),
                          args.repeat)
        rows.append(("same", with_user, ar1, "%autoreload 1, user ones %aimport-ed"))

        names = iter(range(10 ** 6))

        def import_one_then_check():
            sys.modules[f"_bench_new_{next(names)}"] = type(sys)("fresh")
            state.pre_run_cell()

        new = per_call_us(import_one_then_check, min(args.repeat, 500))
        rows.append(("one module imported since the last check", new, None, ""))
        os.chdir(home)  # before the folder goes

    print(f"Python {sys.version.split()[0]}, IPython {__import__('IPython').__version__}; "
          f"{loaded} modules in sys.modules; first check (classifies all): {first:.0f} us\n")
    print("| case | watcher us (median / p99) | autoreload us (median / p99) | ratio "
          "| autoreload mode |")
    print("|---|---|---|---|---|")
    for case, ours, theirs, mode in rows:
        peer = f"{theirs[0]:.0f} / {theirs[1]:.0f}" if theirs else "n/a"
        ratio = f"{theirs[0] / ours[0]:.0f}x" if theirs else ""
        print(f"| {case} | {ours[0]:.1f} / {ours[1]:.1f} | {peer} | {ratio} | {mode} |")
    print("\nratio: autoreload's per-cell time / the watcher's (above 1, the watcher is cheaper)")


if __name__ == "__main__":
    main()
