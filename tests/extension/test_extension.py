"""The extension in a real IPython shell: loading and unloading, configuration (``%config``, a
profile's ``ipython_config.py`` in the terminal and in a kernel) and the ``%pickle_by_value`` magic.

The shell is process-wide, so every test leaves it as it found it: extension unloaded, ``%config``
settings, ``sys.modules``, ``sys.path``, the working directory and the by-value registry restored.
"""
import copy
import html.parser
import importlib.machinery
import os
import subprocess
import sys
import textwrap
import warnings

import pytest
from IPython.core.completer import provisionalcompleter
from IPython.core.formatters import DisplayFormatter
from IPython.core.interactiveshell import InteractiveShell
from IPython.testing.globalipapp import start_ipython
from IPython.utils.capture import capture_output

import cloudpickle_ipy
from cloudpickle_ipy import core
from cloudpickle_ipy.extension import CloudpickleIPy, state_of
from cloudpickle_ipy.magics import PickleByValueMagics
from tests.fresh import FreshProcessError, load_fresh

EXT = "cloudpickle_ipy"


def _global_shell():
    if InteractiveShell.initialized():  # another test module may have made it first
        return InteractiveShell.instance()
    return start_ipython() or InteractiveShell.instance()


def _snapshot(ip):
    """Every place where the extension hooks into a shell."""
    return {
        "callbacks": {event: list(cbs) for event, cbs in ip.events.callbacks.items()},
        "line magics": set(ip.magics_manager.magics["line"]),
        "cell magics": set(ip.magics_manager.magics["cell"]),
        "magics registry": set(ip.magics_manager.registry),
        "configurables": list(map(id, ip.configurables)),
        "completers": set(ip.strdispatchers["complete_command"].strs),
    }


@pytest.fixture
def ip(monkeypatch, tmp_path):
    """The global shell with the extension unloaded; everything a test changes is undone."""
    shell = _global_shell()
    if EXT in shell.extension_manager.loaded:
        shell.run_line_magic("unload_ext", EXT)
    config = copy.deepcopy(shell.config)
    modules = set(sys.modules)
    registry = set(core.list_registry_pickle_by_value())
    (tmp_path / "cwd").mkdir()  # the watcher's folder: empty, so only the magic registers here
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield shell
    if EXT in shell.extension_manager.loaded:
        shell.run_line_magic("unload_ext", EXT)
    now = set(core.list_registry_pickle_by_value())
    for name in now - registry:
        core.unregister_pickle_by_value(sys.modules[name])
    for name in registry - now:
        core.register_pickle_by_value(sys.modules[name])
    for name in set(sys.modules) - modules:  # only the test's own modules: IPython imports lazily
        if str(getattr(sys.modules[name], "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]
    shell.config.clear()
    shell.config.update(config)


@pytest.fixture
def loaded(ip):
    ip.run_line_magic("load_ext", EXT)
    return ip


def run(ip, cell):
    """Run ``cell`` as a user would; return (result, stdout, stderr)."""
    with capture_output() as out:
        result = ip.run_cell(cell)
    return result, out.stdout, out.stderr


def write_module(folder, name, source):
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def our_callbacks(ip):
    return [cb for cb in ip.events.callbacks["pre_run_cell"]
            if isinstance(getattr(cb, "__self__", None), CloudpickleIPy)]


def count_checks(ip):
    """Count the watcher checks that the extension's pre_run_cell callback makes."""
    calls = []
    state_of(ip).watcher.check = lambda: calls.append(1)
    return calls


# --- loading ------------------------------------------------------------------------------------

def test_load_ext_registers_magic_callback_configurable_and_completer(ip):
    before = _snapshot(ip)
    result, _, err = run(ip, f"%load_ext {EXT}")
    assert result.success and err == ""
    after = _snapshot(ip)
    assert after["line magics"] - before["line magics"] == {
        "pickle_by_value", "cloudpickle_target", "cloudpickle_push", "cloudpickle_pull"}
    assert after["cell magics"] - before["cell magics"] == {"cloudpickle_ship"}
    assert len(our_callbacks(ip)) == 1
    assert [type(c) for c in ip.configurables].count(CloudpickleIPy) == 1
    assert after["completers"] - before["completers"] == {
        "%pickle_by_value", "%%cloudpickle_ship", "%cloudpickle_push", "%cloudpickle_pull"}
    _, out, _ = run(ip, "%config")
    assert "CloudpickleIPy" in out
    calls = count_checks(ip)
    run(ip, "x = 1")
    assert calls == [1]  # the watcher runs before every cell


def test_unload_ext_removes_every_hook(ip):
    before = _snapshot(ip)
    ip.run_line_magic("load_ext", EXT)
    state = state_of(ip)
    result, _, err = run(ip, f"%unload_ext {EXT}")
    assert result.success and err == ""
    assert _snapshot(ip) == before
    assert state_of(ip) is None and state not in ip.configurables
    assert not any(isinstance(c, (CloudpickleIPy, PickleByValueMagics)) for c in ip.configurables)
    _, out, _ = run(ip, "%config")
    assert "CloudpickleIPy" not in out and "PickleByValueMagics" not in out
    result, _, err = run(ip, "%pickle_by_value")
    assert not result.success and "pickle_by_value" in err
    assert "json" not in _completions(ip, "%pickle_by_value js")


def test_reload_ext_leaves_one_of_each(ip):
    before = _snapshot(ip)
    ip.run_line_magic("load_ext", EXT)
    loaded_once = _snapshot(ip)
    result, _, err = run(ip, f"%reload_ext {EXT}")
    assert result.success and err == ""
    after = _snapshot(ip)
    assert len(our_callbacks(ip)) == 1
    assert len(after["configurables"]) == len(loaded_once["configurables"])
    assert after["line magics"] == loaded_once["line magics"]
    assert after["completers"] == loaded_once["completers"]
    calls = count_checks(ip)
    run(ip, "x = 1")
    assert calls == [1]
    assert ip.magics_manager.registry["PickleByValueMagics"].state is state_of(ip)
    ip.run_line_magic("unload_ext", EXT)
    assert _snapshot(ip) == before


def test_reload_ext_keeps_why_modules_are_pickled_by_value(loaded, libs):
    run(loaded, "%pickle_by_value mylib")
    run(loaded, f"%reload_ext {EXT}")
    _, out, _ = run(loaded, "%pickle_by_value")
    row = next(line for line in out.splitlines() if line.startswith("mylib "))
    assert row.endswith("registered with %pickle_by_value")


def test_load_ext_twice_is_harmless(loaded):
    result, _, err = run(loaded, f"%load_ext {EXT}")
    assert result.success
    assert len(our_callbacks(loaded)) == 1


# --- configuration ------------------------------------------------------------------------------

def test_config_lists_the_traits_with_their_help(loaded):
    _, out, _ = run(loaded, "%config CloudpickleIPy")
    for trait in ("watch", "watched_folders", "watch_editable_installs", "exclude"):
        assert f"CloudpickleIPy.{trait}=" in out
    assert "Current: True" in out and "Current: ['.']" in out
    assert "pip install -e" in " ".join(out.split()) and "fnmatch" in out


def test_config_watch_false_stops_the_watcher_and_true_restarts_it(loaded):
    calls = count_checks(loaded)
    result, _, err = run(loaded, "%config CloudpickleIPy.watch = False")
    assert result.success and err == ""
    assert state_of(loaded).watch is False
    calls.clear()  # the %config cell itself was checked before it ran
    run(loaded, "x = 1")
    run(loaded, "x = 2")
    assert calls == []
    run(loaded, "%config CloudpickleIPy.watch = True")
    assert calls == []
    run(loaded, "x = 3")
    assert calls == [1]


def test_config_exclude_and_folders_take_effect(loaded):
    run(loaded, "%config CloudpickleIPy.exclude = ['mylib.vendored*']")
    run(loaded, "%config CloudpickleIPy.watched_folders = ['src', '/data']")
    state = state_of(loaded)
    assert state.exclude == ["mylib.vendored*"]
    assert state.watched_folders == ["src", "/data"]
    _, out, _ = run(loaded, "%config CloudpickleIPy")
    assert "Current: ['mylib.vendored*']" in out


def test_config_set_before_loading_applies_when_loaded(ip):
    assert run(ip, "%config CloudpickleIPy.watch = False")[0].success
    ip.run_line_magic("load_ext", EXT)
    assert state_of(ip).watch is False


PROFILE_CONFIG = """\
c.InteractiveShellApp.extensions = ["cloudpickle_ipy"]
c.CloudpickleIPy.exclude = ["secret_*"]
c.CloudpickleIPy.watch = False
"""

# Prints what proves the extension and the profile's settings are active in that shell.
PROBE = ("ip = get_ipython(); from cloudpickle_ipy.extension import state_of; s = state_of(ip); "
         "print('LOADED', 'cloudpickle_ipy' in ip.extension_manager.loaded, "
         "'pickle_by_value' in ip.magics_manager.magics['line'], s.exclude, s.watch)")
EXPECTED = "LOADED True True ['secret_*'] False"


@pytest.fixture
def profile(tmp_path):
    profile_dir = tmp_path / "profile_test"
    profile_dir.mkdir()
    (profile_dir / "ipython_config.py").write_text(PROFILE_CONFIG)
    (profile_dir / "ipython_kernel_config.py").write_text(PROFILE_CONFIG)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env["IPYTHONDIR"] = str(tmp_path / "ipython_dir")
    return profile_dir, env


def test_profile_loads_extension_with_its_config_in_the_terminal(profile):
    profile_dir, env = profile
    proc = subprocess.run(
        [sys.executable, "-m", "IPython", f"--profile-dir={profile_dir}", "--no-banner",
         "--HistoryManager.enabled=False", "-c", PROBE],
        capture_output=True, text=True, env=env, cwd=profile_dir.parent, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert EXPECTED in proc.stdout, proc.stdout + proc.stderr


def test_profile_loads_extension_with_its_config_in_a_kernel(profile):
    from jupyter_client.manager import start_new_kernel

    profile_dir, env = profile
    km, kc = start_new_kernel(kernel_name="python3", startup_timeout=120, env=env,
                              cwd=str(profile_dir.parent),
                              extra_arguments=["--profile-dir", str(profile_dir)])
    try:
        out = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append("\n".join(msg["content"]["traceback"]))

        reply = kc.execute_interactive(PROBE, output_hook=hook, timeout=120)
        assert reply["content"]["status"] == "ok", "".join(out)
        assert EXPECTED in "".join(out)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# --- %pickle_by_value ---------------------------------------------------------------------------

@pytest.fixture
def libs(loaded, tmp_path):
    """``mylib`` (uses ``helper``, both not imported yet) in a folder on this process's path only
    (not under the working directory: the watcher leaves them alone)."""
    folder = tmp_path / "lib"
    folder.mkdir()
    write_module(folder, "helper", """\
        SCALE = 3
        def scale(x):
            return x * SCALE
        """)
    write_module(folder, "mylib", """\
        import helper
        def compute(x):
            return helper.scale(x) + 1
        """)
    sys.path.insert(0, str(folder))
    return folder


def test_registers_imports_first_and_the_function_runs_in_a_fresh_process(loaded, libs):
    result, out, err = run(loaded, "%pickle_by_value mylib helper")
    assert result.success and (out, err) == ("", "")
    assert {"mylib", "helper"} <= set(core.list_registry_pickle_by_value())
    mylib = sys.modules["mylib"]
    assert load_fresh(cloudpickle_ipy.dumps(mylib.compute), "obj(4)") == 13


def test_without_registration_the_fresh_process_cannot_load_it(loaded, libs):
    """What %pickle_by_value is for: without it, mylib.compute travels by name."""
    mylib = __import__("mylib")
    with pytest.raises(FreshProcessError, match="No module named 'mylib'"):
        load_fresh(cloudpickle_ipy.dumps(mylib.compute), "obj(4)")


def _c_extension():
    for name in ("_json", "_decimal", "_csv", "_bisect", "math", "array"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        path = getattr(module, "__file__", "") or ""
        if path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            return name
    raise AssertionError("no C extension module with a file in this build")


@pytest.mark.parametrize("bad, why", [
    ("no_such_module_zz", "cannot import no_such_module_zz: ModuleNotFoundError"),
    ("broken", "cannot import broken: ZeroDivisionError"),
    (_c_extension(), "is a C extension"),
    ("sys", "sys is built into Python"),
])
def test_a_bad_name_is_a_one_line_error_and_registers_nothing_from_the_line(loaded, libs, bad, why):
    write_module(libs, "broken", "1 / 0\n")
    registry = set(core.list_registry_pickle_by_value())
    for line in (f"%pickle_by_value mylib {bad}", f"%pickle_by_value {bad} mylib"):
        result, out, err = run(loaded, line)
        assert not result.success
        assert err.strip().splitlines() == [err.strip()], err  # one line, no traceback
        assert err.startswith("UsageError: %pickle_by_value: ") and why in err, err
        assert set(core.list_registry_pickle_by_value()) == registry


def test_dash_r_unregisters(loaded, libs):
    run(loaded, "%pickle_by_value mylib helper")
    result, _, err = run(loaded, "%pickle_by_value -r helper")
    assert result.success and err == ""
    assert "helper" not in core.list_registry_pickle_by_value()
    assert "mylib" in core.list_registry_pickle_by_value()
    payload = cloudpickle_ipy.dumps(sys.modules["mylib"].compute)
    with pytest.raises(FreshProcessError, match="No module named 'helper'"):
        load_fresh(payload, "obj(4)")
    result, _, err = run(loaded, "%pickle_by_value -r helper")
    assert not result.success and "helper is not pickled by value" in err
    run(loaded, "%pickle_by_value helper")  # registering by hand again is allowed
    assert load_fresh(cloudpickle_ipy.dumps(sys.modules["mylib"].compute), "obj(4)") == 13


class _Table(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.rows[-1].append(self._cell)
            self._cell = None


def test_listing_in_a_terminal_and_in_a_notebook(loaded, libs, monkeypatch):
    monkeypatch.chdir(libs)
    run(loaded, "%pickle_by_value mylib helper")
    core.register_pickle_by_value(__import__("json"))
    listing = loaded.run_line_magic("pickle_by_value", "")

    _, out, _ = run(loaded, "%pickle_by_value")  # the terminal shows the plain-text repr
    lines = [line.split() for line in out.splitlines() if line.strip() and "Out[" not in line]
    rows = {line[0]: line for line in lines[1:]}
    assert lines[0][-3:] == ["module", "file", "why"]
    assert rows["mylib"][1:] == ["./mylib.py", "registered", "with", "%pickle_by_value"]
    assert rows["helper"][1] == "./helper.py"
    assert rows["json"][1].endswith(os.path.join("json", "__init__.py"))
    assert rows["json"][2:] == ["registered", "with", "register_pickle_by_value()"]

    data, _ = DisplayFormatter().format(listing)  # a kernel's formatter; notebooks show HTML
    table = _Table()
    table.feed(data["text/html"])
    assert table.rows[0] == ["module", "file", "why"]
    html_rows = {row[0]: row for row in table.rows[1:]}
    assert html_rows["mylib"] == ["mylib", "./mylib.py", "registered with %pickle_by_value"]
    assert html_rows["json"][2] == "registered with register_pickle_by_value()"
    assert data["text/plain"] == repr(listing)


def test_listing_when_nothing_is_registered(loaded):
    for name in core.list_registry_pickle_by_value():
        core.unregister_pickle_by_value(sys.modules[name])
    listing = loaded.run_line_magic("pickle_by_value", "")
    assert repr(listing) == "No module is pickled by value."
    assert "No module is pickled by value." in listing._repr_html_()


def test_question_mark_shows_the_help(loaded):
    result, out, err = run(loaded, "%pickle_by_value?")
    assert result.success and err == ""
    assert "%pickle_by_value [-r] [modules ...]" in out
    assert "%pickle_by_value -r mylib" in out and "--remove" in out
    assert "list what is pickled by value" in out


def _completions(ip, line):
    with warnings.catch_warnings():  # IPython: Completer.complete is "pending deprecation"
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return ip.complete("", line, len(line))[1]


def test_module_names_tab_complete(loaded, libs):
    names = _completions(loaded, "%pickle_by_value js")
    assert "json" in names and all(n.startswith("js") for n in names)
    assert "json.decoder" in _completions(loaded, "%pickle_by_value json.d")
    assert "mylib" in _completions(loaded, "%pickle_by_value myl")  # importable, not imported
    assert "mylib" in _completions(loaded, "%pickle_by_value -r myl")
    assert "helper" in _completions(loaded, "%pickle_by_value mylib hel")
    line = "%pickle_by_value js"  # the API that Jupyter frontends use
    with provisionalcompleter():
        assert "json" in [c.text for c in loaded.Completer.completions(line, len(line))]
