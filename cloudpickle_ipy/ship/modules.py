"""Module sources that travel with payloads, so that modules pickled by value import on the target.

Pickling a module by value ships its functions and classes, but an ``import mylib`` *inside* a
function body runs on the target and needs ``mylib`` importable there. The client side
(:class:`SourceTracker`) collects the source files of the modules registered by value and sends
each again only when it changed; the target side (:class:`ShippedModules`) serves them to
``import`` through a finder placed first on ``sys.meta_path`` (the shipped source is what is being
edited, so it wins over an installed copy), and forgets an imported module whose source changed so
the next import runs the new code. Standard library only: the target side runs in the kernel.
"""
import hashlib
import importlib.abc
import importlib.util
import os
import sys


class SourceTracker:
    """The client's record of which module sources one target already has."""

    def __init__(self):
        self._sent = {}  # module name -> sha256 of the source last shipped to the target
        self._pending = {}  # the same for what the last changed() found, until sent()
        self.shipments = []  # the module names of every shipment, in order (what was re-sent)

    def changed(self, registered):
        """``{name: (filename, is_package, source)}`` for the modules of ``registered`` (names
        registered by value, their submodules included) whose source the target lacks."""
        out = {}
        self._pending = {}
        for name, (filename, is_package) in sorted(_source_files(registered).items()):
            try:
                with open(filename, "rb") as f:
                    source = f.read()
            except OSError:
                continue
            digest = hashlib.sha256(source).digest()
            if self._sent.get(name) != digest:
                out[name] = (filename, is_package, source)
                self._pending[name] = digest
        return out

    def sent(self, modules):
        """Record ``modules`` (from :meth:`changed`) as delivered."""
        for name in modules:
            self._sent[name] = self._pending.pop(name)
        if modules:
            self.shipments.append(sorted(modules))

    def forget(self):
        """The target lost what it had (a restart): ship everything again."""
        self._sent.clear()


def _source_files(registered):
    """``{module name: (source file, is_package)}`` for ``registered`` and their submodules: the
    imported ones, and every ``.py`` file under a registered package (a function may import a
    submodule the client never imported)."""
    files = {}
    for name in registered:
        for mod_name, module in list(sys.modules.items()):
            if mod_name != name and not mod_name.startswith(name + "."):
                continue
            filename = getattr(module, "__file__", None)
            if filename and filename.endswith(".py"):
                files[mod_name] = (filename, hasattr(module, "__path__"))
        package = sys.modules.get(name)
        for root in getattr(package, "__path__", ()):
            for directory, subdirs, names in os.walk(root):
                subdirs[:] = [d for d in subdirs if d.isidentifier()]
                relative = os.path.relpath(directory, root)
                prefix = name if relative == "." else f"{name}.{relative.replace(os.sep, '.')}"
                for file in names:
                    stem, ext = os.path.splitext(file)
                    if ext != ".py" or not stem.isidentifier():
                        continue
                    if stem == "__init__":
                        files.setdefault(prefix, (os.path.join(directory, file), True))
                    else:
                        files.setdefault(f"{prefix}.{stem}", (os.path.join(directory, file), False))
    return files


class ShippedModules(importlib.abc.MetaPathFinder, importlib.abc.InspectLoader):
    """The target's finder and loader for shipped module sources."""

    def __init__(self):
        self.sources = {}  # module name -> (filename, is_package, source bytes)

    def install(self):
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def update(self, modules, complete=False):
        """Take new sources (with ``complete``, ``modules`` is all there is: the others go).

        When a module's source changed or went, every shipped module of its top-level package is
        dropped from ``sys.modules``, so the next ``import`` runs the new sources of the whole
        package: a package never mixes a new module with an old sibling that imported from it.
        The new sources replace the old ones in one assignment, for imports in other threads.
        """
        sources = dict(modules) if complete else {**self.sources, **modules}
        changed = {name for name in self.sources.keys() | sources.keys()
                   if self.sources.get(name) != sources.get(name)}
        self.sources = sources
        packages = {name.partition(".")[0] for name in changed}
        for name in [n for n in sys.modules if n.partition(".")[0] in packages
                     and (n in sources or n in changed)]:
            sys.modules.pop(name, None)

    def find_spec(self, fullname, path=None, target=None):
        entry = self.sources.get(fullname)
        if entry is None:
            return None
        filename, is_package, _ = entry
        return importlib.util.spec_from_loader(fullname, self, origin=filename,
                                               is_package=is_package)

    def get_source(self, fullname):
        return importlib.util.decode_source(self.sources[fullname][2])

    def get_code(self, fullname):
        filename, _, source = self.sources[fullname]
        return compile(source, filename, "exec", dont_inherit=True)

    def is_package(self, fullname):
        return self.sources[fullname][1]

    def exec_module(self, module):
        module.__file__ = self.sources[module.__name__][0]
        exec(self.get_code(module.__name__), vars(module))
