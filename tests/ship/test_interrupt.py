"""Ctrl-C or a timeout while waiting for a target interrupts the target too, and leaves it usable."""
import _thread
import threading
import time

import pytest

import cloudpickle_ipy
from cloudpickle_ipy.ship import ShipTimeout


def _interrupted_run(target):
    """Run a 30 s sleep on ``target`` and press Ctrl-C here after 1 s; return how long it took."""
    target.run("finished = False")
    timer = threading.Timer(1.0, _thread.interrupt_main)
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt, match="the run on the target was interrupted"):
            target.run("import time; time.sleep(30); finished = True", timeout=60)
    finally:
        timer.join()
    return time.monotonic() - start


def test_ctrl_c_interrupts_the_kernel_through_its_manager(kernel):
    assert _interrupted_run(kernel) < 5
    start = time.monotonic()
    # The sleep was stopped there (not left running), and the kernel survived.
    assert kernel.run("finished") is False
    assert time.monotonic() - start < 5
    assert kernel.call(lambda: 6 * 7) == 42


def test_ctrl_c_without_a_manager_interrupts_by_message(kernel):
    with cloudpickle_ipy.connect(kernel.channel.manager.client(), timeout=60) as target:
        assert target.channel.manager is None
        assert _interrupted_run(target) < 5
        start = time.monotonic()
        assert target.run("finished") is False
        assert time.monotonic() - start < 5


def test_a_timeout_interrupts_the_target(kernel):
    kernel.run("finished = False")
    start = time.monotonic()
    with pytest.raises(ShipTimeout, match="within 1 s; the run on the target was interrupted"):
        kernel.run("import time; time.sleep(30); finished = True", timeout=1)
    assert time.monotonic() - start < 2.5
    start = time.monotonic()
    assert kernel.run("finished") is False  # stopped there, not left running
    assert time.monotonic() - start < 3


def test_interrupt_is_public(kernel):
    # Interrupting an idle target is harmless: it goes on answering.
    kernel.interrupt()
    time.sleep(0.2)
    assert kernel.call(lambda: 6 * 7) == 42
