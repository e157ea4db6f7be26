"""Kernels behind a real ``jupyter server`` (random token, base URL ``/user/alice/`` as JupyterHub
gives a user's server), reached by its URL: every feature a local kernel has."""
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import cloudpickle_ipy
from cloudpickle_ipy.ship import KernelDied, RemoteError, ShipError, ShipTimeout
from cloudpickle_ipy.ship.channels.websocket import TokenRefused
from tests.fresh import pyenv_interpreters
from tests.remote import ctrl_c_stops_the_run
from tests.remote.servers import kernel_spec
from tests.ship.test_other_python import PREFERRED
from tests.ship.test_refusals import loaded, request
from tests.ship.venvs import HERE, kernel_venv
from tests.venvs import clean_env

NO_KERNEL = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def target(server):
    """A kernel the target started on the server from its URL (the token in the URL)."""
    started = cloudpickle_ipy.connect(server.with_token(), timeout=60)
    try:
        yield started
    finally:
        started.close()


def test_a_server_url_starts_a_kernel_that_close_shuts_down(server):
    before = set(server.kernels())
    # JupyterLab prints .../lab?token=...: the UI page names the server too.
    target = cloudpickle_ipy.connect(server.with_token("lab"), timeout=60)
    try:
        (kernel_id,) = set(server.kernels()) - before
        assert target.owned and target.channel.kernel_id == kernel_id
        assert target.channel.mode == "v1"  # binary frames, the subprotocol negotiated
        assert target.run("import os; os.getpid()") == target.agent["pid"] != os.getpid()
    finally:
        target.close()
    assert kernel_id not in server.kernels()


def test_push_pull_call_run_and_classes(target):
    class Point:
        def __init__(self, x, y):
            self.x, self.y = x, y

        def norm2(self):
            return self.x ** 2 + self.y ** 2

    target.push(p=Point(3, 4), square=lambda v: v * v, data=np.arange(5))
    assert target.run("square(p.norm2()), int(data.sum())") == (625, 10)
    back = target.pull("p")
    assert type(back) is Point and back.norm2() == 25
    assert target.call(lambda a, b=1: a * b, 6, b=7) == 42


def test_output_is_relayed_as_it_is_produced(target):
    class Stamped:
        def __init__(self):
            self.lines = []

        def write(self, text):
            self.lines.append((time.monotonic(), text))

        def flush(self):
            pass

    out, real = Stamped(), sys.stdout
    sys.stdout = out
    try:
        value = target.run("import time\nprint('first', flush=True)\ntime.sleep(1.5)\n"
                           "print('second')\n42")
        ended = time.monotonic()
    finally:
        sys.stdout = real
    assert value == 42
    (first_at, _), = [(when, text) for when, text in out.lines if "first" in text]
    assert ended - first_at > 1.0  # shown while the run went on, not at its end
    assert "".join(text for _, text in out.lines) == "first\nsecond\n"


def test_an_error_raises_with_the_remote_traceback(target):
    with pytest.raises(RemoteError) as info:
        target.run("def inner(d):\n    return 1 / d\ninner(0)")
    assert info.value.ename == "ZeroDivisionError"
    assert "return 1 / d" in info.value.remote_traceback
    assert "agent.py" not in info.value.remote_traceback


def test_an_existing_kernel_is_used_and_never_shut_down(server):
    kernel_id = server.start_kernel()
    url = server.with_token(f"api/kernels/{kernel_id}")
    with cloudpickle_ipy.connect(url, timeout=60) as first:
        assert not first.owned
        first.push(left_behind="still here")
    assert kernel_id in server.kernels()  # closing the target left the kernel up
    with cloudpickle_ipy.connect(url, timeout=60) as second:
        assert second.pull("left_behind") == "still here"  # the same kernel
    with pytest.raises(ShipError, match=f"has no kernel {NO_KERNEL}$"):
        cloudpickle_ipy.connect(server.with_token(f"api/kernels/{NO_KERNEL}"))
    server.rest("DELETE", f"api/kernels/{kernel_id}")


def test_a_refused_token_is_one_line_that_never_shows_it(server):
    with pytest.raises(TokenRefused) as info:
        cloudpickle_ipy.connect(f"{server.url}?token=not-the-token-{server.token[:4]}")
    assert str(info.value) == f"the server said 403: check the token ({server.url})"
    with pytest.raises(TokenRefused):  # a kernel URL too
        cloudpickle_ipy.connect(f"{server.url}api/kernels/{NO_KERNEL}?token=wrong")


def test_the_token_comes_from_jupyter_token(server, monkeypatch):
    monkeypatch.setenv("JUPYTER_TOKEN", server.token)
    with cloudpickle_ipy.connect(server.url, timeout=60) as target:
        assert target.call(lambda: 7) == 7
    monkeypatch.setenv("JUPYTER_TOKEN", "wrong")
    with pytest.raises(TokenRefused, match="403: check the token"):
        cloudpickle_ipy.connect(server.url)


def test_without_a_token_it_is_asked_for_with_getpass(server):
    """A script with no token anywhere: getpass asks (here on stdin: no terminal)."""
    script = f"""
        import cloudpickle_ipy
        with cloudpickle_ipy.connect({server.url!r}, timeout=60) as target:
            print("answer", target.call(lambda: 6 * 7))
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], input=server.token + "\n",
                          capture_output=True, text=True, env=clean_env(), timeout=120,
                          start_new_session=True)  # no controlling terminal: getpass reads stdin
    assert proc.returncode == 0, proc.stderr
    assert "answer 42" in proc.stdout and server.token not in proc.stdout + proc.stderr
    assert f"Token for {server.url}:" in proc.stdout + proc.stderr


def test_kernel_name_picks_the_spec_and_a_bare_kernel_is_bootstrapped(server):
    with cloudpickle_ipy.connect(server.with_token(), kernel_name="bare", timeout=60) as target:
        assert target.shipped  # its environment has no cloudpickle_ipy: ours was sent
        assert target.run("import sys; sys.executable") != sys.executable
        assert target.call(lambda xs: [x * 2 for x in xs], [1, 2]) == [2, 4]
    with pytest.raises(ShipError, match=r"has no kernel spec 'nope' \(it has: bare, python3\)"):
        cloudpickle_ipy.connect(server.with_token(), kernel_name="nope")
    with pytest.raises(ShipError, match="kernel_name .* needs a server URL"):
        cloudpickle_ipy.connect(server.with_token("api/kernels/x"), kernel_name="bare")


def test_ctrl_c_stops_our_run_and_the_kernel_goes_on(target):
    target.run("finished = False")
    start = time.monotonic()
    ctrl_c_stops_the_run(target)
    assert time.monotonic() - start < 6
    assert target.run("finished") is False


def test_interrupt_goes_through_the_servers_endpoint(target):
    threading.Timer(1.0, target.interrupt).start()
    with pytest.raises(RemoteError) as info:
        target.run("import time; time.sleep(30)", timeout=20)
    assert info.value.ename == "KeyboardInterrupt"


def test_a_timeout_is_one_error_in_time(target):
    start = time.monotonic()
    with pytest.raises(ShipTimeout, match="within 1 s; the run on the target was interrupted"):
        target.run("import time; time.sleep(30)", timeout=1)
    assert time.monotonic() - start < 3
    assert target.run("'alive'") == "alive"


def test_a_killed_kernel_is_a_clear_error_within_the_timeout(server):
    target = cloudpickle_ipy.connect(server.with_token(), timeout=30)
    try:
        target.push(held=1)
        threading.Timer(0.5, os.kill, (target.agent["pid"], 9)).start()
        start = time.monotonic()
        with pytest.raises(KernelDied, match="the kernel restarted while running the request"):
            target.run("import time; time.sleep(30)")
        assert time.monotonic() - start < 15  # the server notices within its restart poll
        # The server restarted it: the next request starts the agent there again.
        assert target.run("'held' in globals()") is False
    finally:
        target.close()


def test_a_kernel_shut_down_by_someone_else_is_dead(server):
    target = cloudpickle_ipy.connect(server.with_token(), timeout=30)
    try:
        server.rest("DELETE", f"api/kernels/{target.channel.kernel_id}")
        start = time.monotonic()
        with pytest.raises(KernelDied):
            target.run("1")
        assert time.monotonic() - start < 15
        assert not target.alive
    finally:
        target.close()


def test_envelopes_are_signed_with_a_key_of_the_comm_not_the_connection_key(target):
    """The key was agreed with the agent; the kernel's own connection key opens nothing."""

    assert len(target.key) == 32
    connection_key = target.run("get_ipython().kernel.session.key")
    assert connection_key and connection_key != target.key
    reply = target.send_frames(*request(connection_key))
    assert reply["refused"] and "bad signature" in reply["error"]["message"]
    assert loaded(target) is False
    keys = target.run("list(__import__('cloudpickle_ipy.ship.agent', fromlist=['_agent'])"
                      "._agent.keys.values())")
    assert target.key in keys


def test_a_200_mb_array_pushed_and_pulled_in_parts(target):
    big = np.arange(25_000_000, dtype=np.float64)  # 200 MB: parts under the websocket's limit
    big[-1] = -1.0
    seen = []
    target.progress = lambda direction, done, total: seen.append((direction, done, total))
    try:
        target.push(big=big)
        assert target.run("big.flags.writeable, big.shape, float(big[-1]), float(big[:5].sum())") \
            == (True, (25_000_000,), -1.0, 10.0)
        back = target.pull("big")
    finally:
        del target.progress
    assert back.flags.writeable and back.flags.aligned and np.array_equal(back, big)
    pushes = [(done, total) for direction, done, total in seen if direction == "push"]
    assert len(pushes) >= big.nbytes // target.channel.part_size  # acknowledged part by part
    assert pushes[-1][0] == pushes[-1][1] >= big.nbytes
    assert any(direction == "pull" for direction, _, _ in seen)
    target.run("del big")


def test_a_large_binary_message_goes_as_frames_of_one_message():
    """What the client hands the websocket library: slices of the message covering it in order
    (sent as one fragmented message, which the server reassembles), never a copy; text as it is."""
    from cloudpickle_ipy.ship.channels.websocket import FRAME, _frames

    data = bytes(range(256)) * (3 * FRAME // 256 + 5)
    frames = _frames(data)
    assert [len(f) for f in frames] == [FRAME] * 3 + [len(data) - 3 * FRAME]
    assert all(f.obj is data for f in frames) and b"".join(frames) == data
    assert _frames(data[:FRAME]) == data[:FRAME]  # one frame: as it is
    text = "x" * (2 * FRAME)
    assert _frames(text) is text


def test_a_kernel_on_another_python_is_refused_before_anything_is_sent(server):
    found = pyenv_interpreters()
    others = [v for v in PREFERRED if v in found and v != HERE]
    assert others, f"no CPython other than {HERE} found through pyenv (found: {sorted(found)})"
    python = kernel_venv(f"kernel-py{others[0]}", found[others[0]])
    kernel_spec(server.folder / "share/jupyter", "other", python)
    before = set(server.kernels())
    with pytest.raises(ShipError, match=rf"the target kernel runs Python {others[0]} and this is "
                                        rf"Python {HERE}"):
        cloudpickle_ipy.connect(server.with_token(), kernel_name="other", timeout=60)
    assert set(server.kernels()) == before  # the kernel started for it was shut down


def test_a_kernel_started_from_a_url_is_shut_down_at_exit(server):
    """A script that never closes its target: the kernel goes when the script ends."""
    before = set(server.kernels())
    script = f"""
        import cloudpickle_ipy
        target = cloudpickle_ipy.connect({server.with_token()!r}, timeout=60)
        print(target.channel.kernel_id)
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
                          text=True, env=clean_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() and set(server.kernels()) == before
