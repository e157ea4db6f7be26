"""The magics on server URLs, in a real IPython shell: aliases with options, the listing and errors
without the token, --push/--no-push/--pull/-o/--timeout, an edited (and reloaded) module shipped
again, and what %unload_ext shuts down (the kernel it started) and leaves up (a running kernel it
was given)."""
import sys
import time

import pytest
from IPython.core.error import UsageError

from cloudpickle_ipy import core
from cloudpickle_ipy.extension import state_of
from cloudpickle_ipy.magics import RemoteCellError
from tests.ship.test_magics import loaded_shell, ok, run


@pytest.fixture(scope="module")
def ip(tmp_path_factory, server):
    with loaded_shell(tmp_path_factory.mktemp("cwd")) as shell:
        yield shell


def ship(ip, cell, options=""):
    return run(ip, f"%%cloudpickle_ship lab {options}\n{cell}")


@pytest.fixture(scope="module")
def lab(ip, server):
    """The alias ``lab``: a kernel started on the server from its URL (the token in it)."""
    ok(run(ip, f"%cloudpickle_target lab {server.with_token()}")[0])
    yield state_of(ip).targets


def test_cells_run_there_and_the_listing_never_shows_the_token(ip, server, lab):
    result, out, _ = ship(ip, "print('there')\nimport os\nos.getpid()")
    assert ok(result) == lab.get("lab").agent["pid"] and "there" in out
    listing = ok(run(ip, "%cloudpickle_target")[0])
    text = repr(listing)
    assert server.token not in text and "lab" in text and server.url in text
    # Named directly in the magic line, the URL is shown without its token too.
    result, out, err = run(ip, f"%%cloudpickle_ship {server.with_token()}\n1 / 0")
    assert isinstance(result.error_in_exec, RemoteCellError)
    assert server.token not in out + err + repr(ok(run(ip, "%cloudpickle_target")[0]))
    assert f"Traceback on the target {server.url} (most recent call last)" in out


def test_push_no_push_pull_output_and_timeout(ip, lab):
    ip.user_ns.update(secret=5, extra=6, double=lambda v: 2 * v)
    assert ok(ship(ip, "'secret' in globals()", "--no-push")[0]) is False
    assert ok(ship(ip, "double(secret)")[0]) == 10
    assert ok(ship(ip, "secret + globals()['extra']", "--no-push --push secret,extra")[0]) == 11
    result, _, _ = ship(ip, "made = [1, 2]\nlen(made)", "-o stored --pull made")
    assert ok(result) == 2 and ip.user_ns["stored"] == 2 and ip.user_ns["made"] == [1, 2]
    start = time.monotonic()
    result, _, err = ship(ip, "import time\ntime.sleep(5)", "--timeout 1")
    assert time.monotonic() - start < 3
    assert isinstance(result.error_in_exec, UsageError)
    assert err.strip().splitlines() == ["UsageError: %%cloudpickle_ship: no answer from the kernel "
                                        "within 1 s; the run on the target was interrupted too"]


def test_a_module_edited_between_two_ships_travels_again(ip, lab, tmp_path, monkeypatch):
    (tmp_path / "remote_edited.py").write_text("def value():\n    return 'old'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cell = "def use():\n    import remote_edited\n    return remote_edited.value()\nuse()"
    try:
        run(ip, "import remote_edited\n%pickle_by_value remote_edited")
        assert ok(ship(ip, cell)[0]) == "old"
        sent = len(lab.get("lab").sources.shipments)
        assert ok(ship(ip, cell)[0]) == "old"
        assert len(lab.get("lab").sources.shipments) == sent  # unchanged: not sent again
        (tmp_path / "remote_edited.py").write_text("def value():\n    return 'new'\n")
        assert ok(ship(ip, cell)[0]) == "old"  # not reloaded here: what runs here runs there
        run(ip, "import importlib; importlib.reload(remote_edited)")
        assert ok(ship(ip, cell)[0]) == "new"
    finally:
        core.unregister_pickle_by_value(sys.modules["remote_edited"])
        del sys.modules["remote_edited"]
        ip.user_ns.pop("remote_edited", None)


def test_kernel_name_option_and_bad_uses(ip, server, lab):
    ok(run(ip, f"%cloudpickle_target bare {server.with_token()} --kernel-name bare")[0])
    assert ok(run(ip, "%%cloudpickle_ship bare\nimport sys\nsys.executable")[0]) != sys.executable
    result, _, err = run(ip, "%cloudpickle_target x local --kernel-name bare")
    assert isinstance(result.error_in_exec, UsageError)
    assert err.strip() == ("UsageError: %cloudpickle_target: kernel_name picks the kernel spec of "
                           "a kernel started on a server: it needs a server URL, not 'local'")


def test_unload_shuts_down_what_it_started_and_leaves_a_given_kernel(server, tmp_path):
    given = server.start_kernel()
    before = set(server.kernels())
    with loaded_shell(tmp_path) as shell:
        ok(run(shell, f"%cloudpickle_target mine {server.with_token()}")[0])
        ok(run(shell, f"%cloudpickle_target theirs {server.with_token(f'api/kernels/{given}')}")[0])
        ok(run(shell, "%%cloudpickle_ship mine\n1")[0])
        ok(run(shell, "%%cloudpickle_ship theirs\n1")[0])
        (started,) = set(server.kernels()) - before
    kernels = server.kernels()  # loaded_shell ran %unload_ext
    assert started not in kernels and given in kernels
    server.rest("DELETE", f"api/kernels/{given}")
