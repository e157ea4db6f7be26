"""The same cell in two real kernels pickles to the same bytes (issue 12, item 7), and a function
from such a cell, loaded and raising in a fresh process, shows the cell's own source line.

ipykernel compiles each cell under ``<tmp>/ipykernel_<pid>/<hash>.py``: the folder differs between
the two kernels, the payloads must not.
"""
import sys

import pytest

from tests.fresh import load_fresh
from tests.ship.venvs import start_kernel

CELL = '''
import statistics

THRESHOLD = 3

def mean_above(values):
    kept = [v for v in values if v > THRESHOLD]
    if not kept:
        raise ValueError(f"no value above {THRESHOLD} in {values!r}")
    return statistics.mean(kept)

class Window:
    def __init__(self, size):
        self.size = size

    def last(self, values):
        return mean_above(values[-self.size:])
'''

DUMP = "import cloudpickle_ipy.core as _c; print(_c.dumps([mean_above, Window, Window(2)]).hex())"


def _run_cell(client, code):
    """Execute ``code`` in the kernel; return what it printed (failing on an error)."""
    printed, errors = [], []

    def output(message):
        content = message["content"]
        if message["msg_type"] == "stream":
            printed.append(content["text"])
        elif message["msg_type"] == "error":
            errors.append("\n".join(content["traceback"]))

    client.execute_interactive(code, timeout=60, output_hook=output)
    assert not errors, errors
    return "".join(printed)


@pytest.fixture(scope="module")
def two_kernels(tmp_path_factory):
    managers = [start_kernel(sys.executable, tmp_path_factory.mktemp(f"kernel{i}"))
                for i in range(2)]
    clients = []
    try:
        for manager in managers:
            client = manager.client()
            client.start_channels()
            client.wait_for_ready(timeout=60)
            clients.append(client)
        yield clients
    finally:
        for client in clients:
            client.stop_channels()
        for manager in managers:
            manager.shutdown_kernel(now=True)


def test_same_cell_in_two_kernels_gives_the_same_bytes(two_kernels):
    payloads, folders = [], []
    for client in two_kernels:
        _run_cell(client, CELL)
        folders.append(_run_cell(client, "print(mean_above.__code__.co_filename)").strip())
        payloads.append(bytes.fromhex(_run_cell(client, DUMP).strip()))
    assert folders[0] != folders[1] and "ipykernel_" in folders[0]  # the kernels' own folders
    assert payloads[0] == payloads[1]
    assert b"ipykernel_" not in payloads[0]
    check = "f, window, w = obj; result = [f([1, 5, 7]), w.last([9, 4, 8]), window(1).last([5])]"
    assert load_fresh(payloads[0], check) == [6, 6, 5]


def test_traceback_of_a_cell_function_on_the_target_shows_the_cells_line(two_kernels):
    client = two_kernels[0]
    _run_cell(client, CELL)
    payload = bytes.fromhex(_run_cell(client, DUMP).strip())
    check = """
import traceback
f, window, w = obj
try:
    w.last([1, 2])
except ValueError:
    result = traceback.format_exc()
"""
    shown = load_fresh(payload, check)
    assert 'raise ValueError(f"no value above {THRESHOLD} in {values!r}")' in shown
    assert "return mean_above(values[-self.size:])" in shown
    assert "<ipykernel>/" in shown and "ipykernel_" not in shown
