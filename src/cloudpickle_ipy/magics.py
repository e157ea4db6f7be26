"""The magics: they parse their arguments, call the extension's state, and format what comes back."""
import html
import importlib
import importlib.machinery
import os
import sys

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from . import core


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
            self.rows.append((name, _shown_path(path), why))

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


def _shown_path(path):
    """Paths under the working directory relative to it (./mylib/__init__.py), others as they are."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else os.path.join(".", relative)
