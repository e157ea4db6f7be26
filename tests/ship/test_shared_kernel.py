"""A kernel shared with someone else: a second, independent client (another notebook on the same
kernel) keeps it busy. Our timeouts and Ctrl-C stop only our own requests, never that client's cell;
a request that does not stop is remembered; a split body never stays behind in the kernel."""
import _thread
import threading
import time

import numpy as np
import pytest
from jupyter_client import BlockingKernelClient

import cloudpickle_ipy
from cloudpickle_ipy.ship import Interrupted, ShipError, ShipTimeout
from cloudpickle_ipy.ship.agent import PART
from cloudpickle_ipy.ship.parts import cut

AGENT = "__import__('cloudpickle_ipy.ship.agent', fromlist=['_agent'])._agent"


@pytest.fixture
def shared():
    """``(our target, the other client)`` on one fresh local kernel."""
    target = cloudpickle_ipy.connect("local", timeout=60)
    other = BlockingKernelClient()
    other.load_connection_info(target.channel.manager.get_connection_info())
    other.start_channels()
    other.wait_for_ready(timeout=30)
    try:
        yield target, other
    finally:
        other.stop_channels()
        target.close()


def busy(other, seconds, then="other_done = True", stop_on_error=True):
    """Have the other client run a cell of ``seconds`` on the kernel (not waiting for it)."""
    return other.execute(f"import time; time.sleep({seconds}); {then}",
                         stop_on_error=stop_on_error)


def value(other, expression, timeout=30):
    """``expression`` evaluated on the kernel by the other client (after what it queued)."""
    reply = other.execute_interactive("", user_expressions={"v": expression}, timeout=timeout,
                                      output_hook=lambda msg: None)
    result = reply["content"]["user_expressions"]["v"]
    assert result["status"] == "ok", result
    return eval(result["data"]["text/plain"])


def test_a_timeout_while_another_client_runs_never_touches_its_cell(shared):
    target, other = shared
    busy(other, 3)
    time.sleep(0.3)  # its cell is running
    start = time.monotonic()
    with pytest.raises(ShipTimeout, match="within 1 s; the target was busy with other work and "
                                          "nothing of ours ran"):
        target.run("ours = True", timeout=1)
    assert time.monotonic() - start < 2.5
    # The other cell ran to its end, uninterrupted; ours never ran, not even once it was free.
    assert value(other, "(globals().get('other_done'), 'ours' in globals())") == (True, False)
    assert target.run("1 + 1", timeout=30) == 2


def test_the_timeout_covers_the_pushes_of_a_cell(shared):
    from IPython.core.error import UsageError

    from tests.ship.test_magics import loaded_shell, run

    target, other = shared
    with loaded_shell(__import__("tempfile").mkdtemp()) as ip:
        ip.user_ns.update(kernel_manager=target.channel.manager, data=list(range(10)))
        assert run(ip, "%%cloudpickle_ship kernel_manager\n2 * 21")[0].result == 42  # connected
        busy(other, 4)
        time.sleep(0.3)
        start = time.monotonic()
        result, _, err = run(ip, "%%cloudpickle_ship kernel_manager --timeout 1\nlen(data)")
        assert time.monotonic() - start < 2.5
        assert isinstance(result.error_in_exec, UsageError)
        assert err.strip().splitlines() == ["UsageError: %%cloudpickle_ship: no answer from the "
                                            "kernel within 1 s; the target was busy with other "
                                            "work and nothing of ours ran (nor will: the request "
                                            "was withdrawn)"]
    assert value(other, "(other_done, 'data' in globals())") == (True, False)


def test_ctrl_c_while_queued_behind_another_client_leaves_its_cell_alone(shared):
    target, other = shared
    busy(other, 3)
    time.sleep(0.3)
    timer = threading.Timer(0.7, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(Interrupted, match="interrupted; the target was busy with other work "
                                              "and nothing of ours ran"):
            target.run("ours = True")
    finally:
        timer.join()
    assert value(other, "(other_done, 'ours' in globals())") == (True, False)


def test_ctrl_c_interrupts_our_own_run_only(shared):
    target, other = shared
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(Interrupted, match="^interrupted; the run on the target was "
                                              "interrupted too$"):
            target.run("import time; time.sleep(30); finished = True")
    finally:
        timer.join()
    assert value(other, "'finished' in globals()") is False
    busy(other, 1)  # queued after our interrupted run: it runs, untouched
    assert value(other, "other_done") is True


STUBBORN = """
import time
end = time.monotonic() + {seconds}
while time.monotonic() < end:
    try:
        time.sleep(0.05)
    except KeyboardInterrupt:
        pass
stubborn_done = True
"""


def test_a_run_that_ignores_the_interrupt_is_remembered(shared):
    target, _ = shared
    target.settle, target.timeout = 1, None  # no default timeout: calls wait as long as needed
    with pytest.raises(ShipTimeout, match="interrupted but did not stop within 1 s; the next "
                                          "request waits for it"):
        target.run(STUBBORN.format(seconds=5), timeout=1)
    start = time.monotonic()
    with pytest.raises(ShipError, match="still running an earlier request that was stopped"):
        target.run("1")  # no timeout: said at once, not queued silently behind it
    assert time.monotonic() - start < 1
    with pytest.raises(ShipTimeout, match="still running an earlier request.*nothing of this one "
                                          "was sent"):
        target.run("1", timeout=0.5)
    assert target.run("stubborn_done", timeout=30) is True  # waits for it, then runs


def test_a_request_behind_another_clients_failing_cell_still_runs_and_leaves_nothing(shared):
    target, other = shared
    # The other client's cell fails while ours waits behind it: ipykernel then aborts the
    # execute requests queued behind it, but ours is not one (a message of our own): it runs.
    busy(other, 1.5, then="1/0")
    time.sleep(0.3)
    big = np.ones(8 << 20, dtype=np.uint8)  # split: the body goes ahead in parts
    target.push(big=big)
    assert value(other, f"(len({AGENT}.pending), int(big.sum()))") == (0, 8 << 20)


def test_a_body_without_its_request_goes_with_the_next_request(shared):
    target, other = shared
    (data, buffers), = cut([b"x" * (1 << 20)], 8 << 20)
    target.channel.send("shell", PART, {"id": "lost", "comm": target._comm_id, **data},
                        buffers=buffers)
    deadline = time.monotonic() + 10  # two clients' messages reach the kernel in either order
    while value(other, f"list({AGENT}.pending)") != ["lost"]:
        assert time.monotonic() < deadline
    assert target.run("2 * 21") == 42
    assert value(other, f"list({AGENT}.pending)") == []
