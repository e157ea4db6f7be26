"""The servers the remote tests share, one of each per test session, always stopped."""
import pytest

from tests.remote.servers import JupyterServer
from tests.ship.venvs import kernel_venv, this_base_python


@pytest.fixture(scope="session")
def bare_python():
    """A Python with ipykernel and without cloudpickle_ipy (see tests.ship.venvs)."""
    return kernel_venv("kernel-only", this_base_python())


@pytest.fixture(scope="session")
def server(tmp_path_factory, bare_python):
    """A real ``jupyter server`` on loopback: random token, base URL /user/alice/, kernel specs
    python3 (the default: this venv) and bare (no cloudpickle_ipy)."""
    started = JupyterServer(tmp_path_factory.mktemp("jupyter-server"), {"bare": bare_python})
    try:
        yield started
    finally:
        started.stop()
