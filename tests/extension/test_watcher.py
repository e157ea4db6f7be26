"""The watcher in a real IPython shell: modules written to a temporary working directory, imported in
cells, edited on disk (mtimes bumped with ``os.utime``, never by sleeping), registered by value, and
their functions loaded in a fresh process where the module cannot be imported.

The shell is process-wide: every test leaves the extension unloaded, autoreload off, and
``sys.modules``, ``sys.path``, the user namespace and the by-value registry as it found them.
"""
import importlib.util
import json
import os
import sys
import textwrap

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython

from cloudpickle_ipy import core
from cloudpickle_ipy.extension import state_of
from cloudpickle_ipy.watcher import editable_source_folders
from tests.fresh import FreshProcessError, load_fresh
from tests.fs_calls import FileSystemCalls

EXT = "cloudpickle_ipy"
PICKLE = ("from cloudpickle_ipy.extension import state_of\n"
          "state_of(get_ipython()).before_pickling()\n"
          "from cloudpickle_ipy.core import dumps\n")


def _global_shell():
    if InteractiveShell.initialized():  # another test module may have made it first
        return InteractiveShell.instance()
    return start_ipython() or InteractiveShell.instance()


@pytest.fixture
def ip(monkeypatch, tmp_path):
    """The global shell with the extension loaded fresh, cwd = ``tmp_path/work`` (on sys.path)."""
    shell = _global_shell()
    if EXT in shell.extension_manager.loaded:
        shell.run_line_magic("unload_ext", EXT)
    modules, names = set(sys.modules), set(shell.user_ns)
    registry = core.list_registry_pickle_by_value()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "path", [str(work)] + sys.path)
    shell.run_line_magic("load_ext", EXT)
    yield shell
    if EXT in shell.extension_manager.loaded:
        shell.run_line_magic("unload_ext", EXT)
    if "autoreload" in shell.magics_manager.magics["line"]:
        shell.run_line_magic("autoreload", "0")
    for name in core.list_registry_pickle_by_value() - registry:
        core.unregister_pickle_by_value(sys.modules[name])
    for name in set(sys.modules) - modules:
        if str(getattr(sys.modules[name], "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]
    for name in set(shell.user_ns) - names:
        del shell.user_ns[name]


def write(path, source, later=0):
    """Write a module file; an edit gets ``later`` more seconds of mtime than both the write and the
    previous version, so that checks seeing whole seconds (.pyc headers, autoreload) see it too, as
    they would a real edit made a moment later."""
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(textwrap.dedent(source))
    if later:
        mtime = max(previous, path.stat().st_mtime_ns) + later * 1_000_000_000
        os.utime(path, ns=(mtime, mtime))


def cell(ip, capsys, source):
    """Run a cell that must succeed; return the lines the extension printed."""
    result = ip.run_cell(textwrap.dedent(source))
    result.raise_error()
    out = capsys.readouterr().out
    return [line for line in out.splitlines() if line.startswith("cloudpickle_ipy:")]


def mylib(root, value=1, later=0):
    write(root / "mylib" / "__init__.py", f"""\
        from . import sub
        def f(x):
            return x + {value}
        """, later)
    if not (root / "mylib" / "sub.py").exists():
        write(root / "mylib" / "sub.py", """\
            def g(x):
                return x * 10
            """)


def stale(name):
    return (f"cloudpickle_ipy: {name} changed on disk after it was imported: the old code in "
            f"memory is what gets pickled; run %autoreload (after %load_ext autoreload) or "
            f"importlib.reload({name})")


def test_module_imported_in_the_pickling_cell_travels_by_value(ip, capsys, tmp_path):
    mylib(tmp_path / "work")
    lines = cell(ip, capsys, "import mylib\n" + PICKLE + "payload = dumps(mylib.f)")
    assert lines == ["cloudpickle_ipy: pickling mylib by value (edited in ./mylib)"]
    assert load_fresh(ip.user_ns["payload"], "obj(2)") == 3
    assert state_of(ip).reasons == {"mylib": "edited in ./mylib"}


def test_a_package_is_registered_once_by_its_top_level_name(ip, capsys, tmp_path):
    mylib(tmp_path / "work")
    lines = cell(ip, capsys, "from mylib.sub import g")
    lines += cell(ip, capsys, "import mylib.sub")
    lines += cell(ip, capsys, PICKLE + "payload = dumps(g)")
    assert lines == ["cloudpickle_ipy: pickling mylib by value (edited in ./mylib)"]
    assert {"mylib", "mylib.sub"} & core.list_registry_pickle_by_value() == {"mylib"}
    assert load_fresh(ip.user_ns["payload"], "obj(4)") == 40


def test_only_modules_under_watched_folders_are_registered(ip, capsys, tmp_path):
    mylib(tmp_path / "work")
    write(tmp_path / "elsewhere" / "helper.py", "def h():\n    return 'h'\n")
    sys.path.append(str(tmp_path / "elsewhere"))
    before = core.list_registry_pickle_by_value()
    lines = cell(ip, capsys, "import json, numpy, pytest, helper, mylib")
    lines += cell(ip, capsys, PICKLE + "payload = dumps(helper.h)")
    assert lines == ["cloudpickle_ipy: pickling mylib by value (edited in ./mylib)"]
    assert core.list_registry_pickle_by_value() - before == {"mylib"}
    with pytest.raises(FreshProcessError, match="No module named 'helper'"):
        load_fresh(ip.user_ns["payload"], "obj()")  # by reference: not importable there


def test_site_packages_inside_a_watched_folder_are_never_registered(ip, capsys, tmp_path):
    state_of(ip).watched_folders = [sys.prefix, "."]  # the venv itself, holding numpy and pytest
    mylib(tmp_path / "work")
    lines = cell(ip, capsys, "import numpy, pytest, json, mylib")
    lines += cell(ip, capsys, "1")
    assert lines == ["cloudpickle_ipy: pickling mylib by value (edited in ./mylib)"]
    assert {"numpy", "pytest", "json", "IPython"} & core.list_registry_pickle_by_value() == set()


def test_excluded_and_refused_modules_are_left_alone(ip, capsys, tmp_path):
    work = tmp_path / "work"
    state_of(ip).exclude = ["skip*"]
    write(work / "skipme.py", "X = 1\n")
    write(work / "other.py", "Y = 1\n")
    mylib(work)
    lines = cell(ip, capsys, "import skipme, mylib, other")
    lines += cell(ip, capsys, "1")
    assert lines == ["cloudpickle_ipy: pickling mylib by value (edited in ./mylib)",
                     "cloudpickle_ipy: pickling other by value (edited in ./other.py)"]
    lines = cell(ip, capsys, "%pickle_by_value -r mylib")
    write(work / "mylib" / "__init__.py", "from . import sub\ndef f(x):\n    return 0\n", later=2)
    lines += cell(ip, capsys, "import mylib.sub")
    lines += cell(ip, capsys, "1")
    assert lines == []
    assert {"skipme", "mylib"} & core.list_registry_pickle_by_value() == set()


def test_stale_code_in_memory_is_reported_once_per_change(ip, capsys, tmp_path):
    work = tmp_path / "work"
    mylib(work)
    cell(ip, capsys, "import mylib")
    assert cell(ip, capsys, "1") == ["cloudpickle_ipy: pickling mylib by value (edited in ./mylib)"]
    mylib(work, value=100, later=2)
    assert cell(ip, capsys, PICKLE + "payload = dumps(mylib.f)") == [stale("mylib")]
    assert load_fresh(ip.user_ns["payload"], "obj(2)") == 3  # the code in memory, as warned
    assert cell(ip, capsys, "2") == []
    write(work / "mylib" / "sub.py", "def g(x):\n    return -x\n", later=2)
    assert cell(ip, capsys, "3") == [stale("mylib.sub")]
    assert cell(ip, capsys, "import importlib; importlib.reload(mylib.sub)") == []
    assert cell(ip, capsys, PICKLE + "payload = dumps(mylib.sub.g)") == []
    assert load_fresh(ip.user_ns["payload"], "obj(2)") == -2
    ip.user_ns["edit"] = lambda: write(work / "mylib" / "sub.py", "def g(x):\n    return 0\n", 2)
    assert cell(ip, capsys, "edit(); importlib.reload(mylib.sub)") == []  # %%writefile, reload
    assert cell(ip, capsys, "4") == []


def test_no_stale_warning_when_autoreload_will_reload(ip, capsys, tmp_path):
    work = tmp_path / "work"
    mylib(work)
    cell(ip, capsys, "%load_ext autoreload\n%autoreload 2\nimport mylib")
    assert cell(ip, capsys, "1") == ["cloudpickle_ipy: pickling mylib by value (edited in ./mylib)"]
    mylib(work, value=100, later=2)
    assert cell(ip, capsys, "x = mylib.f(0)") == []
    assert ip.user_ns["x"] == 100  # autoreload did reload it
    assert cell(ip, capsys, PICKLE + "payload = dumps(mylib.f)") == []
    assert load_fresh(ip.user_ns["payload"], "obj(2)") == 102

    # %autoreload 1 reloads only %aimport-ed modules: mylib.sub is not one of them
    cell(ip, capsys, "%autoreload 1\n%aimport mylib")
    write(work / "mylib" / "__init__.py", "from . import sub\ndef f(x):\n    return 7\n", later=2)
    write(work / "mylib" / "sub.py", "def g(x):\n    return 7\n", later=2)
    assert cell(ip, capsys, "1") == [stale("mylib.sub")]


def test_deleted_renamed_and_broken_files_never_break_a_cell(ip, capsys, tmp_path):
    work = tmp_path / "work"
    mylib(work)
    write(work / "gone.py", "def k():\n    return 'k'\n")
    write(work / "moved.py", "def m():\n    return 'm'\n")
    cell(ip, capsys, "import mylib, gone, moved")
    assert len(cell(ip, capsys, "1")) == 3
    (work / "gone.py").unlink()
    (work / "moved.py").rename(work / "moved_away.py")
    write(work / "mylib" / "sub.py", "def g(x) return\n", later=2)
    assert cell(ip, capsys, "y = gone.k() + moved.m()") == [stale("mylib.sub")]
    assert cell(ip, capsys, PICKLE + "payload = dumps((gone.k, mylib.sub.g))") == []
    assert load_fresh(ip.user_ns["payload"], "obj[0]() + str(obj[1](2))") == "k20"
    write(work / "later.py", "Z = 1\n")
    assert cell(ip, capsys, "import later") == []
    assert cell(ip, capsys, "2") == [
        "cloudpickle_ipy: pickling later by value (edited in ./later.py)"]  # still watching


def test_a_module_elsewhere_that_changed_on_disk_is_registered(ip, capsys, tmp_path):
    write(tmp_path / "elsewhere" / "helper.py", "def h():\n    return 'old'\n")
    sys.path.append(str(tmp_path / "elsewhere"))
    assert cell(ip, capsys, "import helper") == []
    assert cell(ip, capsys, "1") == []
    write(tmp_path / "elsewhere" / "helper.py", "def h():\n    return 'new'\n", later=2)
    assert cell(ip, capsys, "2") == [
        "cloudpickle_ipy: pickling helper by value (helper changed on disk since it was imported)",
        stale("helper")]
    assert cell(ip, capsys, "import importlib; importlib.reload(helper)") == []
    assert cell(ip, capsys, PICKLE + "payload = dumps(helper.h)") == []
    assert load_fresh(ip.user_ns["payload"], "obj()") == "new"


def test_an_edit_made_before_the_watcher_first_looked_counts(ip, capsys, tmp_path, monkeypatch):
    """Imported before the extension was loaded, edited since: the .pyc header tells."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    write(tmp_path / "elsewhere" / "early.py", "def e():\n    return 1\n")
    sys.path.append(str(tmp_path / "elsewhere"))
    ip.run_line_magic("unload_ext", EXT)
    cell(ip, capsys, "import early")
    write(tmp_path / "elsewhere" / "early.py", "def e():\n    return 2\n", later=2)
    ip.run_line_magic("load_ext", EXT)
    assert cell(ip, capsys, "1") == [
        "cloudpickle_ipy: pickling early by value (early changed on disk since it was imported)",
        stale("early")]


def _fake_editable(site_dir, name, project, pth=None, mapping=None):
    """A ``*.dist-info`` as ``pip install -e`` leaves it, with setuptools' .pth or finder."""
    info = site_dir / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "direct_url.json").write_text(json.dumps(
        {"url": project.as_uri(), "dir_info": {"editable": True}}))
    record = [f"{info.name}/METADATA,,", f"{info.name}/direct_url.json,,"]
    if pth is not None:
        (site_dir / f"__editable__.{name}-0.1.pth").write_text(f"{pth}\n")
        record.append(f"__editable__.{name}-0.1.pth,,")
    if mapping is not None:
        finder = f"__editable___{name}_0_1_finder.py"
        (site_dir / finder).write_text(
            f"import sys\nMAPPING: dict[str, str] = {mapping!r}\nNAMESPACES = {{}}\n")
        record.append(f"{finder},,")
    (info / "RECORD").write_text("\n".join(record) + "\n")


def test_editable_install_sources_are_found(tmp_path, monkeypatch):
    site_dir, src_proj, flat_proj, bare = (tmp_path / d for d in ("site", "srcp", "flatp", "bare"))
    _fake_editable(site_dir, "srcp", src_proj, pth=src_proj / "src")
    _fake_editable(site_dir, "flatp", flat_proj, mapping={
        "flatpkg": str(flat_proj / "flatpkg"), "flatmod": str(flat_proj / "flatmod")})
    _fake_editable(site_dir, "bare", bare)
    monkeypatch.syspath_prepend(str(site_dir))
    folders, files = editable_source_folders()

    def watched(path):
        path = str(path)
        return path.startswith(folders) or path in files

    assert watched(src_proj / "src" / "srcpkg" / "__init__.py")
    assert not watched(src_proj / "tests" / "test_srcpkg.py")  # the project, not its source
    assert watched(flat_proj / "flatpkg" / "core.py")
    assert watched(flat_proj / "flatmod.py")
    assert not watched(flat_proj / "setup.py")
    assert watched(bare / "anything.py")  # no .pth nor finder: the project folder named by pip
    assert not watched(tmp_path / "elsewhere.py")


def test_a_module_of_an_editable_install_is_registered(ip, capsys, tmp_path, monkeypatch):
    project = tmp_path / "proj"
    write(project / "src" / "edpkg" / "__init__.py", "def e(x):\n    return x - 1\n")
    _fake_editable(tmp_path / "site", "edpkg", project, pth=project / "src")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    sys.path.append(str(project / "src"))
    lines = cell(ip, capsys, "import edpkg\n" + PICKLE + "payload = dumps(edpkg.e)")
    assert lines == [f"cloudpickle_ipy: pickling edpkg by value (edited in "
                     f"{project / 'src' / 'edpkg'}, an editable install)"]
    assert load_fresh(ip.user_ns["payload"], "obj(5)") == 4


def test_editable_installs_unwatched_on_request(ip, capsys, tmp_path, monkeypatch):
    project = tmp_path / "proj"
    write(project / "src" / "edpkg2" / "__init__.py", "X = 1\n")
    _fake_editable(tmp_path / "site", "edpkg2", project, pth=project / "src")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    sys.path.append(str(project / "src"))
    state_of(ip).watch_editable_installs = False
    write(tmp_path / "work" / "local.py", "Y = 1\n")
    assert cell(ip, capsys, "import edpkg2, local") == []
    assert cell(ip, capsys, "1") == [
        "cloudpickle_ipy: pickling local by value (edited in ./local.py)"]


def many_modules(folder, count):
    """``count`` modules ``m0``... in ``folder`` (put on sys.path)."""
    for i in range(count):
        write(folder / f"m{i}.py", f"def f():\n    return {i}\n")
    sys.path.append(str(folder))
    return [f"m{i}" for i in range(count)]


def test_many_modules_registered_at_once_make_one_line(ip, capsys, tmp_path):
    names = many_modules(tmp_path / "work" / "pkgs", 300)
    ip.user_ns["names"] = names
    assert cell(ip, capsys, "import importlib\nfor n in names: importlib.import_module(n)") == []
    assert cell(ip, capsys, "1") == [
        "cloudpickle_ipy: pickling 300 modules by value (edited in ./pkgs): m0, m1, m2, m3, m4, "
        "... (see %pickle_by_value)"]
    assert set(names) <= core.list_registry_pickle_by_value()
    assert state_of(ip).reasons["m7"] == "edited in ./pkgs/m7.py"  # each keeps its own reason
    write(tmp_path / "work" / "few.py", "X = 1\n")  # a few at once: a line each, as always
    assert cell(ip, capsys, "import few") == []
    assert cell(ip, capsys, "2") == ["cloudpickle_ipy: pickling few by value (edited in ./few.py)"]


def test_a_check_with_nothing_changed_reads_and_stats_no_module_file(ip, capsys, tmp_path):
    from cloudpickle_ipy import filechanges, ondisk, watcher

    names = many_modules(tmp_path / "work" / "pkgs", 300)
    ip.user_ns["names"] = names
    cell(ip, capsys, "import importlib\nfor n in names: importlib.import_module(n)")
    assert len(cell(ip, capsys, "1")) == 1
    state = state_of(ip)
    for _ in range(3):  # a few checks: the sweep of sys.modules goes on, the files stay untouched
        with FileSystemCalls(watcher, ondisk, filechanges) as calls:
            state.pre_run_cell()
        assert (calls.stats, calls.opened, calls.listed) == (0, [], [])
    write(tmp_path / "work" / "pkgs" / "m42.py", "def f():\n    return -42\n", later=2)
    with FileSystemCalls(watcher, ondisk, filechanges) as calls:
        lines = cell(ip, capsys, "3")
    assert lines == [stale("m42")] and calls.stats <= 2 and calls.opened == []


def test_many_modules_edited_at_once_make_one_stale_line(ip, capsys, tmp_path):
    names = many_modules(tmp_path / "work" / "pkgs", 20)
    ip.user_ns["names"] = names
    cell(ip, capsys, "import importlib\nfor n in names: importlib.import_module(n)")
    assert len(cell(ip, capsys, "1")) == 1
    for i in range(12):  # a checkout of another branch, say
        write(tmp_path / "work" / "pkgs" / f"m{i}.py", f"def f():\n    return {-i}\n", later=2)
    lines = cell(ip, capsys, "2")
    assert len(lines) == 1 and lines[0].startswith(
        "cloudpickle_ipy: 12 modules changed on disk after they were imported (m"), lines
    assert lines[0].endswith(": the old code in memory is what gets pickled; run %autoreload "
                             "(after %load_ext autoreload) or importlib.reload() them")
    assert cell(ip, capsys, "3") == []  # said once


def test_a_module_swapped_in_place_in_sys_modules_is_seen(ip, capsys, tmp_path):
    write(tmp_path / "elsewhere" / "swapped.py", "X = 'installed'\n")
    sys.path.append(str(tmp_path / "elsewhere"))
    cell(ip, capsys, "import swapped")
    assert cell(ip, capsys, "1") == []  # not under a watched folder
    write(tmp_path / "work" / "local_copy.py", "X = 'local'\n")
    ip.user_ns["spec"] = importlib.util.spec_from_file_location(
        "swapped", tmp_path / "work" / "local_copy.py")
    cell(ip, capsys, """\
        import importlib.util, sys
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["swapped"] = module   # replaced where it stands, not appended
    """)
    lines = []
    for _ in range(len(sys.modules) // 32 + 2):  # the sweep covers sys.modules in these checks
        lines += cell(ip, capsys, "2")
    assert lines == ["cloudpickle_ipy: pickling swapped by value (edited in ./local_copy.py)"]


def test_a_folder_moved_away_and_put_back_is_followed_again(ip, capsys, tmp_path):
    folder = tmp_path / "work" / "pkgs"
    write(folder / "moved.py", "def f():\n    return 1\n")
    sys.path.append(str(folder))
    cell(ip, capsys, "import moved")
    assert cell(ip, capsys, "1") == [
        "cloudpickle_ipy: pickling moved by value (edited in ./pkgs/moved.py)"]
    folder.rename(tmp_path / "work" / "pkgs_before")  # a checkout of another branch, say
    assert cell(ip, capsys, "2") == []  # gone: the code in memory is all there is
    write(folder / "moved.py", "def f():\n    return 2\n", later=2)
    assert cell(ip, capsys, "3") == [stale("moved")]
    write(folder / "moved.py", "def f():\n    return 3\n", later=4)
    assert cell(ip, capsys, "4") == [stale("moved")]
