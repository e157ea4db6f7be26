"""Kernel gateways: a real jupyter-kernel-gateway reached directly (the same API as a Jupyter
Server, its own token check), and through a Jupyter Server in front of it (``--gateway-url``), whose
gateway connection decodes binary frames as text: there payloads travel as base64 text, said once."""
import threading

import numpy as np
import pytest

import cloudpickle_ipy
from cloudpickle_ipy.ship import RemoteError
from cloudpickle_ipy.ship.channels.websocket import TokenRefused
from tests.remote import ctrl_c_stops_the_run
from tests.remote.servers import KernelGateway, gateway_front


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, bare_python):
    started = KernelGateway(tmp_path_factory.mktemp("gateway"), {"bare": bare_python})
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def front(tmp_path_factory, gateway):
    started = gateway_front(tmp_path_factory.mktemp("front"), gateway)
    try:
        yield started
    finally:
        started.stop()


def _round_trips(target):
    array = np.arange(200_000, dtype=np.float64)  # out-of-band buffers both ways
    target.push(array=array, scale=lambda a, k: a * k)
    back = target.run("scale(array, 2)")
    assert back.dtype == np.float64 and back[-1] == 2 * 199_999 and back.flags.writeable
    with pytest.raises(RemoteError, match="ZeroDivisionError"):
        target.run("1 / 0")


def test_a_kernel_gateway_directly(gateway, capsys):
    before = set(gateway.kernels())
    with cloudpickle_ipy.connect(gateway.with_token(), timeout=60) as target:
        assert target.channel.mode == "v1" and target.owned
        _round_trips(target)
        threading.Timer(1.0, target.interrupt).start()  # the gateway's interrupt endpoint
        with pytest.raises(RemoteError, match="KeyboardInterrupt"):
            target.run("import time; time.sleep(30)", timeout=20)
    assert set(gateway.kernels()) == before
    assert capsys.readouterr().out == ""  # nothing to say: binary frames pass


def test_a_gateway_kernel_by_id_and_a_bare_kernel(gateway):
    kernel_id = gateway.start_kernel("bare")
    with cloudpickle_ipy.connect(gateway.with_token(f"api/kernels/{kernel_id}"),
                                 timeout=60) as target:
        assert target.shipped and not target.owned
        assert target.call(lambda: "bootstrapped") == "bootstrapped"
    assert kernel_id in gateway.kernels()
    gateway.rest("DELETE", f"api/kernels/{kernel_id}")


def test_a_gateway_refuses_a_bad_token_in_one_line(gateway):
    with pytest.raises(TokenRefused) as info:
        cloudpickle_ipy.connect(f"{gateway.url}?token=wrong")
    assert str(info.value) == f"the server said 401: check the token ({gateway.url})"


def test_through_a_server_in_front_of_a_gateway_payloads_travel_as_text(front, gateway, capsys):
    before = set(gateway.kernels())
    with cloudpickle_ipy.connect(front.with_token(), timeout=90) as target:
        assert target.channel.mode == "text" and not target.channel.binary
        said = capsys.readouterr().out
        assert said == (f"cloudpickle_ipy: {front.url} does not pass binary websocket frames (as "
                        f"a Jupyter Server in front of a gateway does not): payloads travel as "
                        f"base64 text\n")
        (kernel_id,) = set(gateway.kernels()) - before  # the kernel runs on the gateway
        _round_trips(target)
        ctrl_c_stops_the_run(target)  # our stop travels there too
        assert target.run("'still'") == "still"
        large = np.arange(3_000_000, dtype=np.float64)  # 24 MB: base64 parts both ways
        target.push(large=large)
        assert np.array_equal(target.pull("large"), large)
    assert kernel_id not in gateway.kernels()
