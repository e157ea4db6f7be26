"""Progress of long transfers, in a real notebook kernel and a real terminal IPython, each shipping
to a real ``local`` target: a bar updated in place in the notebook, one line in the terminal,
nothing for short transfers, nothing when ``CloudpickleIPy.progress`` is off.

The transfers are real: a 256 MiB array travels in 64 MiB parts (``ship/parts.py``), each
acknowledged by the receiver; a small ``progress_after`` makes them count as long.
"""
import re

import pytest

from cloudpickle_ipy.ship.channels.zeromq import start_local
from tests.ship.terminal import terminal_ipython

BIG = "import numpy as np\nbig = np.arange(32 << 20, dtype=np.float64)  # 256 MiB"
PERCENT = re.compile(r"(\d+)%")


@pytest.fixture(scope="module")
def notebook():
    """A function running a cell in a real kernel (the notebook's) with the extension loaded;
    it returns the cell's output messages."""
    kernel = start_local()
    client = kernel.client

    def run(code, status="ok"):
        messages = []
        reply = client.execute_interactive(code, timeout=120, output_hook=messages.append)
        assert reply["content"]["status"] == status, reply["content"]
        return [m for m in messages if m["msg_type"] in (
            "stream", "display_data", "update_display_data", "clear_output")]

    run(f"%load_ext cloudpickle_ipy\n{BIG}")
    try:
        yield run
    finally:
        kernel.close()


def bars(messages):
    """display id -> the text/plain of each display and update of that progress bar, in order."""
    shown = {}
    for message in messages:
        content = message["content"]
        display_id = content.get("transient", {}).get("display_id", "")
        if message["msg_type"].endswith("display_data") and "progress" in display_id:
            shown.setdefault(display_id, []).append(content["data"]["text/plain"])
    return shown


def test_a_long_push_and_pull_show_a_bar_updated_in_place(notebook):
    notebook("%config CloudpickleIPy.progress_after = 0")
    messages = notebook("%cloudpickle_push local big")
    (lines,) = bars(messages).values()
    first = next(m for m in messages if m["msg_type"] == "display_data")
    assert "<progress" in first["content"]["data"]["text/html"]
    assert [m["msg_type"] for m in messages].count("update_display_data") == len(lines) - 1 >= 1
    assert all(line.startswith("to local:") for line in lines)
    percents = [int(PERCENT.search(line).group(1)) for line in lines]
    assert percents == sorted(percents) and percents[-1] == 100
    assert "256M/256M" in lines[-1] and "B/s" in lines[-1]  # bytes done of total, the rate

    messages = notebook("%cloudpickle_pull local big")
    (lines,) = bars(messages).values()
    assert lines[-1].startswith("from local: 100%") and "256M/256M" in lines[-1]


def test_a_short_transfer_shows_nothing(notebook):
    # 128 MiB in two parts at the default threshold: well under 2 seconds.
    notebook("%config CloudpickleIPy.progress_after = 2.0\nhalf = big[:16 << 20]")
    assert notebook("%cloudpickle_push local half") == []


def test_a_transfer_that_fails_half_way_ends_its_bar_in_its_own_cell(notebook):
    notebook("%config CloudpickleIPy.progress_after = 0")
    # A deadline that passes while the array is on its way: the request is withdrawn.
    messages = notebook("%%cloudpickle_ship --timeout 0.01 local --push big\npass", "error")
    ((failed, lines),) = bars(messages).items()
    assert lines[0].startswith("to local:") and "100%" not in lines[-1]
    # Later cells never touch it again.
    for _ in range(2):
        assert failed not in bars(notebook("%cloudpickle_push local big"))


def test_the_setting_turns_it_off(notebook):
    notebook("%config CloudpickleIPy.progress_after = 0\n%config CloudpickleIPy.progress = False")
    try:
        assert notebook("%cloudpickle_push local big") == []
    finally:
        notebook("%config CloudpickleIPy.progress = True")


def test_a_terminal_shows_one_line(tmp_path):
    _, err = terminal_ipython(["%load_ext cloudpickle_ipy",
                               "%config CloudpickleIPy.progress_after = 0", BIG,
                               "%cloudpickle_push local big"], tmp_path)
    bar = err[err.index("to local:"):]
    # Rewritten in place (carriage returns), ended by one newline: a single line on the screen.
    assert bar.count("\r") >= 1 and bar.count("\n") == 1 and bar.endswith("\n"), repr(bar)
    assert "100%" in bar.rsplit("\r", 1)[-1] and "256M/256M" in bar
