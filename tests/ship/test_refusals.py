"""Envelopes made by hand: the agent refuses bad ones before unpickling anything.

Each case is sent both ways a request travels (see :mod:`cloudpickle_ipy.ship.agent`): whole in the
``execute_request``, and split (the body ahead in a comm message, then header and signature).
"""
import functools
import uuid

import pytest

import cloudpickle_ipy.core as core
from cloudpickle_ipy.ship import PayloadRefused, envelope
from cloudpickle_ipy.ship.agent import PART
from cloudpickle_ipy.ship.parts import cut


class Loaded:
    """Unpickling this sets ``builtins.LOADED`` on the target: proof that a payload was loaded."""

    def __reduce__(self):
        return exec, ("import builtins; builtins.LOADED = True",)


def request(key, python=envelope.PYTHON):
    request_id = uuid.uuid4().hex
    data = core.dumps({"op": "push", "args": {"names": {"x": Loaded()}}, "modules": {}})
    return request_id, envelope.seal(key, "request", request_id, data, python=python)


def loaded(kernel):
    return kernel.run("hasattr(__import__('builtins'), 'LOADED')")


def unsigned(frames):
    return [frames[0], b"", *frames[2:]]


def tampered(frames):
    return [*frames[:2], bytes(frames[2]).replace(b"LOADED = True", b"LOADED = 1234")]


def other_request(frames):
    return frames  # sent under another request id than the one it was sealed for


def moved_signature(frames):
    # Split: the body travels apart from its signature; moving a frame across still breaks it.
    return [frames[0], frames[1], b"", bytes(frames[2])]


@pytest.fixture(params=[False, True], ids=["whole", "split"])
def split(request):
    return request.param


@pytest.mark.parametrize("change, reason", [
    (moved_signature, "bad signature"),
    (unsigned, "unsigned envelope"),
    (tampered, "bad signature: the envelope was tampered with"),
    (other_request, "belongs to request"),
])
def test_refused_and_nothing_loaded(kernel, split, change, reason):
    request_id, frames = request(kernel.key)
    if change is other_request:
        request_id = uuid.uuid4().hex
    reply = kernel.send_frames(request_id, change(frames), split=split)
    assert reply["refused"] and reason in reply["error"]["message"]
    assert not loaded(kernel)


def test_other_key_refused(kernel, split):
    request_id, frames = request(b"not the kernel's key")
    reply = kernel.send_frames(request_id, frames, split=split)
    assert "signed with another key" in reply["error"]["message"] and not loaded(kernel)


def test_other_python_minor_version_refused(kernel, split):
    request_id, frames = request(kernel.key, python="3.8")
    reply = kernel.send_frames(request_id, frames, split=split)
    assert reply["refused"]
    assert (f"payload made by Python 3.8, but this is Python {envelope.PYTHON}"
            in reply["error"]["message"])
    assert not loaded(kernel)


def test_refusal_raises_locally(kernel, monkeypatch):
    # The client seals as another Python would (the kernel's reply is sealed over there).
    monkeypatch.setattr(envelope, "frame", functools.partial(envelope.frame, python="3.8"))
    with pytest.raises(PayloadRefused, match="refused the payload: payload made by Python 3.8"):
        kernel.push(y=1)


def test_a_split_body_alone_is_not_loaded(kernel):
    # The body of a split request, whole and signed, but never served: nothing loads it.
    request_id, frames = request(kernel.key)
    for data, buffers in cut(frames, 1 << 20):
        kernel.channel.send("shell", PART, {"id": request_id, "comm": kernel._comm_id, **data},
                            buffers=buffers)
    assert not loaded(kernel)


@pytest.mark.parametrize("split", [False, True], ids=["whole", "split"])
def test_a_well_signed_payload_does_load(split):
    # The control for the tests above: the same payload, untouched, is loaded (each way on a
    # kernel of its own, since loading it leaves its mark there).
    import cloudpickle_ipy

    with cloudpickle_ipy.connect("local", timeout=60) as kernel:
        assert not loaded(kernel)
        reply = kernel.send_frames(*request(kernel.key), split=split)
        assert reply["ok"] and loaded(kernel)
