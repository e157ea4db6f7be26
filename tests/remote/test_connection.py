"""The connection to a server: a websocket that drops mid-cell (cut by a real TCP relay between us
and the server) is opened again and the cell completes; one that cannot be opened again is one
line; https certificates are verified."""
import datetime
import ipaddress
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import cloudpickle_ipy
from cloudpickle_ipy.ship import TargetError
from tests.remote.servers import BASE, JupyterServer, Relay


@pytest.fixture
def relay(server):
    through = Relay(server.port)
    try:
        yield through
    finally:
        through.stop()


def test_a_websocket_dropped_mid_cell_is_opened_again_and_nothing_is_lost(server, relay, capsys):
    with cloudpickle_ipy.connect(f"http://127.0.0.1:{relay.port}{BASE}?token={server.token}",
                                 timeout=60) as target:
        first = target.channel._ws
        threading.Timer(0.8, relay.cut).start()
        value = target.run("import time\nprint('before', flush=True)\ntime.sleep(2)\n"
                           "print('after')\n42")
        assert value == 42
        assert capsys.readouterr().out == "before\nafter\n"
        assert target.channel._ws is not first  # a new websocket, the same session
        assert target.call(lambda: 7) == 7


def test_a_byte_changed_on_the_way_from_a_server_is_refused(server, relay):
    """A websocket is not a private channel: the envelope signs every byte of a pulled array, so
    a bit flipped in its middle by someone on the path is refused, and the target stays usable."""
    import numpy as np

    from cloudpickle_ipy.ship import PayloadRefused

    with cloudpickle_ipy.connect(f"http://127.0.0.1:{relay.port}{BASE}?token={server.token}",
                                 timeout=60) as target:
        assert not target.channel.private
        target.run("import numpy as np; a = np.arange(2 << 20, dtype=np.float64)")  # 16 MiB
        assert np.array_equal(target.pull("a"), np.arange(2 << 20, dtype=np.float64))
        relay.tamper(10 << 20)  # in the array's bytes, in its second 8 MiB part
        with pytest.raises(PayloadRefused, match="refused the target's reply: bad signature"):
            target.pull("a")
        assert target.call(lambda: 7) == 7


def test_a_reply_arriving_seconds_after_the_kernel_went_idle_is_waited_for(server, relay):
    """On a slow link the kernel's idle status (small) arrives long before a large reply: the
    call still returns its value, and it ran once (it is not taken for a lost agent and sent
    again)."""
    import numpy as np

    with cloudpickle_ipy.connect(f"http://127.0.0.1:{relay.port}{BASE}?token={server.token}",
                                 timeout=120) as target:
        target.run("import numpy as np\nruns = 0")
        relay.rate = 8 << 20  # 8 MiB/s: the 32 MiB reply trails the idle status by 3 seconds or more

        def counted():
            import __main__  # the kernel's namespace
            __main__.runs += 1
            return np.ones(4 << 20)

        start = time.monotonic()
        assert np.array_equal(target.call(counted), np.ones(4 << 20))
        assert time.monotonic() - start > 3
        relay.rate = None
        assert target.run("runs") == 1


def test_a_websocket_that_cannot_be_opened_again_is_one_line(server, relay):
    target = cloudpickle_ipy.connect(f"http://127.0.0.1:{relay.port}{BASE}?token={server.token}",
                                     timeout=60)
    kernel_id = target.channel.kernel_id
    try:
        relay.refuse = True
        relay.cut()
        start = time.monotonic()
        with pytest.raises(TargetError) as info:
            target.run("1")
        assert time.monotonic() - start < 20
        message = str(info.value)
        assert message.startswith(f"the websocket to http://127.0.0.1:{relay.port}{BASE} closed "
                                  f"and could not be opened again within 10 s: ")
        assert "\n" not in message and server.token not in message
    finally:
        relay.refuse = False
        target.close()
    assert kernel_id not in server.kernels()  # closing still shut it down


def _self_signed(folder):
    """A certificate for 127.0.0.1 signed by itself, and its key (files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certfile, keyfile


def test_https_certificates_are_verified(tmp_path, monkeypatch):
    certfile, keyfile = _self_signed(tmp_path)
    server = JupyterServer(tmp_path / "server", certfile=certfile, keyfile=keyfile)
    try:
        with pytest.raises(TargetError) as info:
            cloudpickle_ipy.connect(server.with_token())
        assert str(info.value) == (f"could not verify the https certificate of {server.url}: "
                                   f"self-signed certificate (set REQUESTS_CA_BUNDLE to the CA "
                                   f"file that signed it)")
        assert server.url.startswith("https://")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certfile))  # now trusted: REST and wss
        with cloudpickle_ipy.connect(server.with_token(), timeout=60) as target:
            assert target.run("6 * 7") == 42
    finally:
        server.stop()


def test_a_hub_without_the_users_server_is_one_line():
    """JupyterHub answers a stopped user's server's API with a redirect to its spawn page."""
    class Hub(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", "/hub/spawn-pending/alice?next=%2Fuser%2Falice%2F")
            self.end_headers()

        def log_message(self, *args):
            pass

    hub = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    port = hub.server_address[1]
    try:
        with pytest.raises(TargetError) as info:
            cloudpickle_ipy.connect(f"http://127.0.0.1:{port}{BASE}?token=secret-token")
    finally:
        hub.shutdown()
        hub.server_close()
    assert str(info.value) == (
        f"http://127.0.0.1:{port}{BASE} sends its API requests to http://127.0.0.1:{port}/hub/"
        f"spawn-pending/alice: not a Jupyter Server there (on a JupyterHub, start your server "
        f"first)")
