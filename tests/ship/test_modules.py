"""Module sources shipped with requests, on a real local kernel: what a request costs when nothing
changed (no file read, listed or stat-ed, however many modules are registered), files and folders
that come and go, sources that must not be read (FIFO, device, huge file), and what runs there being
what runs here (a module edited on disk but not reloaded is never shipped from its file).

Modules are written to ``tmp_path``, imported, registered by value, and forgotten afterwards; edits
get a later mtime (``os.utime``) so that the .pyc check sees them as a real edit made later would be.
"""
import importlib
import os
import sys

import pytest

from cloudpickle_ipy import core, filechanges, ondisk
from cloudpickle_ipy.ship import ModuleChangedOnDisk, connect, sources
from tests.extension.test_watcher import write
from tests.fresh import define, run_script
from tests.fs_calls import FileSystemCalls
from tests.ship.test_magics import loaded_shell, ok, run, ship

COLLECTING = (sources, ondisk, filechanges)  # the code that runs before each request to find sources


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """``modules(name, source, later=0)`` writes ``tmp_path/name.py`` (``pkg/mod`` for a package's
    module; ``later``: see ``write``); ``modules.use(*names)`` imports and registers them.
    Everything is forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # .pyc written at import, as by default
    before = set(sys.modules)

    class Modules:
        root = tmp_path

        def __call__(self, name, source, later=0):
            path = tmp_path / f"{name}.py"
            write(path, source, later)
            return path

        def use(self, *names):
            for name in names:
                core.register_pickle_by_value(importlib.import_module(name))
            return [sys.modules[name] for name in names]

    yield Modules()
    for name in core.list_registry_pickle_by_value():
        if str(getattr(sys.modules.get(name), "__file__", "")).startswith(str(tmp_path)):
            core.unregister_pickle_by_value(sys.modules[name])
    for name in set(sys.modules) - before:
        if str(getattr(sys.modules[name], "__file__", "")).startswith(str(tmp_path)):
            del sys.modules[name]


def user(source):
    """A function written in the notebook (``__main__``): it travels by value."""
    return define(source).use


# --- cost -----------------------------------------------------------------------------------------

def test_a_request_with_nothing_changed_reads_lists_and_stats_no_file(kernel, modules):
    for i in range(300):
        modules(f"bigpkg/m{i}", f"def f():\n    return {i}\n")
    modules("bigpkg/__init__", "")
    for i in range(50):
        modules(f"lone{i}", f"X = {i}\n")
    modules.use("bigpkg", *(f"lone{i}" for i in range(50)))
    use = user("""
        def use():
            import bigpkg.m299, lone49
            return bigpkg.m299.f() + lone49.X
    """)
    start = len(kernel.sources.shipments)
    assert kernel.call(use) == 299 + 49
    assert len(kernel.sources.shipments[start]) == 301 + 50  # everything once

    with FileSystemCalls(*COLLECTING) as calls:
        assert kernel.call(use) == 348
    assert (calls.stats, calls.opened, calls.listed) == (0, [], [])
    assert len(kernel.sources.shipments) == start + 1

    edited = modules("bigpkg/m7", "def f():\n    return -7\n")
    with FileSystemCalls(*COLLECTING) as calls:
        assert kernel.call(user("def use():\n    import bigpkg.m7\n    return bigpkg.m7.f()")) == -7
    assert calls.opened == [str(edited)] and calls.listed == [] and calls.stats <= 2
    assert kernel.sources.shipments[start + 1:] == [["bigpkg.m7"]]


def test_files_and_folders_that_come_and_go_are_followed(kernel, modules):
    modules("growing/__init__", "")
    modules("growing/a", "A = 1\n")
    modules.use("growing")
    use = user("""
        def use(name):
            import importlib
            return importlib.import_module(name).VALUE
    """)
    start = len(kernel.sources.shipments)
    kernel.call(lambda: None)
    modules("growing/b", "VALUE = 'b'\n")
    modules("growing/sub/__init__", "")
    modules("growing/sub/deep", "VALUE = 'deep'\n")
    assert kernel.call(use, "growing.sub.deep") == "deep"
    assert kernel.call(use, "growing.b") == "b"
    assert kernel.sources.shipments[start + 1:] == [["growing.b", "growing.sub", "growing.sub.deep"]]

    (modules.root / "growing" / "b.py").unlink()  # gone here: nothing to send, nothing breaks
    for path in sorted((modules.root / "growing" / "sub").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (modules.root / "growing" / "sub").rmdir()
    kernel.call(lambda: None)
    modules("growing/sub/deep", "VALUE = 'deep again'\n")  # the folder is back, with new content
    modules("growing/sub/__init__", "")
    assert kernel.call(use, "growing.sub.deep") == "deep again"


# --- sources that must not be read ------------------------------------------------------------------

def test_fifo_device_and_huge_sources_neither_hang_nor_balloon_and_say_one_line(tmp_path):
    """In a fresh process whose address space is capped at 1 GiB more than it uses once connected:
    reading /dev/zero, or the 3 GiB file, would exceed it; opening the FIFO would wait forever."""
    out = run_script(f"""
        import contextlib, io, os, resource, sys
        import cloudpickle_ipy
        from cloudpickle_ipy import core

        root = {str(tmp_path)!r}
        os.makedirs(os.path.join(root, "oddpkg"))
        for name, text in (("__init__", ""), ("fine", "VALUE = 'fine'\\n")):
            with open(os.path.join(root, "oddpkg", name + ".py"), "w") as f:
                f.write(text)
        os.mkfifo(os.path.join(root, "oddpkg", "fifo.py"))
        os.symlink("/dev/zero", os.path.join(root, "oddpkg", "zero.py"))
        with open(os.path.join(root, "oddpkg", "huge.py"), "wb") as f:
            f.truncate(3 << 30)  # sparse: no disk used
        sys.path.insert(0, root)
        import oddpkg
        core.register_pickle_by_value(oddpkg)

        def use():
            import oddpkg.fine
            return oddpkg.fine.VALUE

        with cloudpickle_ipy.connect("local", timeout=60) as kernel:
            with open("/proc/self/statm") as f:
                used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            resource.setrlimit(resource.RLIMIT_AS, (used + (1 << 30), resource.RLIM_INFINITY))
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                print(kernel.call(use))
                print(kernel.call(use))  # said once, not at every request
            print(err.getvalue(), end="")
    """, timeout=120).decode()
    lines = out.splitlines()
    assert lines[:2] == ["fine", "fine"], out
    path = os.path.join(tmp_path, "oddpkg")
    assert sorted(lines[2:]) == [
        f"cloudpickle_ipy: not shipping the source of oddpkg.fifo: {path}/fifo.py is a FIFO, "
        f"not a regular file",
        f"cloudpickle_ipy: not shipping the source of oddpkg.huge: {path}/huge.py is larger "
        f"than 16 MiB (3,072 MiB)",
        f"cloudpickle_ipy: not shipping the source of oddpkg.zero: {path}/zero.py is a character "
        f"device, not a regular file"], out


# --- what runs there is what runs here ----------------------------------------------------------------

EDITABLE = "def f():\n    return 1\n\n\ndef g():\n    return f() + 1\n"
USE_EDITED = """
    def use():
        import edited_here
        return edited_here.g()
"""


USE_RELOADED = USE_EDITED.replace("edited_here", "reloaded_here")


def test_a_module_edited_but_not_reloaded_is_refused_in_one_line(kernel, modules):
    modules("edited_here", EDITABLE)
    (edited,) = modules.use("edited_here")
    modules("edited_here", EDITABLE.replace("return 1", "return 100"), later=2)
    with pytest.raises(ModuleChangedOnDisk) as refused:
        kernel.call(user(USE_EDITED))
    assert str(refused.value) == (
        "edited_here (f differs) changed on disk since it was imported: the target would run the "
        "file, this process runs the code in memory; importlib.reload(edited_here) (or use "
        "%autoreload) and ship again")
    assert edited.g() == 2  # what runs here
    importlib.reload(edited)
    assert edited.g() == 101 and kernel.call(user(USE_EDITED)) == 101


def test_after_shipping_the_target_keeps_running_what_runs_here(kernel, modules):
    modules("edited_here", EDITABLE)
    (edited,) = modules.use("edited_here")
    assert kernel.call(user(USE_EDITED)) == 2
    modules("edited_here", EDITABLE.replace("return 1", "return 100"), later=2)
    assert kernel.call(user(USE_EDITED)) == edited.g() == 2  # not 101
    with connect(kernel.channel.manager, timeout=30) as other:  # never got the old source
        with pytest.raises(ModuleChangedOnDisk, match=r"^edited_here \(f differs\) changed"):
            other.call(user(USE_EDITED))
    importlib.reload(edited)
    assert kernel.call(user(USE_EDITED)) == edited.g() == 101


def test_a_syntax_error_on_disk_is_refused_while_the_code_here_works(kernel, modules):
    modules("edited_here", EDITABLE)
    (edited,) = modules.use("edited_here")
    modules("edited_here", EDITABLE.replace("def g():", "def g(:"), later=2)
    with pytest.raises(ModuleChangedOnDisk, match=(
            r"^edited_here \(does not compile: [^\n]+ \(line 5\)\) changed on disk since it was "
            r"imported: the target would run the file, this process runs the code in memory; fix "
            r"its file, then importlib\.reload\(edited_here\) \(or use %autoreload\) and ship "
            r"again$")):
        kernel.call(user(USE_EDITED))
    assert edited.g() == 2
    modules("edited_here", EDITABLE, later=4)  # fixed: the file holds the code running here again
    assert kernel.call(user(USE_EDITED)) == 2


def test_a_module_level_edit_made_before_anything_of_ours_looked_is_refused(kernel, modules):
    modules("constants_here", "LIMIT = 10\n\ndef limit():\n    return LIMIT\n")
    (constants,) = modules.use("constants_here")
    modules("constants_here", "LIMIT = 99\n\ndef limit():\n    return LIMIT\n", later=2)
    use = user("def use():\n    import constants_here\n    return constants_here.limit()")
    with pytest.raises(ModuleChangedOnDisk, match=r"^constants_here \(module-level code differs\)"):
        kernel.call(use)
    importlib.reload(constants)
    assert kernel.call(use) == 99


def test_edits_that_change_no_code_are_shipped_without_refusal(kernel, modules):
    modules("reloaded_here", EDITABLE)
    modules.use("reloaded_here")
    start = len(kernel.sources.shipments)
    assert kernel.call(user(USE_RELOADED)) == 2
    modules("reloaded_here", "# a comment, a blank line, and the same code\n\n" + EDITABLE, later=2)
    assert kernel.call(user(USE_RELOADED)) == 2
    assert kernel.sources.shipments[start:] == [["reloaded_here"], ["reloaded_here"]]


def test_autoreload_patching_in_place_ships_what_runs_here(modules):
    """IPython's %autoreload 2 patches functions and globals in place (same __spec__): each
    edit it applies is shipped, none is refused, the target computes what this process does."""
    modules("autoreloaded", "LIMIT = 10\n\ndef limit():\n    return LIMIT\n")
    with loaded_shell(modules.root) as ip:
        ok(run(ip, "%load_ext autoreload\n%autoreload 2\nimport autoreloaded")[0])
        ok(run(ip, "%pickle_by_value autoreloaded")[0])
        use = "def use():\n    import autoreloaded\n    return autoreloaded.limit()\nuse()"
        try:
            assert ok(ship(ip, use)[0]) == 10
            for later, source, value in (
                    (2, "LIMIT = 99\n\ndef limit():\n    return LIMIT\n", 99),
                    (4, "LIMIT = 99\n\ndef limit():\n    return LIMIT + twice(1)\n\n"
                        "def twice(x):\n    return 2 * x\n", 101)):
                modules("autoreloaded", source, later=later)
                assert ok(run(ip, "autoreloaded.limit()")[0]) == value  # reloaded here
                assert ok(ship(ip, use)[0]) == value
        finally:
            run(ip, "%autoreload 0")
