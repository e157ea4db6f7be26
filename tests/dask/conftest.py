"""A cluster of real processes per test module (see :mod:`tests.dask.processes`), always stopped, and
packages that only this (the client's) process can import."""
import importlib
import shutil
import sys
import textwrap

import pytest
from distributed import Client

from cloudpickle_ipy import core
from tests.dask.processes import Cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    processes = Cluster(tmp_path_factory.mktemp("cluster"), workers=2)
    try:
        yield processes
    finally:
        processes.close()


@pytest.fixture(scope="module")
def client(cluster):
    client = Client(cluster.address, set_as_default=False, timeout=30)
    try:
        client.wait_for_workers(len(cluster.workers), timeout=60)
        yield client
    finally:
        client.close()


class Package:
    """A package written to a folder of its own that only this process has on its path,
    imported and registered by value."""

    def __init__(self, folder, name, files):
        self.folder, self.name = folder, name
        self.write(files)
        sys.path.insert(0, str(folder))
        self.module = importlib.import_module(name)
        core.register_pickle_by_value(self.module)

    def write(self, files):
        """Write ``{relative path: source}`` (an edit, when they exist)."""
        for path, source in files.items():
            file = self.folder / self.name / path
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(textwrap.dedent(source))
        for cache in (self.folder / self.name).rglob("__pycache__"):  # same size, same second
            shutil.rmtree(cache)

    def reload(self):
        """Import the package again here, from its files (as a local reload does)."""
        self.drop()
        self.module = importlib.import_module(self.name)
        return self.module

    def drop(self):
        for name in [n for n in sys.modules if n == self.name or n.startswith(self.name + ".")]:
            del sys.modules[name]
        importlib.invalidate_caches()

    def remove(self):
        if self.name in core.list_registry_pickle_by_value():
            core.unregister_pickle_by_value(sys.modules[self.name])
        self.drop()
        sys.path.remove(str(self.folder))


@pytest.fixture
def package(tmp_path):
    """``package(name, {path: source})``: a registered :class:`Package`, removed afterwards."""
    made = []

    def make(name, files):
        folder = tmp_path / f"src-{len(made)}"
        folder.mkdir()
        made.append(Package(folder, name, files))
        return made[-1]

    try:
        yield make
    finally:
        for package in made:
            package.remove()
