"""The watcher: before every cell and every shipment, register by value the modules being edited, and
warn when a module pickled by value changed on disk after it was imported (the code in memory, not the
file, is what travels).

Cost is what matters here, as this runs before every cell with thousands of modules imported: each
entry of ``sys.modules`` is classified once (by name and identity); later checks classify what was
appended to it since, forget what was removed, and re-check a slice of ``_SWEEP_PER_CHECK`` entries
for one swapped in place; and a check looks only at the candidates
(modules with a Python source file outside the standard library and non-editable site-packages) that
are new or whose file the system reports changed (:mod:`.filechanges`): with nothing changed, a check
costs the same with ten thousand of them as with ten. Many modules registered at once are announced
in one line.
"""
import ast
import fnmatch
import importlib.machinery
import importlib.metadata
import json
import operator
import os
import site
import sys
import sysconfig
import types
from urllib.parse import unquote, urlparse

from . import core
from .core.registry import INTERACTIVE_MODULES
from .filechanges import FileChanges
from .ondisk import edited_since_import, signature

_SWEEP_PER_CHECK = 64  # entries of sys.modules re-checked per check for one swapped in place
_LINES_AT_MOST = 5  # more modules registered (or stale) at once than this: one line for them all
_SOURCE_SUFFIXES = tuple(importlib.machinery.SOURCE_SUFFIXES)  # so no C extension, no sourceless .pyc
_NOT_FROM_FILES = (importlib.machinery.BuiltinImporter, importlib.machinery.FrozenImporter)
_MISSING = object()
_STALE = ("the old code in memory is what gets pickled; run %autoreload (after %load_ext "
          "autoreload) or")


class _Candidate:
    """A module with a source file of its own: it may be, or become, one being edited."""

    __slots__ = ("name", "module", "spec", "path", "prefixes", "top", "location", "loaded", "seen",
                 "watched")

    def __init__(self, name, module, path):
        self.name = name
        self.module = module
        self.spec = module.__dict__.get("__spec__")
        self.path = path
        parts = name.split(".")
        self.prefixes = tuple(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        self.top = parts[0]
        location = path
        if os.path.basename(path).startswith("__init__."):
            location = os.path.dirname(location)
        for _ in range(len(parts) - 1):
            location = os.path.dirname(location)
        self.location = location  # the top-level package's folder (or the file of a lone module)
        # ``loaded``: the file's signature when the code in memory was read from it (a pyc header
        # tuple when the watcher first sees a module edited since import, so it never matches);
        # ``seen``: the last signature already accounted for (loaded, warned about, or left to
        # autoreload); ``watched``: why it counts as edited by location, or None.
        self.loaded = self.seen = signature(path)
        if edited_since_import(module, self.loaded):
            self.loaded = self.seen = ("edited before the watcher first saw it",)
        self.watched = None


class Watcher:
    """Registers the modules being edited (see the module docstring); ``check()`` never raises for
    a module that is odd, deleted, renamed or broken on disk."""

    def __init__(self, state):
        self.state = state
        self._never = _never_prefixes()
        self._known = {}  # name -> module object, for every entry of sys.modules classified
        self._candidates = {}  # name -> _Candidate
        self._modules_mark = (None, None)  # (len, last name) of sys.modules at the last walk
        self._last_module = None  # and the module under that last name
        self._sweep_names, self._sweep_at = [], 0  # the names being re-checked, a slice per check
        self._folders_key = None
        self._folders = ()  # watched folders, as prefixes ending with a separator
        self._editable = None  # (folder prefixes, exact files) of editable installs, found lazily
        self._handled_tops = set()  # registered by this watcher once: never again (even if removed)
        self._changes = FileChanges()  # the candidates' files
        self._by_path = {}  # a candidate's file -> the names of the candidates with that file
        self._todo = {}  # names of the candidates to look at in this check (new, or file changed)
        self._registered_now = []  # (top, reason, candidate) registered in this check
        self._stale_now = []  # names found stale in this check

    # --- per check ------------------------------------------------------------------------------

    def check(self):
        """Register what is being edited; warn once per change about stale by-value code."""
        if self._update_folders():
            self._todo.update(dict.fromkeys(self._candidates))
        modules = sys.modules
        mark = (len(modules), next(reversed(modules), None))  # imports append to sys.modules
        last_module = modules.get(mark[1])
        if not self._known:
            self._walk(modules)
        elif mark != self._modules_mark or last_module is not self._last_module:
            self._walk_new(modules)
        self._sweep(modules)
        self._modules_mark, self._last_module = mark, last_module
        changed, unwatched = self._changes.take()
        for path in changed | unwatched:
            self._todo.update(dict.fromkeys(self._by_path.get(path, ())))
        if not self._todo:
            return
        todo, self._todo = self._todo, {}
        registry = core.list_registry_pickle_by_value()
        for name in todo:
            candidate = self._candidates.get(name)
            if candidate is None:
                continue
            module = modules.get(name)
            if module is not candidate.module:  # removed or replaced since the last walk
                self._known[name] = module
                self._classify(name, module)
                self._todo.pop(name, None)
                candidate = self._candidates.get(name)
                if candidate is None:
                    continue
            self._check_candidate(candidate, registry)
        self._report()

    def _check_candidate(self, candidate, registry):
        now = signature(candidate.path)
        spec = candidate.module.__dict__.get("__spec__")
        if spec is not candidate.spec:  # reloaded (importlib.reload gives it a new spec)
            candidate.spec = spec
            candidate.loaded = candidate.seen = now
        registered = candidate.top in registry or any(p in registry for p in candidate.prefixes)
        if not registered:
            reason = self._why_register(candidate, now)
            if reason is None:
                return
            if not self._register(candidate, reason):
                return
            registry.add(candidate.top)
        if now is None or now == candidate.seen:
            return  # unchanged, or deleted/renamed: the code in memory is all there is anyway
        candidate.seen = now
        if now != candidate.loaded and not self._autoreload_will_reload(candidate.name):
            self._stale_now.append(candidate.name)

    def _report(self):
        """Say what this check registered and found stale: a line each, or one for many."""
        registered, self._registered_now = self._registered_now, []
        stale, self._stale_now = self._stale_now, []
        if len(registered) > _LINES_AT_MOST:
            self.state.say(_registered_line(registered))
        else:
            for top, reason, _ in registered:
                self.state.say(f"pickling {top} by value ({reason})")
        if len(stale) > _LINES_AT_MOST:
            self.state.say(f"{len(stale):,} modules changed on disk after they were imported "
                           f"({_some(stale)}): {_STALE} importlib.reload() them")
        else:
            for name in stale:
                self.state.say(f"{name} changed on disk after it was imported: {_STALE} "
                               f"importlib.reload({name})")

    def _why_register(self, candidate, now):
        """Why ``candidate``'s top-level package should now be pickled by value, or None."""
        if candidate.watched is not None:
            reason = candidate.watched
        elif now is not None and now != candidate.loaded:
            reason = f"{candidate.name} changed on disk since it was imported"
        else:
            return None
        if candidate.top in self._handled_tops or self._left_alone(candidate):
            return None
        return reason

    def _left_alone(self, candidate):
        refused, patterns = self.state.refused, self.state.exclude
        return any(name in refused or any(fnmatch.fnmatchcase(name, p) for p in patterns)
                   for name in candidate.prefixes)

    def _register(self, candidate, reason):
        top = candidate.top
        if not isinstance(sys.modules.get(top), types.ModuleType):
            return False  # its top-level package was removed from sys.modules: nothing to register
        self._handled_tops.add(top)
        try:
            self.state.register(top, reason)
        except Exception as e:  # noqa: BLE001 (an odd module must not break the cell)
            self.state.say(f"cannot pickle {top} by value: {type(e).__name__}: {e}")
            return False
        self._registered_now.append((top, reason, candidate))
        return True

    def _autoreload_will_reload(self, name):
        """Whether IPython's autoreload is on for ``name``: %autoreload 2/3 (all modules but the
        ``%aimport -name`` ones) or 1 (only the ``%aimport name`` ones)."""
        shell = getattr(self.state, "shell", None)
        try:
            magics = shell.magics_manager.registry.get("AutoreloadMagics")
        except AttributeError:
            return False
        reloader = getattr(magics, "_reloader", None)
        if not getattr(reloader, "enabled", False) or name in getattr(reloader, "skip_modules", ()):
            return False
        return bool(getattr(reloader, "check_all", False)) or name in getattr(reloader, "modules", ())

    # --- which modules, which folders -----------------------------------------------------------

    def _walk_new(self, modules):
        """Classify the entries added to sys.modules since the last walk: they sit at its end."""
        known = self._known
        names = list(modules)
        start = len(names)
        while start and known.get(names[start - 1], _MISSING) is not modules.get(names[start - 1]):
            start -= 1
        for name in names[start:]:  # in import order, so that messages come in that order
            module = known[name] = modules.get(name)
            self._classify(name, module)

    def _walk(self, modules):
        """Classify every entry of sys.modules."""
        for name, module in list(modules.items()):
            self._known[name] = module
            self._classify(name, module)

    def _sweep(self, modules):
        """Forget the entries removed from sys.modules; re-check the next slice of it for one
        swapped in place (seen within ``len(sys.modules) / _SWEEP_PER_CHECK`` checks)."""
        known = self._known
        if len(known) > len(modules):
            for name in known.keys() - modules.keys():
                del known[name]
                self._drop(name)
        if self._sweep_at >= len(self._sweep_names):
            self._sweep_names, self._sweep_at = list(modules), 0
        names = self._sweep_names[self._sweep_at:self._sweep_at + _SWEEP_PER_CHECK]
        self._sweep_at += _SWEEP_PER_CHECK
        if not any(map(operator.is_not, map(modules.get, names), map(known.get, names))):
            return  # the usual case, found without a Python-level loop
        for name in names:
            module = modules.get(name, _MISSING)
            if module is not _MISSING and known.get(name, _MISSING) is not module:
                known[name] = module
                self._classify(name, module)

    def _classify(self, name, module):
        self._drop(name)
        path = None
        try:
            path = self._source_file(name, module)
            if path is None:
                return
            self._changes.follow(path)  # before the stat in _Candidate: no change falls between
            candidate = _Candidate(name, module, path)
            candidate.watched = self._watch_reason(candidate)
        except Exception:  # noqa: BLE001 (whatever odd object sits in sys.modules: never ours)
            if path is not None and path not in self._by_path:
                self._changes.forget(path)
            return
        self._candidates[name] = candidate
        self._by_path.setdefault(path, set()).add(name)
        self._todo[name] = None

    def _drop(self, name):
        """Forget candidate ``name``, if it is one; stop following its file if no other has it."""
        candidate = self._candidates.pop(name, None)
        if candidate is None:
            return
        names = self._by_path.get(candidate.path, set())
        names.discard(name)
        if not names:
            self._by_path.pop(candidate.path, None)
            self._changes.forget(candidate.path)

    def _source_file(self, name, module):
        """The module's Python source file, if it is one the watcher may consider at all."""
        if (not isinstance(module, types.ModuleType) or name in INTERACTIVE_MODULES
                or name.partition(".")[0] == "cloudpickle_ipy"):
            return None
        namespace = module.__dict__  # not getattr: a module __getattr__ must not run
        path = namespace.get("__file__")
        if not isinstance(path, str) or not path.endswith(_SOURCE_SUFFIXES):
            return None
        if namespace.get("__loader__") in _NOT_FROM_FILES:
            return None
        if not os.path.isabs(path):  # from a relative sys.path entry
            path = os.path.abspath(path)
        return None if path.startswith(self._never) else path

    def _update_folders(self):
        """Follow changes of the working directory and of the settings; whether there were any
        (every candidate is then looked at again)."""
        state = self.state
        try:
            cwd = os.getcwd()
        except OSError:  # the working directory was deleted: keep the last folders
            return False
        key = (cwd, tuple(state.watched_folders), state.watch_editable_installs, tuple(state.exclude))
        if key == self._folders_key:
            return False
        self._folders_key = key
        self._folders = _prefixes(os.path.join(cwd, os.path.expanduser(folder))
                                  for folder in state.watched_folders)
        for candidate in self._candidates.values():
            candidate.watched = self._watch_reason(candidate)
        return True

    def _watch_reason(self, candidate):
        path = candidate.path
        if path.startswith(self._folders):
            return f"edited in {shown_path(candidate.location)}"
        if not self.state.watch_editable_installs:
            return None
        if self._editable is None:
            self._editable = editable_source_folders()
        folders, files = self._editable
        if path.startswith(folders) or path in files:
            return f"edited in {shown_path(candidate.location)}, an editable install"
        return None


def editable_source_folders():
    """(folder prefixes, exact files) where the sources of editable installs live.

    ``pip install -e`` marks a distribution editable in its ``direct_url.json``; setuptools then
    puts the source folder in a ``.pth`` file (src layout) or maps each top-level name to its path
    in an ``__editable___*_finder.py`` (flat layout), both listed in the distribution's RECORD. The
    project folder named by ``direct_url.json`` is the fallback when neither is found.
    """
    folders, files = [], set()
    for dist in importlib.metadata.distributions():
        try:
            info = json.loads(dist.read_text("direct_url.json") or "{}")
            if not info.get("dir_info", {}).get("editable"):
                continue
            found = []
            for record in dist.files or ():
                if record.suffix == ".pth":
                    found += _pth_folders(dist.locate_file(record))
                elif record.suffix == ".py" and record.name.startswith("__editable__"):
                    found += _finder_paths(dist.locate_file(record))
            if not found:
                url = urlparse(info.get("url", ""))
                if url.scheme == "file":
                    found.append(unquote(url.path))
        except (OSError, ValueError, SyntaxError, AttributeError):
            continue
        for path in found:
            folders.append(path)
            files.update(path + suffix for suffix in _SOURCE_SUFFIXES)  # a mapped lone module
    return _prefixes(folders), frozenset(files)


def _pth_folders(pth):
    with open(pth, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    return [os.path.join(os.path.dirname(str(pth)), line) for line in lines
            if line and not line.startswith(("#", "import ", "import\t"))]


def _finder_paths(finder):
    """The paths in setuptools' editable finder: ``MAPPING = {name: path}`` and ``NAMESPACES``."""
    with open(finder, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    paths = []
    for node in tree.body:
        if isinstance(node, ast.AnnAssign):
            target = node.target
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        else:
            continue
        if getattr(target, "id", None) not in ("MAPPING", "NAMESPACES") or node.value is None:
            continue
        for value in ast.literal_eval(node.value).values():
            paths += [value] if isinstance(value, str) else list(value)
    return paths


def _never_prefixes():
    """Folders whose modules are never registered: the standard library and site-packages."""
    folders = [sysconfig.get_paths().get(key) for key in ("stdlib", "platstdlib", "purelib",
                                                          "platlib")]
    folders += getattr(site, "getsitepackages", list)()  # missing in old virtualenvs' site.py
    if hasattr(site, "getusersitepackages"):
        folders.append(site.getusersitepackages())
    folders += [p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages")]
    return _prefixes(folder for folder in folders if folder)


def _prefixes(folders):
    """Absolute folders, as they are and symlinks resolved, each ending with a separator."""
    prefixes = []
    for folder in folders:
        for form in (os.path.abspath(folder), os.path.realpath(folder)):
            prefix = os.path.join(form, "")
            if prefix not in prefixes:
                prefixes.append(prefix)
    return tuple(prefixes)


def _registered_line(registered):
    """One line for many modules registered at once: how many, why, the first few names."""
    reasons = {reason for _, reason, _ in registered}
    if len(reasons) == 1:
        why = reasons.pop()
    else:
        located = [candidate.location for _, _, candidate in registered if candidate.watched]
        parts = [f"edited in {shown_path(os.path.commonpath(located))}"] if located else []
        if len(located) < len(registered):
            parts.append("changed on disk since imported")
        why = " or ".join(parts)
    return (f"pickling {len(registered):,} modules by value ({why}): "
            f"{_some([top for top, _, _ in registered])} (see %pickle_by_value)")


def _some(names):
    """The first few of ``names``, then an ellipsis."""
    return ", ".join(names[:_LINES_AT_MOST]) + (", ..." if len(names) > _LINES_AT_MOST else "")


def shown_path(path):
    """``./mylib`` for a path under the working directory, the absolute path otherwise (cheap: it
    names each of thousands of modules registered at once)."""
    try:
        cwd = os.getcwd()
    except OSError:  # the working directory was deleted
        return path
    full = os.path.normpath(os.path.join(cwd, path))
    if full == cwd:
        return os.curdir
    inside = os.path.join(cwd, "")
    return os.path.join(os.curdir, full[len(inside):]) if full.startswith(inside) else path
