"""A kernel that is slow, killed or restarted mid-request: clear errors, no hang."""
import os
import signal
import threading
import time

import pytest

import cloudpickle_ipy
from cloudpickle_ipy.ship import KernelDied, RemoteError, ShipError, ShipTimeout


def test_timeout_then_stale_messages_are_ignored(kernel, capsys):
    start = time.monotonic()
    with pytest.raises(ShipTimeout, match="no answer from the kernel within 0.3 s"):
        kernel.run("import time; time.sleep(5); print('late'); 'stale'", timeout=0.3)
    assert time.monotonic() - start < 3  # stopped, not waited for
    # The slow one was interrupted; the next request gets its own answer, not the stale one.
    assert kernel.run("'fresh'", timeout=30) == "fresh"
    assert capsys.readouterr().out == ""  # the late output belonged to the abandoned request


def test_restart_mid_request_then_reconnect(kernel):
    kernel.push(before=1)
    timer = threading.Timer(0.5, kernel.channel.manager.restart_kernel, kwargs={"now": True})
    timer.start()
    try:
        # jupyter_client may interrupt the kernel before it kills it: the run then ends with
        # its KeyboardInterrupt, reported by the agent before the kernel goes.
        with pytest.raises((KernelDied, RemoteError), match="restarted|died|KeyboardInterrupt"):
            kernel.run("import time; time.sleep(30)", timeout=20)
    finally:
        timer.join()
    # The next request starts the agent again in the new kernel; what the old one held is gone.
    assert kernel.run("'before' in globals()", timeout=30) is False


def test_killed_mid_run_is_a_clear_error_within_the_timeout():
    target = cloudpickle_ipy.connect("local", timeout=20)
    try:
        timer = threading.Timer(0.5, os.kill, (target.agent["pid"], signal.SIGKILL))
        timer.start()
        start = time.monotonic()
        with pytest.raises(KernelDied, match="the kernel died"):
            target.run("import time; time.sleep(30)")
        assert time.monotonic() - start < 5
        with pytest.raises(KernelDied, match="is dead"):
            target.push(x=1)
    finally:
        target.close()
    assert not target.channel.manager.has_kernel
    with pytest.raises(ShipError, match="closed"):
        target.run("1")


def test_restart_between_requests_reconnects_even_without_a_manager():
    """A restart made elsewhere (a notebook's "Restart"): the next request starts the agent again."""
    owner = cloudpickle_ipy.connect("local", timeout=30)
    try:
        with cloudpickle_ipy.connect(owner.channel.manager.client(), timeout=30) as target:
            assert target.channel.manager is None
            target.push(before=1)
            owner.channel.manager.restart_kernel(now=True)
            owner.channel.client.wait_for_ready(timeout=30)
            assert target.run("'before' in globals()") is False
            assert target.call(lambda: 5) == 5
    finally:
        owner.close()
