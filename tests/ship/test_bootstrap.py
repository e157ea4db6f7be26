"""A kernel whose environment has only ipykernel, or another cloudpickle_ipy: ours is shipped.

The kernels run in ``.cache/venvs/kernel-only`` (see :mod:`tests.ship.venvs`), from a temporary folder,
without this checkout on their path.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cloudpickle_ipy
import cloudpickle_ipy.core as core
from cloudpickle_ipy.ship import bootstrap
from tests.fresh import define
from tests.ship.venvs import clean_env, kernel_venv, start_kernel, this_base_python

SRC = Path(cloudpickle_ipy.__file__).parent
SHIPPED_FILE = f"{bootstrap.ORIGIN}/cloudpickle_ipy/__init__.py"


@pytest.fixture(scope="module")
def venv_python():
    python = kernel_venv("kernel-only", this_base_python())
    # The point of these tests: cloudpickle_ipy cannot be imported there.
    proc = subprocess.run([str(python), "-c", "import cloudpickle_ipy"], env=clean_env(),
                          cwd="/", capture_output=True, text=True)
    assert "No module named 'cloudpickle_ipy'" in proc.stderr
    return python


def _connect(python, cwd, **env):
    manager = start_kernel(python, cwd, clean_env(**env))
    try:
        return manager, cloudpickle_ipy.connect(manager, timeout=60)
    except BaseException:
        manager.shutdown_kernel(now=True)
        raise


@pytest.fixture(scope="module")
def bare(venv_python, tmp_path_factory):
    """A target on a kernel without cloudpickle_ipy."""
    manager, target = _connect(venv_python, tmp_path_factory.mktemp("bare"))
    try:
        yield target
    finally:
        target.close()
        manager.shutdown_kernel(now=True)


def test_agent_and_core_are_shipped_and_used(bare):
    assert bare.shipped and bare.agent["version"] == cloudpickle_ipy.__version__
    files = bare.run("import sys; {n: getattr(m, '__file__', None) for n, m in sys.modules.items()"
                     " if n.split('.')[0] == 'cloudpickle_ipy'}")
    assert files["cloudpickle_ipy"] == SHIPPED_FILE
    assert files["cloudpickle_ipy.core.functions"] == (
        f"{bootstrap.ORIGIN}/cloudpickle_ipy/core/functions.py")  # where rebuild functions live
    assert all(f.startswith(bootstrap.ORIGIN + "/") for f in files.values()), files
    # Only the core and the agent travel: nothing else of the package is importable there.
    assert bare.run("import importlib.util; importlib.util.find_spec('cloudpickle_ipy.magics')") \
        is None


def test_lambdas_closures_and_classes(bare):
    def make_adder(n):
        def add(x):
            return x + n
        return add

    ns = define("""
        class Box:
            def __init__(self, v):
                self.v = v
    """)
    bare.push(square=lambda x: x * x, add3=make_adder(3), box=ns.Box(5))
    assert bare.run("square(add3(box.v))") == 64
    assert bare.call(make_adder(10), 1) == 11
    assert bare.run("lambda x: x * 2")(21) == 42
    assert type(bare.pull("box")) is ns.Box


def test_module_by_value(bare, tmp_path, monkeypatch):
    pkg = tmp_path / "bootstrap_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("BASE = 100\n")
    (pkg / "sub.py").write_text("def g(x):\n    return x + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import bootstrap_pkg  # noqa: F401

    core.register_pickle_by_value(sys.modules["bootstrap_pkg"])
    try:
        ns = define("""
            def use(x):
                import bootstrap_pkg
                from bootstrap_pkg.sub import g
                return g(x) + bootstrap_pkg.BASE
        """)
        assert bare.call(ns.use, 1) == 102
    finally:
        core.unregister_pickle_by_value(sys.modules["bootstrap_pkg"])
        for name in [n for n in sys.modules if n.startswith("bootstrap_pkg")]:
            del sys.modules[name]


def _fake_package(root, kind):
    """A cloudpickle_ipy under ``root``: another version, ours edited, or an exact copy of ours."""
    if kind == "other version":
        (root / "cloudpickle_ipy").mkdir(parents=True)
        (root / "cloudpickle_ipy" / "__init__.py").write_text('__version__ = "0.0.1"\n')
        return
    shutil.copytree(SRC, root / "cloudpickle_ipy", ignore=shutil.ignore_patterns("__pycache__"))
    if kind == "same version, other code":
        with open(root / "cloudpickle_ipy" / "core" / "functions.py", "a") as f:
            f.write("# edited\n")


@pytest.mark.parametrize("kind, shipped", [("other version", True),
                                           ("same version, other code", True),
                                           ("exact copy", False)])
def test_installed_cloudpickle_ipy_is_used_only_if_identical(venv_python, tmp_path, kind,
                                                              shipped):
    _fake_package(tmp_path / "site", kind)
    installed = str(tmp_path / "site" / "cloudpickle_ipy" / "__init__.py")
    manager, target = _connect(venv_python, tmp_path, PYTHONPATH=str(tmp_path / "site"))
    try:
        assert target.shipped is shipped
        assert target.run("import cloudpickle_ipy; cloudpickle_ipy.__version__, "
                          "cloudpickle_ipy.__file__") == (
            cloudpickle_ipy.__version__, SHIPPED_FILE if shipped else installed)
        assert target.call(lambda x: [x] * 2, "ok") == ["ok", "ok"]
    finally:
        target.close()
        manager.shutdown_kernel(now=True)


def test_restart_ships_again(venv_python, tmp_path):
    manager, target = _connect(venv_python, tmp_path)
    try:
        target.push(x=1)
        manager.restart_kernel(now=True)
        # The new kernel process has nothing: the next request ships the agent again.
        assert target.run("'x' in globals()") is False
        assert target.shipped and target.call(lambda: 7) == 7
    finally:
        target.close()
        manager.shutdown_kernel(now=True)
