"""The envelope on its own: sealing, and every reason to refuse one."""
import json
import pickle
import subprocess
import sys

import pytest

from cloudpickle_ipy.ship import envelope
from cloudpickle_ipy.ship.envelope import EnvelopeError, seal, unseal

KEY = b"0123456789abcdef"


def sealed(buffers=(b"first buffer", b"second"), **kw):
    return seal(KEY, "request", "r1", b"the pickle", list(buffers), **kw)


def test_round_trip_keeps_frames_apart_and_uncopied():
    data = bytearray(b"x" * 1000)
    frames = seal(KEY, "reply", "r1", b"p", [data])
    assert frames[3].obj is data  # the buffer goes out as a view, not a copy
    opened = unseal(KEY, [bytes(f) for f in frames], kind="reply", request_id="r1")
    assert (opened.kind, opened.id) == ("reply", "r1")
    assert bytes(opened.pickle) == b"p" and [bytes(b) for b in opened.buffers] == [bytes(data)]
    header = json.loads(frames[0])
    assert header["frames"] == [1, 1000] and header["python"] == envelope.PYTHON


def test_out_of_band_pickle_buffers_travel_as_frames():
    buffers = []
    payload = pickle.dumps(pickle.PickleBuffer(bytearray(b"abc" * 1000)), protocol=5,
                           buffer_callback=buffers.append)
    frames = seal(KEY, "request", "r", payload, buffers)
    assert len(frames) == 4 and len(frames[2]) < 100 and frames[3].nbytes == 3000
    opened = unseal(KEY, frames)
    assert bytes(pickle.loads(opened.pickle, buffers=opened.buffers)) == b"abc" * 1000


@pytest.mark.parametrize("frame", [0, 2, 3, 4])
def test_any_changed_byte_is_refused(frame):
    frames = [bytearray(f) for f in sealed()]
    frames[frame][-2] ^= 1
    with pytest.raises(EnvelopeError, match="malformed|bad signature"):
        unseal(KEY, frames)


def test_bytes_moved_between_frames_are_refused():
    frames = [bytes(f) for f in sealed(buffers=[b"ab", b"cd"])]
    frames[3], frames[4] = b"abc", b"d"  # same concatenation, other split
    with pytest.raises(EnvelopeError, match="bad signature"):
        unseal(KEY, frames)


def test_dropped_frame_is_refused():
    frames = sealed()
    with pytest.raises(EnvelopeError, match="bad signature"):
        unseal(KEY, frames[:-1])


def test_unsigned_and_other_key_are_refused():
    frames = sealed()
    with pytest.raises(EnvelopeError, match="unsigned"):
        unseal(KEY, [frames[0], b"", *frames[2:]])
    with pytest.raises(EnvelopeError, match="another key"):
        unseal(b"another key", frames)


def test_empty_key_refuses_to_seal_or_open():
    with pytest.raises(EnvelopeError, match="no key"):
        seal(b"", "request", "r", b"p")
    with pytest.raises(EnvelopeError, match="no key"):
        unseal(b"", sealed())


def test_other_python_minor_version_is_refused_after_the_signature():
    frames = sealed(python="3.99")
    with pytest.raises(EnvelopeError, match=r"Python 3\.99.*this is Python " + envelope.PYTHON):
        unseal(KEY, frames)


def test_other_format_is_refused():
    header = json.loads(sealed()[0])
    header["format"] = envelope.FORMAT + 1
    with pytest.raises(EnvelopeError, match="format 2"):
        unseal(KEY, [json.dumps(header).encode(), *sealed()[1:]])


def test_kind_and_request_must_match():
    with pytest.raises(EnvelopeError, match="expected a reply"):
        unseal(KEY, sealed(), kind="reply")
    with pytest.raises(EnvelopeError, match="belongs to request 'r1'"):
        unseal(KEY, sealed(), request_id="r2")


@pytest.mark.parametrize("frames", [[], [b"{}"], [b"not json", b"sig", b"p"], [b"[1]", b"s", b"p"]])
def test_malformed_envelopes_are_refused(frames):
    with pytest.raises(EnvelopeError, match="malformed"):
        unseal(KEY, frames)


def test_importing_the_package_and_agent_stays_light():
    code = ("import sys, cloudpickle_ipy, cloudpickle_ipy.ship.agent; "
            "print(sorted(m for m in ('jupyter_client', 'zmq', 'IPython') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
