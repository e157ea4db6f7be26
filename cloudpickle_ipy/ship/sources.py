"""The client's side of module sources: which sources of the modules registered by value a target
lacks, collected before every request at a cost that does not grow with the session.

The target serves them to ``import`` (:mod:`.modules`). :class:`SourceTracker` follows the files and
folders of what is registered (:mod:`cloudpickle_ipy.filechanges`), lists a folder again only when
an entry of it was created, deleted or renamed, and stats, reads and hashes a file only when it may
have changed: with nothing changed, a request costs the same whatever the size of ``sys.modules``
or the number of modules registered.

What runs there is what runs here: a registered module imported in this process whose file no
longer holds the code this process runs (edited, not reloaded: :mod:`cloudpickle_ipy.ondisk`) is
never shipped from its file. If the target already has the source of the code running here, it keeps
it; otherwise the request is refused with :class:`~cloudpickle_ipy.ship.ModuleChangedOnDisk`. A
source that is not a regular file (a FIFO, a device) or is too large
(:data:`cloudpickle_ipy.ondisk.MAX_SOURCE_BYTES`) is not shipped, said in one line on stderr once
per change.
"""
import hashlib
import os
import sys
import types

from .. import ondisk
from ..filechanges import FileChanges
from . import ModuleChangedOnDisk


class SourceTracker:
    """The client's record of which module sources one target already has (see the module
    docstring)."""

    def __init__(self):
        self._changes = FileChanges()
        self._registered = set()
        self._modules_mark = None  # (len, last name, last module) of sys.modules at the last look
        self._roots = {}  # registered name not inside another registered one -> its _Root
        self._folders = {}  # folder being listed -> its _Folder
        self._files = {}  # module name -> its _Source
        self._by_path = {}  # source file -> module name
        self._check = set()  # module names whose file may have changed since it was last read
        self._unsent = set()  # module names whose source the target lacks
        self._stale = {}  # module name -> why the code running here is not its file's
        self._sent = {}  # module name -> sha256 of the source last shipped to the target
        self._pending = {}  # the same for what the last changed() returned, until sent()
        self.shipments = []  # the module names of every shipment, in order (what was re-sent)

    def changed(self, registered):
        """``{name: (filename, is_package, source)}`` for the modules of ``registered`` (names
        registered by value, their submodules included: the imported ones, and every ``.py`` file
        under a registered package, since a function may import one the client never imported)
        whose source the target lacks. Raises :class:`ModuleChangedOnDisk` when one of them runs
        here from code its file no longer holds and the target lacks that code."""
        changed, unwatched = self._changes.take()
        for path in changed | unwatched:
            if path in self._folders:
                self._list(path)
            name = self._by_path.get(path)
            if name is not None:
                if path in changed:  # read it again even if its stat looks the same (coarse mtime)
                    self._files[name].signature = None
                self._check.add(name)
        modules = sys.modules
        mark = (len(modules), next(reversed(modules), None))  # imports append to sys.modules
        mark += (modules.get(mark[1]),)
        if registered != self._registered or mark != self._modules_mark:
            self._modules_mark = mark
            self._update_roots(registered)
        for name in self._stale:
            if self._files[name].reloaded():
                self._check.add(name)
        while self._check:
            self._refresh(self._files.get(self._check.pop()))
        return self._collect()

    def sent(self, modules):
        """Record ``modules`` (from :meth:`changed`) as delivered."""
        for name in modules:
            self._sent[name] = self._pending.pop(name)
            self._unsent.discard(name)
            if name in self._files:
                self._files[name].source = None
        if modules:
            self.shipments.append(sorted(modules))

    def forget(self):
        """The target lost what it had (a restart): ship everything again."""
        self._sent.clear()
        for source in self._files.values():
            source.signature = None  # read again: its bytes were dropped once sent
        self._check.update(self._files)

    # --- what is registered -----------------------------------------------------------------------

    def _update_roots(self, registered):
        """Follow what is registered: the names outside any other registered package, each with
        the module now imported under it (one imported anew, from elsewhere, is listed anew)."""
        self._registered = registered = set(registered)
        roots = {name for name in registered if not _inside(name, registered)}
        for name in [name for name, root in self._roots.items()
                     if name not in roots or sys.modules.get(name) is not root.module]:
            self._drop_root(name)
        for name in sorted(roots - self._roots.keys()):
            self._add_root(name)

    def _add_root(self, name):
        module = sys.modules.get(name)
        root = self._roots[name] = _Root(module)
        if not isinstance(module, types.ModuleType):
            return
        namespace = module.__dict__
        if "__path__" in namespace:
            for folder in list(namespace["__path__"]):
                self._add_folder(root, os.path.abspath(folder), name)
        else:
            filename = namespace.get("__file__")
            if isinstance(filename, str) and filename.endswith(".py"):
                self._add_file(root, name, os.path.abspath(filename), False)

    def _drop_root(self, name):
        root = self._roots.pop(name)
        for folder in root.folders:
            del self._folders[folder]
            self._changes.forget_listing(folder)
        for module_name in list(root.names):
            self._drop_file(module_name)

    def _add_folder(self, root, folder, prefix):
        if folder in self._folders:
            return
        self._folders[folder] = _Folder(root, prefix)
        root.folders.add(folder)
        self._changes.follow_listing(folder)
        self._list(folder)

    def _list(self, folder):
        """List ``folder`` (again): add its new ``.py`` files and subpackages, drop the gone ones."""
        record = self._folders[folder]
        names, subfolders = {}, {}
        try:
            entries = list(os.scandir(folder))
        except OSError:  # gone: so are its modules
            entries = []
        for entry in entries:
            stem, ext = os.path.splitext(entry.name)
            try:
                is_folder = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if is_folder:
                if entry.name.isidentifier() and entry.name != "__pycache__":
                    subfolders[entry.path] = f"{record.prefix}.{entry.name}"
            elif ext == ".py" and stem.isidentifier():
                package = stem == "__init__"
                names[record.prefix if package else f"{record.prefix}.{stem}"] = (entry.path, package)
        for name in record.names - names.keys():
            self._drop_file(name)
        for subfolder in record.subfolders - subfolders.keys():
            self._drop_folder(subfolder)
        record.names = {name for name, (path, package) in names.items()
                        if self._add_file(record.root, name, path, package)}
        record.subfolders = set(subfolders)
        for subfolder, prefix in subfolders.items():
            self._add_folder(record.root, subfolder, prefix)

    def _drop_folder(self, folder):
        record = self._folders.pop(folder)
        record.root.folders.discard(folder)
        self._changes.forget_listing(folder)
        for name in record.names:
            self._drop_file(name)
        for subfolder in list(record.subfolders):
            self._drop_folder(subfolder)

    def _add_file(self, root, name, filename, is_package):
        """Follow module ``name``'s file; False if another file already gave that module."""
        known = self._files.get(name)
        if known is not None:
            return known.filename == filename
        self._files[name] = _Source(name, filename, is_package, root)
        root.names.add(name)
        self._by_path[filename] = name
        self._changes.follow(filename)
        self._check.add(name)
        return True

    def _drop_file(self, name):
        source = self._files.pop(name, None)
        if source is None:
            return
        source.root.names.discard(name)
        self._by_path.pop(source.filename, None)
        self._changes.forget(source.filename)
        self._check.discard(name)
        self._unsent.discard(name)
        self._stale.pop(name, None)

    # --- one source -------------------------------------------------------------------------------

    def _refresh(self, source):
        """Read ``source``'s file again if it changed; note whether the target lacks it and whether
        the code running here is still the file's."""
        if source is None:
            return
        name = source.name
        signature = ondisk.signature(source.filename)
        if signature is not None and signature == source.signature and not source.reloaded():
            return
        source.signature = signature
        try:
            data = ondisk.read_source(source.filename)
        except (OSError, ValueError) as exc:  # gone (the target keeps what it had), or not a source
            self._unsent.discard(name)
            self._stale.pop(name, None)
            if not isinstance(exc, FileNotFoundError):
                problem = f"cloudpickle_ipy: not shipping the source of {name}: {_reason(exc)}"
                if problem != source.problem:
                    print(problem, file=sys.stderr)
                source.problem = problem
            return
        source.problem = None
        source.digest = hashlib.sha256(data).digest()
        reason = source.verify(data, signature)
        if reason is None:
            self._stale.pop(name, None)
        else:
            self._stale[name] = reason
        if self._sent.get(name) == source.digest:
            self._unsent.discard(name)
            source.source = None
        else:
            self._unsent.add(name)
            source.source = data

    def _collect(self):
        refused = {}
        for name, reason in self._stale.items():
            sent = self._sent.get(name)
            if sent is None or sent != self._files[name].running:  # the target lacks what runs here
                refused[name] = reason
        if refused:
            raise ModuleChangedOnDisk(_refusal(refused))
        out = {}
        self._pending = {}
        for name in sorted(self._unsent - self._stale.keys()):
            source = self._files[name]
            out[name] = (source.filename, source.is_package, source.source)
            self._pending[name] = source.digest
        return out


class _Root:
    """A registered module: the module, the folders listed for it and the module names found."""

    __slots__ = ("module", "folders", "names")

    def __init__(self, module):
        self.module, self.folders, self.names = module, set(), set()


class _Folder:
    """A folder of a registered package: its module-name prefix, and what its last listing found."""

    __slots__ = ("root", "prefix", "names", "subfolders")

    def __init__(self, root, prefix):
        self.root, self.prefix = root, prefix
        self.names, self.subfolders = set(), set()


class _Source:
    """One module's source file, as last read, and how it relates to the code running here."""

    __slots__ = ("name", "filename", "is_package", "root", "signature", "digest", "source",
                 "problem", "code", "running")

    def __init__(self, name, filename, is_package, root):
        self.name, self.filename, self.is_package, self.root = name, filename, is_package, root
        self.signature = self.digest = self.source = self.problem = None
        self.code = None  # what ondisk.running_code found last, if the module is imported here
        self.running = None  # sha256 of a source whose code is the one running here, if known

    def reloaded(self):
        """Whether the module imported here was removed, reloaded or patched since it was last
        compared with its file."""
        return self.code is not None and not self.code.current(sys.modules.get(self.name))

    def verify(self, data, signature):
        """Why the code running here is not what ``data`` (the file now) holds, or None (also when
        the module is not imported here: importing it would run the file)."""
        module = sys.modules.get(self.name)
        if not isinstance(module, types.ModuleType) or not _same_file(
                module.__dict__.get("__file__"), self.filename):
            self.code = self.running = None
            return None
        untouched = self.code is not None and self.code.current(module)
        self.code, reason = ondisk.running_code(module, data, signature, self.code)
        if reason is None:
            self.running = self.digest
        elif not untouched:  # reloaded since: the source last found running is not any more
            self.running = None
        return reason


def _inside(name, registered):
    """Whether a parent package of ``name`` is in ``registered``."""
    parts = name.split(".")
    return any(".".join(parts[:i]) in registered for i in range(1, len(parts)))


def _same_file(module_file, filename):
    if not isinstance(module_file, str):
        return False
    if os.path.abspath(module_file) == filename:
        return True
    try:
        return os.path.samefile(module_file, filename)
    except OSError:
        return False


def _reason(exc):
    return str(exc) if isinstance(exc, ValueError) else f"{exc.strerror}: {exc.filename}"


def _refusal(refused):
    """The one line that says which modules differ from their files, and what to do."""
    names = sorted(refused)
    listed = ", ".join(f"{name} ({refused[name]})" for name in names[:3])
    if len(names) > 3:
        listed += f" and {len(names) - 3} more"
    one = len(names) == 1
    fix = f"importlib.reload({names[0]})" if one else "importlib.reload() them"
    if any(reason.startswith("does not compile") for reason in refused.values()):
        fix = f"fix {'its file' if one else 'their files'}, then {fix}"
    return (f"{listed} changed on disk since {'it was' if one else 'they were'} imported: the "
            f"target would run {'the file' if one else 'the files'}, this process runs the code in "
            f"memory; {fix} (or use %autoreload) and ship again")


