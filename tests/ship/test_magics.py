"""``%%cloudpickle_ship``, ``%cloudpickle_push`` and ``%cloudpickle_pull`` in a real IPython shell,
on a real ``local`` kernel that the extension starts once and reuses for every cell."""
import contextlib
import os
import sys
import textwrap
import threading
import time

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from cloudpickle_ipy import core
from cloudpickle_ipy.extension import state_of
from cloudpickle_ipy.magics import RemoteCellError
from tests.extension.test_extension import _global_shell

EXT = "cloudpickle_ipy"


@contextlib.contextmanager
def loaded_shell(folder):
    """The global shell with the extension loaded, working in the empty ``folder`` (so the
    watcher registers nothing of its own); afterwards the extension is unloaded (which shuts
    down its local kernels) and the working directory and by-value registry are restored."""
    shell = _global_shell()
    if EXT in shell.extension_manager.loaded:
        shell.run_line_magic("unload_ext", EXT)
    cwd, registry = os.getcwd(), set(core.list_registry_pickle_by_value())
    os.chdir(folder)
    shell.run_line_magic("load_ext", EXT)
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", EXT)
        os.chdir(cwd)
        for name in set(core.list_registry_pickle_by_value()) - registry:
            core.unregister_pickle_by_value(sys.modules[name])


@pytest.fixture(scope="module")
def ip(tmp_path_factory):
    with loaded_shell(tmp_path_factory.mktemp("cwd")) as shell:
        local = state_of(shell).targets.get("local")
        yield shell
    assert not local.alive  # %unload_ext shut it down


def run(ip, cell):
    """Run ``cell`` as a user would; return (result, stdout, stderr)."""
    with capture_output() as out:
        result = ip.run_cell(textwrap.dedent(cell))
    return result, out.stdout, out.stderr


def ship(ip, cell, options=""):
    return run(ip, f"%%cloudpickle_ship local {options}\n" + textwrap.dedent(cell))


def ok(result):
    assert result.error_in_exec is None and result.error_before_exec is None, result
    return result.result


def test_cell_runs_on_the_target_and_its_value_is_the_cell_result(ip):
    pid = ok(ship(ip, "import os\nos.getpid()")[0])
    result, out, _ = ship(ip, "print('from the target')\nimport os\nos.getpid()")
    assert ok(result) == pid != __import__("os").getpid()  # same kernel for every cell
    assert "from the target" in out and f"Out[{ip.execution_count - 1}]: {pid}" in out
    assert ip.user_ns["_"] == pid and ip.user_ns["Out"][ip.execution_count - 1] == pid


def test_pushes_what_the_cell_reads_and_not_what_it_assigns_first(ip):
    run(ip, """
        square = lambda x: x * x
        class Box:
            def __init__(self, v):
                self.v = v
        data = [1, 2, 3]
    """)
    ip.user_ns["own"] = threading.Lock()  # cannot be pickled: pushing it would fail the cell
    result, _, _ = ship(ip, """
        had_own = "own" in globals()
        own = 10
        box = Box(square(own) + sum(data))
        box.v, type(box).__module__, had_own
    """)
    assert ok(result) == (106, "__main__", False)
    assert isinstance(ip.user_ns["own"], type(threading.Lock()))  # untouched here


def test_output_name_and_pull(ip):
    result, _, _ = ship(ip, "made_there = [1, 2]\nalso = 'x'\nlen(made_there)",
                       "-o stored --pull made_there,also")
    assert ok(result) == 2 and ip.user_ns["stored"] == 2
    assert ip.user_ns["made_there"] == [1, 2] and ip.user_ns["also"] == "x"


def test_no_push_and_push(ip):
    ip.user_ns.update(secret=5, extra=6)
    result, _, _ = ship(ip, "'secret' in globals()", "--no-push")
    assert ok(result) is False
    assert ok(ship(ip, "secret + globals()['extra']", "--no-push --push secret,extra")[0]) == 11
    result, _, err = ship(ip, "1", "--push nowhere_defined")
    assert isinstance(result.error_in_exec, UsageError)
    assert "--push: not defined here: nowhere_defined" in err


def test_local_runs_the_cell_here_first(ip):
    result, _, _ = ship(ip, "both = 40 + 2\nboth", "--local")
    assert ok(result) == 42 and ip.user_ns["both"] == 42
    result, _, _ = ship(ip, "ran_there = 1\n1 / 0", "--local")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert ip.user_ns["ran_there"] == 1 and ok(ship(ip, "'ran_there' in globals()")[0]) is False


def test_error_on_the_target_raises_here_with_the_target_traceback(ip):
    result, out, _ = ship(ip, """
        def inner():
            return 1 / 0
        inner()
    """)
    assert isinstance(result.error_in_exec, RemoteCellError)
    assert result.error_in_exec.ename == "ZeroDivisionError"
    assert "Traceback on the target local (most recent call last):" in out
    assert "return 1 / 0" in out and "ZeroDivisionError: division by zero" in out
    assert "magics.py" not in out and "kernel.py" not in out  # the remote stack alone


def test_timeout_gives_a_clear_error_in_time(ip):
    start = time.monotonic()
    result, _, err = ship(ip, "import time\ntime.sleep(5)", "--timeout 0.5")
    assert time.monotonic() - start < 3.5  # stopped, not waited for
    assert isinstance(result.error_in_exec, UsageError)
    assert "no answer from the kernel within 0.5 s" in err and len(err.strip().splitlines()) == 1


def test_module_edited_on_disk_between_shipments(ip, tmp_path, monkeypatch):
    (tmp_path / "shipped_mod.py").write_text("def value():\n    return 'old'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cell = """
        def use():
            import shipped_mod
            return shipped_mod.value()
        use()
    """
    try:
        run(ip, "import shipped_mod\n%pickle_by_value shipped_mod")
        assert ok(ship(ip, cell)[0]) == "old"
        (tmp_path / "shipped_mod.py").write_text("def value():\n    return 'new'\n")
        assert ok(ship(ip, cell)[0]) == "old"  # not reloaded: what runs here runs there
        run(ip, "import importlib; importlib.reload(shipped_mod)")
        assert ok(ship(ip, cell)[0]) == "new"
    finally:
        core.unregister_pickle_by_value(sys.modules["shipped_mod"])
        del sys.modules["shipped_mod"]
        ip.user_ns.pop("shipped_mod", None)


def test_push_and_pull_magics(ip):
    ip.user_ns["pushed_fn"] = lambda: 7
    ok(run(ip, "%cloudpickle_push local pushed_fn")[0])
    ok(ship(ip, "pulled_value = pushed_fn() * 6", "--no-push")[0])
    ok(run(ip, "%cloudpickle_pull local pulled_value")[0])
    assert ip.user_ns["pulled_value"] == 42
    result, _, err = run(ip, "%cloudpickle_pull local not_there")
    assert isinstance(result.error_in_exec, UsageError)
    assert err.strip() == ("UsageError: %cloudpickle_pull: NameError: not defined on the "
                           "target: not_there")
    result, _, err = run(ip, "%cloudpickle_push local not_here")
    assert "not defined here: not_here" in err


def test_pushing_something_unpicklable_names_the_users_name(ip):
    ip.user_ns["lk"] = threading.Lock()
    result, _, err = ship(ip, "lk.locked()")
    assert isinstance(result.error_in_exec, UsageError)
    assert err.strip().splitlines() == ["UsageError: %%cloudpickle_ship: cannot push: cannot "
                                        "pickle '_thread.lock' object: found at lk"]


def test_ctrl_c_is_one_line(ip):
    import _thread

    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    try:
        result, out, err = ship(ip, "import time\ntime.sleep(30)\nnever = 1")
    finally:
        timer.join()
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert (out + err).strip().splitlines() == ["interrupted; the run on the target was "
                                                "interrupted too"]
    assert ok(ship(ip, "'never' in globals()")[0]) is False


def test_a_result_whose_class_exists_only_on_the_target_is_one_line(ip, tmp_path):
    # The module is written on the target's side only: this process cannot import it.
    result, _, err = ship(ip, f"""
        import pathlib, sys
        folder = pathlib.Path({str(tmp_path / "there")!r})
        folder.mkdir()
        (folder / "only_there_mod.py").write_text("class Thing:\\n    pass\\n")
        sys.path.insert(0, str(folder))
        import only_there_mod
        only_there_mod.Thing()
    """)
    assert isinstance(result.error_in_exec, UsageError)
    assert err.strip().splitlines() == [
        "UsageError: %%cloudpickle_ship: the result holds only_there_mod.Thing, which exists on "
        "the target but not here: define it here and push it, or pickle its module by value "
        "(%pickle_by_value only_there_mod), before shipping"]
    assert ok(ship(ip, "1 + 1")[0]) == 2
