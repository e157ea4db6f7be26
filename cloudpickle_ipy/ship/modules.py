"""The target's side of module sources: serving the shipped sources of modules pickled by value to
``import``.

Pickling a module by value ships its functions and classes, but an ``import mylib`` *inside* a
function body runs on the target and needs ``mylib`` importable there. The client sends the sources
(:mod:`.sources`); :class:`ShippedModules` serves them through a finder placed first on
``sys.meta_path`` (the shipped source is what is being edited, so it wins over an installed copy),
and forgets an imported module whose source changed so the next import runs the new code. Standard
library only: it runs in the kernel, possibly from shipped code (:mod:`.bootstrap`).
"""
import importlib.abc
import importlib.util
import sys


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
        if not changed:  # most requests: no scan of sys.modules
            return
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
