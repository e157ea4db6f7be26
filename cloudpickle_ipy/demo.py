"""Quick-start demo: ``notebooks/quickstart.ipynb``, run for real in a Jupyter kernel.

``python -m cloudpickle_ipy.demo [NOTEBOOK]`` executes the quick-start notebook with nbclient in a
fresh kernel on this interpreter, as Jupyter would, and prints each cell's source and outputs as it
runs: the extension is loaded, a package written into a temporary folder is registered by value,
cells run on a ``local`` target kernel (with the functions, classes, data and package source they
need), the package is edited and shipped again, and an error on the target shows its traceback.

The notebook is not installed with the package: it is found in the checkout the package was
installed from (``pip install -e '.[jupyter]'``), or given as an argument. Exit status 0 when every
cell ran as intended (cells tagged ``raises-exception`` are expected to raise), 1 otherwise.
"""
import re
import sys
import tempfile
from pathlib import Path

NEEDS = "nbclient, nbformat, ipykernel and jupyter_client"
INSTALL = "pip install -e '.[jupyter]'"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def find_notebook():
    """``notebooks/quickstart.ipynb`` of the checkout this package was installed from."""
    import cloudpickle_ipy

    repo = Path(cloudpickle_ipy.__file__).resolve().parents[1]  # <repo>/cloudpickle_ipy
    return repo / "notebooks" / "quickstart.ipynb"


def _show(cell, number):
    """A cell's source and outputs, as text: ``In [n]:``, then stdout, stderr, results, errors."""
    lines = [f"In [{number}]:"]
    lines += ["    " + line for line in cell.source.splitlines()]
    for output in cell.get("outputs", []):
        kind = output.output_type
        if kind == "stream":
            lines += [f"  [{output.name}] {line}" for line in output.text.splitlines()]
        elif kind in ("execute_result", "display_data"):
            text = output.get("data", {}).get("text/plain", "").splitlines()
            head = f"Out[{output.execution_count}]:" if kind == "execute_result" else "  [display]"
            lines += [f"{head} {text[0]}"] if len(text) == 1 else [head] + ["    " + t for t in text]
        elif kind == "error":
            lines += [f"  [error] {_ANSI.sub('', line)}"
                      for entry in output.traceback for line in entry.splitlines()]
    return "\n".join(lines) + "\n"


def run(path, timeout=120, out=sys.stdout):
    """Execute the notebook at ``path``, printing cell by cell; return the exit status."""
    try:
        import nbclient
        import nbformat
        from nbclient.exceptions import CellExecutionError
    except ImportError as exc:
        print(f"cloudpickle_ipy.demo needs {NEEDS} ({exc}): {INSTALL}", file=sys.stderr)
        return 1
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:  # what is printed is what this run produces, not the stored outputs
        if cell.cell_type == "code":
            cell.outputs = []
    print(f"Running {path} in a fresh kernel ({sys.executable})\n", file=out, flush=True)

    shown = [0]  # the markdown cells before a code cell are shown by their headings

    def on_cell_executed(cell, cell_index, execute_reply):
        for before in nb.cells[shown[0]:cell_index]:
            if before.cell_type == "markdown":
                print("".join(f"== {line.lstrip('#').strip()} ==\n"
                              for line in before.source.splitlines() if line.startswith("#")),
                      end="", file=out)
        shown[0] = cell_index + 1
        print(_show(cell, execute_reply["content"].get("execution_count")), file=out, flush=True)

    client = nbclient.NotebookClient(
        nb, timeout=timeout, kernel_name="python3", record_timing=False,
        resources={"metadata": {"path": str(path.parent)}}, on_cell_executed=on_cell_executed)
    client.kernel_manager_class = _this_interpreter()
    # The kernel's own log (warnings about its transport and the like) goes to a file, shown
    # only if something fails; what the cells print comes through the notebook's outputs.
    with tempfile.TemporaryFile() as log:
        try:
            client.execute(stderr=log)  # in the notebook's folder (resources)
        except CellExecutionError as exc:
            print(f"\nA cell of {path.name} failed:\n{_ANSI.sub('', str(exc))}", file=out)
            log.seek(0)
            kernel_log = log.read().decode(errors="replace").strip()
            if kernel_log:
                print(f"\nThe kernel's log:\n{kernel_log[-4000:]}", file=out)
            return 1
    print(f"Done: every cell of {path.name} ran as intended.", file=out)
    return 0


def _this_interpreter():
    """A KernelManager class whose ``python3`` kernel is this interpreter (not a user-level
    kernel spec that may point at another Python)."""
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

    class ThisInterpreter(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f",
                                    "{connection_file}"],
                              display_name="Python 3", language="python")

    class Manager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs["kernel_spec_manager"] = ThisInterpreter()
            super().__init__(**kwargs)

    return Manager


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    path = Path(argv[0]) if argv else find_notebook()
    if not path.is_file():
        print(f"cloudpickle_ipy.demo: no notebook at {path}: the quick start runs "
              f"notebooks/quickstart.ipynb from a checkout of the repository (install it with "
              f"{INSTALL} from the checkout), or give a notebook's path", file=sys.stderr)
        return 1
    return run(path.resolve())


if __name__ == "__main__":
    sys.exit(main())
