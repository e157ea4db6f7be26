"""Kernels behind real servers (Jupyter Server, kernel gateways) and through a real SSH server."""
import _thread
import threading

import pytest

from cloudpickle_ipy.ship import Interrupted


def ctrl_c_stops_the_run(target):
    """Press Ctrl-C here 1 s into a 30 s run on ``target``: our run there is interrupted."""
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(Interrupted, match="the run on the target was interrupted too"):
            target.run("import time; time.sleep(30); finished = True")
    finally:
        timer.join()
