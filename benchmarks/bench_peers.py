"""The picklers under comparison, behind one small interface.

Every pickler is imported only when selected, so a run limited to ``cloudpickle_ipy,pickle`` never
imports cloudpickle or dill (the test venv has neither, and the package must not depend on them).
A pickler that is not installed stays in the table as ``n/a``.
"""
import importlib
import importlib.metadata
import pickle

# Protocol 5 for everyone: the only protocol with out-of-band buffers, and it compares like with like
# (the standard library's own default is 4 before Python 3.14, dill follows it).
PROTOCOL = 5

NAMES = ("cloudpickle_ipy", "cloudpickle", "dill", "pickle")


class Peer:
    """One pickler: ``dumps``/``loads`` with protocol 5, and its by-value registry if it has one."""

    def __init__(self, name, module=None, missing=None, version=None):
        self.name = name
        self.missing = missing  # why the pickler cannot run at all, or None
        self.version = version
        self._module = module

    @property
    def has_registry(self):
        return hasattr(self._module, "register_pickle_by_value")

    def dumps(self, obj, buffer_callback=None):
        return self._module.dumps(obj, protocol=PROTOCOL, buffer_callback=buffer_callback)

    def loads(self, data, buffers=None):
        return self._module.loads(data, buffers=buffers)

    def register(self, module):
        self._module.register_pickle_by_value(module)

    def unregister(self, module):
        self._module.unregister_pickle_by_value(module)


_IMPORT_NAMES = {"cloudpickle_ipy": "cloudpickle_ipy.core"}


def load_peer(name):
    """The :class:`Peer` called ``name``, or one whose ``missing`` says why it cannot run."""
    if name == "pickle":
        return Peer(name, pickle, version=f"protocol {pickle.HIGHEST_PROTOCOL} max")
    try:
        module = importlib.import_module(_IMPORT_NAMES.get(name, name))
    except ImportError as e:
        return Peer(name, missing=f"not installed ({e.name or e})")
    return Peer(name, module, version=distribution_version(name))


def distribution_version(name):
    """The installed version of distribution ``name``, or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
