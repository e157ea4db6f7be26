"""Large transfers travel in parts of at most the channel's part size, acknowledged as they arrive
(what a progress display shows), and come back together byte for byte."""
import numpy as np
import pytest

from cloudpickle_ipy.ship.channels.zeromq import start_local
from cloudpickle_ipy.ship.kernel import KernelTarget
from cloudpickle_ipy.ship.parts import Assembly, cut


@pytest.mark.parametrize("lengths, size", [
    ([0], 4), ([10], 4), ([4, 4], 4), ([3, 0, 9, 1], 5), ([1 << 20, 7, 3 << 19], 1 << 18),
])
def test_cut_and_assemble_give_back_the_frames(lengths, size):
    rng = np.random.default_rng(sum(lengths))
    frames = [rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in lengths]
    parts = cut(frames, size)
    assert all(sum(len(b) for b in buffers) <= size for _, buffers in parts)
    assembly = Assembly(parts[0][0]["lengths"])
    for data, buffers in parts:
        assembly.add(data, [bytes(b) for b in buffers])  # as they arrive: copies, not views
    assert assembly.complete and [bytes(f) for f in assembly.frames()] == frames


def test_malformed_parts_are_refused():
    with pytest.raises(ValueError, match="frame lengths"):
        Assembly([-1])
    assembly = Assembly([4])
    with pytest.raises(ValueError, match="outside its frame"):
        assembly.add({"pieces": [[0, 2, 4]]}, [b"abcd"])
    with pytest.raises(ValueError, match="do not match"):
        assembly.add({"pieces": [[0, 0, 4]]}, [])


@pytest.fixture(scope="module")
def small_parts():
    """A target whose channel takes messages of at most 1 MiB."""
    channel = start_local()
    channel.part_size = 1 << 20
    target = KernelTarget(channel, timeout=120, name="small parts")
    try:
        yield target
    finally:
        target.close()


def test_a_large_push_and_pull_travel_in_acknowledged_parts(small_parts):
    seen = []
    small_parts.progress = lambda direction, done, total: seen.append((direction, done, total))
    data = np.arange(3 << 20, dtype=np.uint32)  # 12 MiB: 12 parts each way
    try:
        small_parts.push(data=data)
        pushed = [s for s in seen if s[0] == "push"]
        assert len(pushed) >= 12 and pushed[-1][1] == pushed[-1][2] >= data.nbytes
        assert [done for _, done, _ in pushed] == sorted(done for _, done, _ in pushed)
        seen.clear()
        back = small_parts.run("data[::-1].copy()")
        pulled = [s for s in seen if s[0] == "pull"]
        assert len(pulled) >= 12 and pulled[-1][1] == pulled[-1][2] >= data.nbytes
    finally:
        small_parts.progress = None
    assert np.array_equal(back, data[::-1])
    assert small_parts.run("import sys; len(sys.modules['cloudpickle_ipy.ship.agent']._agent"
                           ".pending)") == 0


def test_a_frame_that_fits_in_a_part_is_never_cut():
    frames = [b"p" * 10, b"a" * 64, b"b" * 30, b"c" * 200]
    parts = cut(frames, 64)
    whole = {index for data, _ in parts for index, offset, length in data["pieces"]
             if offset == 0 and length == len(frames[index])}
    assert whole == {0, 1, 2}  # 3 (200 bytes) cannot fit: it alone is cut
    assembly = Assembly(parts[0][0]["lengths"])
    for data, buffers in parts:
        assembly.add(data, buffers)
    assert [bytes(f) for f in assembly.frames()] == frames


def test_chunks_hashed_on_arrival_verify_the_envelope_and_still_catch_tampering():
    from cloudpickle_ipy.ship import envelope

    key, data = b"k" * 32, np.arange(3 << 20, dtype=np.uint32)  # 12 MiB: three 4 MiB chunks
    sealed = envelope.seal(key, "request", "r1", b"pickle", [data])
    for tamper in (False, True):
        body = [bytearray(f) for f in sealed[2:]]
        if tamper:
            body[1][5 << 20] ^= 1
        assembly = Assembly(cut(body, 1 << 22)[0][0]["lengths"])
        for part, buffers in cut(body, 1 << 22):
            assembly.add(part, [bytes(b) for b in buffers])
        known = assembly.digests()
        assert set(known) == {0, 1}
        assert known[1] == envelope.chunk_digests(body[1])
        frames = sealed[:2] + assembly.frames()
        if tamper:
            with pytest.raises(envelope.EnvelopeError, match="bad signature"):
                envelope.unseal(key, frames, "request", "r1", known=known)
        else:
            assert bytes(envelope.unseal(key, frames, "request", "r1", known=known).pickle) == \
                b"pickle"
