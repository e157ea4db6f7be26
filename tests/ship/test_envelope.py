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
    with pytest.raises(EnvelopeError, match=f"reads format {envelope.FORMAT} "):
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


# The tree hash (format 2): large frames are hashed in chunks, the chunk digests are MACed.

SMALL_CHUNK = envelope.MIN_CHUNK


def large_envelope(chunk=SMALL_CHUNK):
    """An envelope whose out-of-band buffer spans several chunks (the last one partial)."""
    data = bytearray(i % 251 for i in range(3 * chunk + 123))
    return seal(KEY, "request", "r1", b"the pickle", [data], chunk=chunk), bytes(data)


def test_large_frames_round_trip_in_chunks():
    frames, data = large_envelope()
    header = json.loads(frames[0])
    assert header["chunk"] == SMALL_CHUNK and header["frames"] == [10, len(data)]
    opened = unseal(KEY, [bytes(f) for f in frames])
    assert bytes(opened.buffers[0]) == data


@pytest.mark.parametrize("offset", [0, 1, SMALL_CHUNK - 1, SMALL_CHUNK, 2 * SMALL_CHUNK + 7,
                                    3 * SMALL_CHUNK, 3 * SMALL_CHUNK + 122])
def test_any_changed_byte_in_any_chunk_is_refused(offset):
    frames, _ = large_envelope()
    tampered = [bytes(f) for f in frames]
    body = bytearray(tampered[3])
    body[offset] ^= 0x80
    tampered[3] = body
    with pytest.raises(EnvelopeError, match="bad signature"):
        unseal(KEY, tampered)


def test_bytes_all_along_a_large_frame_are_covered():
    # Across a frame of three chunks and a partial one, at offsets falling everywhere in a chunk.
    frames, data = large_envelope()
    frames = [bytes(f) for f in frames]
    body = bytearray(data)
    for offset in range(0, len(body), 4099):  # a stride prime to the chunk size
        body[offset] ^= 1
        with pytest.raises(EnvelopeError, match="bad signature"):
            unseal(KEY, [*frames[:3], body])
        body[offset] ^= 1
    assert bytes(unseal(KEY, [*frames[:3], body]).buffers[0]) == data


def test_reordered_chunks_are_refused():
    frames, data = large_envelope()
    c = SMALL_CHUNK
    swapped = data[c:2 * c] + data[:c] + data[2 * c:]
    assert len(swapped) == len(data) and swapped != data
    with pytest.raises(EnvelopeError, match="bad signature"):
        unseal(KEY, [*frames[:3], swapped])


def test_chunks_moved_between_frames_are_refused():
    c = SMALL_CHUNK
    a, b = bytes([1]) * (2 * c), bytes([2]) * (2 * c)
    frames = [bytes(f) for f in seal(KEY, "request", "r", b"p", [a, b], chunk=c)]
    # Same chunks, same total, other frames: the lengths stay valid only if the header changes.
    moved = [*frames[:3], a + b[:c], b[c:]]
    with pytest.raises(EnvelopeError, match="bad signature"):
        unseal(KEY, moved)


def test_a_header_claiming_another_chunk_size_is_refused():
    frames, _ = large_envelope()
    header = json.loads(frames[0])
    header["chunk"] = 2 * SMALL_CHUNK
    forged = [json.dumps(header, separators=(",", ":")).encode(), *frames[1:]]
    with pytest.raises(EnvelopeError, match="bad signature"):
        unseal(KEY, forged)


@pytest.mark.parametrize("chunk", [0, 1, -SMALL_CHUNK, SMALL_CHUNK // 2, SMALL_CHUNK + 1,
                                   2 * envelope.MAX_CHUNK, 65536.0, "65536", None, True])
def test_a_header_with_an_invalid_chunk_size_is_refused_before_hashing(chunk):
    frames, _ = large_envelope()
    header = json.loads(frames[0])
    if chunk is None:
        del header["chunk"]
    else:
        header["chunk"] = chunk
    with pytest.raises(EnvelopeError, match="malformed envelope: chunk size"):
        unseal(KEY, [json.dumps(header).encode(), *frames[1:]])
    with pytest.raises(ValueError, match="chunk must be a power of two"):
        seal(KEY, "request", "r", b"p", chunk=chunk)


def test_the_signature_is_the_documented_construction():
    frames, data = large_envelope()
    c, header = SMALL_CHUNK, frames[0]
    import hashlib
    import hmac
    message = len(header).to_bytes(8, "big") + header
    for frame in (b"the pickle", data):
        message += len(frame).to_bytes(8, "big")
        message += b"".join(hashlib.sha256(frame[at:at + c]).digest()
                            for at in range(0, len(frame), c))
    assert frames[1] == hmac.new(KEY, message, hashlib.sha256).digest()


def test_a_pickle_cover_signs_the_pickle_header_and_lengths_but_not_buffer_bytes():
    """What a private channel's envelopes cover: the documented construction with the buffers'
    lengths alone; the pickle, the header and every length stay covered."""
    import hashlib
    import hmac
    frames = sealed(buffers=[b"first buffer", b"second"], cover=envelope.PICKLE)
    header = frames[0]
    assert json.loads(header)["cover"] == "pickle"
    message = len(header).to_bytes(8, "big") + header + (10).to_bytes(8, "big")
    message += hashlib.sha256(b"the pickle").digest()
    message += (12).to_bytes(8, "big") + (6).to_bytes(8, "big")
    assert frames[1] == hmac.new(KEY, message, hashlib.sha256).digest()
    assert [bytes(b) for b in unseal(KEY, frames).buffers] == [b"first buffer", b"second"]
    for index, frame in ((2, b"the pickle"), (3, b"first buffer!")):  # a changed pickle, length
        changed = list(frames)
        changed[index] = frame.replace(b"p", b"P") if index == 2 else frame
        with pytest.raises(EnvelopeError, match="bad signature|malformed"):
            unseal(KEY, changed)


def test_the_cover_cannot_be_changed_on_the_way():
    for cover, other in (("all", "pickle"), ("pickle", "all")):
        frames = sealed(cover=cover)
        header = json.loads(frames[0])
        header["cover"] = other
        with pytest.raises(EnvelopeError, match="bad signature"):
            unseal(KEY, [json.dumps(header).encode(), *frames[1:]])
        header["cover"] = "nothing"
        with pytest.raises(EnvelopeError, match="malformed envelope: cover 'nothing'"):
            unseal(KEY, [json.dumps(header).encode(), *frames[1:]])
    with pytest.raises(ValueError, match="cover must be one of"):
        sealed(cover="nothing")


def test_empty_frames_have_no_chunk():
    frames = seal(KEY, "request", "r", b"p", [b"", b""])
    assert [bytes(b) for b in unseal(KEY, frames).buffers] == [b"", b""]
    with pytest.raises(EnvelopeError, match="bad signature"):
        unseal(KEY, [*frames[:3], b"", b"x"])


def test_parallel_hashing_gives_the_same_signature(monkeypatch):
    frames, data = large_envelope()
    monkeypatch.setattr(envelope, "PARALLEL_MIN", 1)
    monkeypatch.setattr(envelope, "_cores", lambda: 3)
    again = seal(KEY, "request", "r1", b"the pickle", [bytearray(data)], chunk=SMALL_CHUNK)
    assert again[1] == frames[1]
    assert bytes(unseal(KEY, again).buffers[0]) == data
    tampered = bytearray(data)
    tampered[-1] ^= 1
    with pytest.raises(EnvelopeError, match="bad signature"):
        unseal(KEY, [*again[:3], tampered])


def test_sealing_copies_no_frame():
    import numpy
    array = numpy.arange(3 * SMALL_CHUNK, dtype=numpy.uint8)
    buffers = []
    payload = pickle.dumps(array, protocol=5, buffer_callback=buffers.append)
    frames = seal(KEY, "request", "r", payload, buffers, chunk=SMALL_CHUNK)
    assert numpy.shares_memory(numpy.asarray(frames[3]), array)


def test_a_header_nested_too_deep_is_malformed_not_a_recursion_error():
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(envelope.EnvelopeError, match="malformed envelope: the header is not"):
        envelope.unseal(KEY, [deep, b"signature", b"pickle"])
    huge = b'{"format": 2, "pad": "' + b"x" * (2 << 20) + b'"}'
    with pytest.raises(envelope.EnvelopeError, match="malformed envelope: a header of"):
        envelope.unseal(KEY, [huge, b"signature", b"pickle"])
