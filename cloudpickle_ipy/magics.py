"""The magics: they parse their arguments, call the extension's state, and format what comes back.

:class:`PickleByValueMagics`: ``%pickle_by_value``. :class:`ShipMagics`: ``%%cloudpickle_ship``,
``%cloudpickle_push``, ``%cloudpickle_pull`` and ``%cloudpickle_target``, over the session's
:class:`~cloudpickle_ipy.ship.targets.Targets` and :func:`~cloudpickle_ipy.ship.cells.names_read`.
"""
import html
import importlib
import importlib.machinery
import os
import pickle
import sys

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from . import core
from .ship import RemoteError, ShipError
from .ship.cells import names_read
from .ship.channels.websocket import shown
from .watcher import shown_path


@magics_class
class PickleByValueMagics(Magics):
    def __init__(self, shell, state):
        super().__init__(shell)
        self.state = state

    @magic_arguments()
    @argument("-r", "--remove", action="store_true",
              help="Stop pickling these modules by value (the watcher leaves them alone for the "
                   "rest of the session).")
    @argument("modules", nargs="*",
              help="Module names; one not imported yet is imported first. A package covers its "
                   "submodules.")
    @line_magic
    def pickle_by_value(self, line):
        """Pickle modules by value, so that functions and classes from them travel with their code
        to workers that cannot import them (or have an older copy).

        %pickle_by_value mylib other      register (importing them first if needed)
        %pickle_by_value -r mylib         unregister
        %pickle_by_value                  list what is pickled by value, and why

        The extension's watcher also registers the modules you are editing (see
        %config CloudpickleIPy).
        """
        args = parse_argstring(self.pickle_by_value, line)
        if not args.modules:
            if args.remove:
                raise UsageError("%pickle_by_value -r: name the modules to unregister")
            return ByValueTable(self.state)
        if args.remove:
            registered = core.list_registry_pickle_by_value()
            for name in args.modules:
                if name not in registered:
                    raise UsageError(f"%pickle_by_value -r: {name} is not pickled by value")
            for name in args.modules:
                self.state.unregister(name)
                self.state.refused.add(name)
            return None
        for name in args.modules:  # all or nothing: check every name before registering one
            _check_can_travel_by_value(name)
        for name in args.modules:
            self.state.refused.discard(name)
            self.state.register(name, "registered with %pickle_by_value")
        self.state.before_pickling()  # the Dask clusters in use get them now, not at the next cell
        return None


def _check_can_travel_by_value(name):
    if name in sys.builtin_module_names:
        raise UsageError(f"%pickle_by_value: {name} is built into Python; it has no Python code "
                         "to send by value")
    try:
        module = importlib.import_module(name)
    except Exception as e:  # ImportError, or the module failed while importing
        raise UsageError(f"%pickle_by_value: cannot import {name}: "
                         f"{type(e).__name__}: {e}") from None
    path = getattr(module, "__file__", None) or ""
    if path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        raise UsageError(f"%pickle_by_value: {name} is a C extension ({os.path.basename(path)}); "
                         "its code cannot travel by value")


class ByValueTable:
    """The modules pickled by value, with their files and why: HTML in a notebook, text elsewhere."""

    def __init__(self, state):
        self.rows = []
        for name in sorted(core.list_registry_pickle_by_value()):
            module = sys.modules.get(name)
            path = getattr(module, "__file__", None) or "(no file)"
            why = state.reasons.get(name, "registered with register_pickle_by_value()")
            self.rows.append((name, shown_path(path), why))

    def __repr__(self):
        if not self.rows:
            return "No module is pickled by value."
        widths = [max(len(row[i]) for row in self.rows + [("module", "file", "why")])
                  for i in range(3)]
        lines = [("module", "file", "why")] + self.rows
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                         for row in lines)

    def _repr_html_(self):
        if not self.rows:
            return "<p>No module is pickled by value.</p>"
        cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                        for row in self.rows)
        return ("<table><thead><tr><th>module</th><th>file</th><th>why</th></tr></thead>"
                f"<tbody>{cells}</tbody></table>")


@magics_class
class ShipMagics(Magics):
    """Run cells on other kernels, and move names to and from them."""

    def __init__(self, shell, state):
        super().__init__(shell)
        self.state = state

    @magic_arguments()
    @argument("-r", "--remove", action="store_true", help="Remove the alias NAME.")
    @argument("--kernel-name", metavar="SPEC",
              help="With a server URL: the kernel spec of the kernel to start there.")
    @argument("--ssh", metavar="USER@HOST",
              help="With a connection file: the kernel runs on that host; reach it through SSH.")
    @argument("name", nargs="?", help="The alias to define (or remove).")
    @argument("spec", nargs="?", help="What it names: local, local:NAME, a server or kernel URL, "
                                      "a connection file, a kernel id, a variable holding a "
                                      "KernelManager or a Dask Client, or a Dask scheduler "
                                      "address tcp://HOST:PORT.")
    @line_magic
    def cloudpickle_target(self, line):
        """Name a target, or list the targets in use.

        %cloudpickle_target gpu /path/to/kernel-1234.json    gpu names that kernel from now on
        %cloudpickle_target lab https://host:8888/user/me/    a kernel started there (token: asked)
        %cloudpickle_target gpu kernel-1234.json --ssh me@gpu-box    a kernel on gpu-box, via SSH
        %cloudpickle_target -r gpu                            forget the alias gpu
        %cloudpickle_target                                   name, kernel, Python, alive

        A target is, in this order: a Dask cluster (a variable holding a distributed.Client, or a
        scheduler address tcp://HOST:PORT or dask://HOST:PORT, for which a Client is made and
        kept for the session); an alias; local or local:NAME (a kernel started on this
        interpreter for the session); a Jupyter Server, JupyterHub or kernel gateway URL (a
        kernel started there for the session, of the spec --kernel-name picks), or a kernel's
        URL (.../api/kernels/ID); a variable holding a KernelManager or KernelClient; a
        connection file, or a kernel id or file-name fragment in the Jupyter runtime folder.
        A URL's token comes from the URL, else JUPYTER_TOKEN, else a password prompt; it is never
        shown. A SPEC that names no kernel is refused when the alias is made. A Dask target is
        listed with its number of workers.
        """
        args = parse_argstring(self.cloudpickle_target, line)
        targets = self.state.targets
        if args.remove:
            if args.name is None or args.spec is not None or args.kernel_name or args.ssh:
                raise UsageError("%cloudpickle_target -r: give the alias to remove, alone")
            with _usage("%cloudpickle_target -r"):
                targets.unalias(args.name)
            return None
        if args.name is None:
            return TargetTable(targets.rows())
        if args.spec is None:
            raise UsageError("%cloudpickle_target: give NAME and SPEC to define an alias, -r NAME "
                             "to remove one, or nothing to list the targets")
        with _usage("%cloudpickle_target"):
            targets.alias(args.name, args.spec, self.shell.user_ns, kernel_name=args.kernel_name,
                          ssh=args.ssh)
        return None

    @magic_arguments()
    @argument("target", help="local, local:NAME, an alias, a server or kernel URL, a connection "
                             "file or kernel id, a variable holding a KernelManager, KernelClient "
                             "or Dask Client, or a Dask scheduler address tcp://HOST:PORT.")
    @argument("-o", "--output", metavar="NAME", help="Also store the result under NAME.")
    @argument("--push", metavar="A,B", default="", help="Push these names too.")
    @argument("--no-push", action="store_true",
              help="Push no name the cell reads (only those of --push).")
    @argument("--pull", metavar="X,Y", default="",
              help="Copy these names back from the target afterwards.")
    @argument("--local", action="store_true", help="Run the cell here first.")
    @argument("--timeout", type=float, metavar="S",
              help="Give the whole cell (pushes, the run, pulls) at most S seconds; a request "
                   "still queued behind other work then never runs, one running is interrupted.")
    @argument("--all", action="store_true",
              help="Dask targets: run the cell on every worker; the result is a dict keyed by "
                   "worker address.")
    @cell_magic
    def cloudpickle_ship(self, line, cell):
        """Run the cell on a target kernel; its last expression's value comes back.

        Every name the cell reads before assigning it, and that exists here, is pushed first
        (functions, lambdas and classes by value, data as data); modules pickled by value travel
        as source. Output appears as it is produced; an error raises here with the target's
        traceback. On a Dask cluster, the cell runs on one worker (the same one, with the names
        the earlier cells left there, while it lives), or with --all on every worker.
        """
        args = parse_argstring(self.cloudpickle_ship, line)
        magic = "%%cloudpickle_ship"
        ns = self.shell.user_ns
        pull = _names(args.pull, "--pull")
        if args.all and pull:
            raise UsageError(f"{magic}: --pull copies names from one worker; with --all, make the "
                             f"cell's last expression hold them (it comes back per worker)")
        for name in [args.output] if args.output else []:
            if not name.isidentifier():
                raise UsageError(f"{magic}: -o needs a name, not {name!r}")
        if args.local:  # an exception here stops the cell before anything is shipped
            self._run_here(cell)
        names = _names(args.push, "--push")
        missing = [name for name in names if name not in ns]
        if missing:
            raise UsageError(f"{magic}: --push: not defined here: {', '.join(missing)}")
        if not args.no_push:
            names += [name for name in self._cell_reads(cell) if name not in names]
        target = self._target(args.target, magic)
        if args.all and not hasattr(target, "run_all"):
            raise UsageError(f"{magic}: --all runs a cell on every worker of a Dask cluster; "
                             f"{args.target} is a kernel")
        self.state.before_pickling()  # register the edited modules first: their source travels
        options = {"everywhere": True} if args.all else {}
        try:
            value, pulled = target.cell(cell, push={name: ns[name] for name in names}, pull=pull,
                                        timeout=args.timeout, **options)
        except RemoteError as exc:
            raise RemoteCellError(shown(args.target), exc) from None
        except ShipError as exc:
            raise UsageError(f"{magic}: {_first_line(exc)}") from None
        except (TypeError, pickle.PicklingError) as exc:
            raise UsageError(f"{magic}: cannot push: {_first_line(exc)}") from None
        ns.update(pulled)
        if args.output:
            ns[args.output] = value
        return value

    @magic_arguments()
    @argument("target")
    @argument("names", nargs="+", help="Names defined here.")
    @line_magic
    def cloudpickle_push(self, line):
        """Copy names to a target: functions, lambdas and classes by value, data as data."""
        args = parse_argstring(self.cloudpickle_push, line)
        target = self._target(args.target, "%cloudpickle_push")
        missing = [name for name in args.names if name not in self.shell.user_ns]
        if missing:
            raise UsageError(f"%cloudpickle_push: not defined here: {', '.join(missing)}")
        self._push(target, args.names, "%cloudpickle_push")

    @magic_arguments()
    @argument("target")
    @argument("names", nargs="+", help="Names defined on the target.")
    @line_magic
    def cloudpickle_pull(self, line):
        """Copy names back from a target into this namespace."""
        args = parse_argstring(self.cloudpickle_pull, line)
        target = self._target(args.target, "%cloudpickle_pull")
        self.shell.user_ns.update(self._pull(target, args.names, "%cloudpickle_pull"))

    # -- delegation ----------------------------------------------------------------------------

    def _target(self, spec, magic):
        with _usage(magic):
            target = self.state.targets.get(spec, self.shell.user_ns)
        self.state.show_output_of(target)
        return target

    def _run_here(self, cell):
        """Run ``cell`` in the user namespace, its lines shown in tracebacks (not displayed)."""
        shell = self.shell
        source = shell.transform_cell(cell)
        filename = shell.compile.cache(source, shell.execution_count, raw_code=cell)
        exec(compile(source, filename, "exec"), shell.user_global_ns, shell.user_ns)

    def _cell_reads(self, cell):
        """The names the cell reads before assigning them that hold something of the user's
        here (not IPython's own In, Out, get_ipython...)."""
        ns, hidden = self.shell.user_ns, self.shell.user_ns_hidden
        try:
            read = names_read(cell)
        except SyntaxError:  # the target reports it, with its traceback
            return []
        return [name for name in read if name in ns and not name.startswith("__")
                and not (name in hidden and ns[name] is hidden[name])]

    def _push(self, target, names, magic):
        self.state.before_pickling()  # register the edited modules first: their source travels
        if not names:
            return
        ns = self.shell.user_ns
        with _usage(magic, "cannot push: "):
            target.push({name: ns[name] for name in names})

    def _pull(self, target, names, magic):
        with _usage(magic):
            values = target.pull(*names)
        return dict(zip(names, [values] if len(names) == 1 else values))


class RemoteCellError(RemoteError):
    """The shipped cell raised on the target; IPython shows the target's traceback alone."""

    def __init__(self, target, error):
        super().__init__(error.ename, error.evalue, error.remote_traceback)
        self.target = target

    def _render_traceback_(self):
        lines = (self.remote_traceback or f"{self.ename}: {self.evalue}").rstrip("\n").split("\n")
        if lines[0].startswith("Traceback"):
            lines[0] = f"Traceback on the target {self.target} (most recent call last):"
        return lines


class _usage:
    """Turn a shipping failure into one UsageError line: ``%magic: what went wrong``."""

    def __init__(self, magic, context=""):
        self.prefix = f"{magic}: {context}"

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if isinstance(exc, RemoteError):
            raise UsageError(self.prefix + f"{exc.ename}: {exc.evalue}") from None
        if isinstance(exc, (ShipError, TypeError, pickle.PicklingError)):
            raise UsageError(self.prefix + _first_line(exc)) from None
        return False


def _first_line(exc):
    return str(exc).partition("\n")[0]


def _names(text, option):
    names = [name.strip() for name in text.split(",") if name.strip()]
    bad = [name for name in names if not name.isidentifier()]
    if bad:
        raise UsageError(f"%%cloudpickle_ship: {option}: not names: {', '.join(bad)}")
    return names


class TargetTable:
    """The targets in use: name, kernel, Python, alive."""

    def __init__(self, rows):
        self.rows = [(row.name, row.kernel, row.python, {True: "alive", False: "dead",
                                                         None: "not connected"}[row.alive])
                     for row in rows]

    def __repr__(self):
        if not self.rows:
            return "No target in use."
        lines = [("name", "kernel", "python", "state")] + self.rows
        widths = [max(len(row[i]) for row in lines) for i in range(4)]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                         for row in lines)
