"""register_pickle_by_value: API errors, the registry round trip, and a real package on disk.

The package ``pkg`` is written to ``tmp_path`` and imported in this process only; the fresh
process that loads a payload cannot import it unless ``sys_path=[tmp_path]`` is given.
"""
import importlib
import sys
import textwrap
import types

import pytest

from cloudpickle_ipy.core import (
    dumps,
    list_registry_pickle_by_value,
    register_pickle_by_value,
    unregister_pickle_by_value,
)
from tests.fresh import FreshProcessError, load_fresh

PKG_FILES = {
    "pkg/__init__.py": """
        VALUE = 10

        def top():
            return "top"
    """,
    # a and b import each other and the package itself: module globals form cycles.
    "pkg/a.py": """
        import pkg
        from pkg import b

        A_CONST = 3
        SHIPPED = "shipped-v1"

        def double(x):
            return 2 * x

        def ping(n):
            return "a" if n <= 0 else b.pong(n - 1)

        def via_helper():
            return b.helper() + pkg.VALUE

        def via_package():
            return pkg.top()

        def relative():
            from . import b as rel_b
            from .sub.c import thing
            return SHIPPED, rel_b.pong(0), thing()
    """,
    "pkg/b.py": """
        from pkg import a

        def pong(n):
            return "b" if n <= 0 else a.ping(n - 1)

        def helper():
            return a.A_CONST + 1
    """,
    "pkg/sub/__init__.py": "",
    "pkg/sub/c.py": """
        import pkg

        def thing():
            return "thing"

        def sub_fn(x):
            return x * 7 + pkg.VALUE
    """,
}


# Evaluated in the fresh process: the package's source is nowhere on its path.
NOT_IMPORTABLE = "__import__('importlib.util').util.find_spec('pkg') is None"


def _write_pkg(root, files=PKG_FILES):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def _forget_pkg():
    for name in [m for m in sys.modules if m == "pkg" or m.startswith("pkg.")]:
        del sys.modules[name]


@pytest.fixture
def pkg(tmp_path):
    """Write ``pkg`` to tmp_path and import it here; undo everything afterwards."""
    _forget_pkg()
    _write_pkg(tmp_path)
    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    module = importlib.import_module("pkg")
    for sub in ("pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c"):
        importlib.import_module(sub)
    try:
        yield module
    finally:
        if "pkg" in list_registry_pickle_by_value():
            unregister_pickle_by_value(module)
        sys.path.remove(str(tmp_path))
        _forget_pkg()


# --- API errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [1, "json"], ids=["int", "str"])
def test_register_rejects_non_module(bad):
    with pytest.raises(ValueError, match="(?i)module"):
        register_pickle_by_value(bad)


@pytest.mark.parametrize("bad", [1, "json"], ids=["int", "str"])
def test_unregister_rejects_non_module(bad):
    with pytest.raises(ValueError, match="(?i)module"):
        unregister_pickle_by_value(bad)


def test_register_rejects_module_not_imported():
    ghost = types.ModuleType("never_imported_ghost_module")
    with pytest.raises(ValueError, match="never_imported_ghost_module"):
        register_pickle_by_value(ghost)
    assert "never_imported_ghost_module" not in list_registry_pickle_by_value()


def test_unregister_rejects_module_not_registered():
    import json
    assert "json" not in list_registry_pickle_by_value()
    with pytest.raises(ValueError, match="json"):
        unregister_pickle_by_value(json)


# --- the registry itself ------------------------------------------------------------------------

def test_register_list_unregister_round_trip(pkg):
    before = set(list_registry_pickle_by_value())
    assert "pkg" not in before
    register_pickle_by_value(pkg)
    assert "pkg" in list_registry_pickle_by_value()
    unregister_pickle_by_value(pkg)
    assert set(list_registry_pickle_by_value()) == before
    with pytest.raises(ValueError, match="pkg"):
        unregister_pickle_by_value(pkg)


# --- by value vs by reference -------------------------------------------------------------------

def test_registered_package_functions_load_without_the_package(pkg):
    register_pickle_by_value(pkg)
    payload = dumps([pkg.a.double, pkg.a.via_package, pkg.top])
    assert load_fresh(payload, "[obj[0](21), obj[1](), obj[2](), " + NOT_IMPORTABLE + "]") == \
        [42, "top", "top", True]


def test_registering_package_covers_its_subpackages(pkg):
    register_pickle_by_value(pkg)
    payload = dumps(pkg.sub.c.sub_fn)
    assert load_fresh(payload, "obj(2)") == 24


def test_unregistered_package_is_pickled_by_reference(pkg, tmp_path):
    register_pickle_by_value(pkg)
    unregister_pickle_by_value(pkg)
    payload = dumps(pkg.a.double)
    with pytest.raises(FreshProcessError) as info:
        load_fresh(payload, "obj(1)")
    assert "ModuleNotFoundError" in info.value.stderr
    assert "pkg" in info.value.stderr
    # With the package importable the reference resolves.
    assert load_fresh(payload, "obj(5)", sys_path=[tmp_path]) == 10


# --- cycles between modules of a by-value package -----------------------------------------------

def test_mutually_importing_modules_function_pickles_without_recursion(pkg):
    register_pickle_by_value(pkg)
    payload = dumps([pkg.a.ping, pkg.b.pong, pkg.a.via_helper])
    assert load_fresh(payload, "[obj[0](3), obj[0](4), obj[1](3), obj[2]()]") == \
        ["b", "a", "a", 14]


def test_mutually_importing_module_objects_pickle_without_recursion(pkg):
    register_pickle_by_value(pkg)
    payload = dumps([pkg.a, pkg.b, pkg])
    check = "[obj[0].ping(5), obj[1].pong(5), obj[1].helper(), obj[2].top(), " + NOT_IMPORTABLE + "]"
    assert load_fresh(payload, check) == ["b", "a", 4, "top", True]


# --- relative imports inside by-value code ------------------------------------------------------

def test_relative_imports_in_by_value_function_resolve(pkg, tmp_path):
    register_pickle_by_value(pkg)
    payload = dumps(pkg.a.relative)
    # The loader's copy of pkg/a.py differs from what was shipped.
    a_py = tmp_path / "pkg" / "a.py"
    a_py.write_text(a_py.read_text().replace('"shipped-v1"', '"on-disk-version-2"'))
    check = "result = list(obj()) + [sys.modules['pkg.a'].SHIPPED]"
    assert load_fresh(payload, check, sys_path=[tmp_path]) == \
        ["shipped-v1", "b", "thing", "on-disk-version-2"]
