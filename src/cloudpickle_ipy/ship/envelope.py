"""The wire format of one payload: a signed header, the pickle, and its out-of-band buffers.

Jupyter signs only a message's JSON frames, never its binary buffers, so every payload that travels
as buffers carries its own signature. An envelope is a list of frames::

    [header, signature, pickle, buffer_1, ..., buffer_n]

- ``header``: UTF-8 JSON ``{"format", "python", "kind", "id", "frames"}``: the envelope format
  version, the sender's Python ``major.minor``, what kind of message it is (``request``/``reply``),
  the request it belongs to, and the length of every frame after the signature;
- ``signature``: HMAC-SHA256, keyed with the kernel's connection key, over the header and every
  frame after the signature, each prefixed with its length (so no bytes can move between frames);
- ``pickle``: the pickle stream; each protocol-5 out-of-band buffer is its own frame, so a large
  array is neither copied into the pickle nor re-encoded.

:func:`unseal` checks everything before anything is unpickled and refuses with :class:`EnvelopeError`
naming the reason. Standard library only: this runs inside the target kernel too.
"""
import hashlib
import hmac
import json
import sys

FORMAT = 1
PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
KINDS = ("request", "reply")


class EnvelopeError(ValueError):
    """An envelope was refused; nothing in it was loaded."""


class Envelope:
    """A verified envelope: its header, its pickle and its out-of-band buffers (not yet loaded)."""

    __slots__ = ("header", "pickle", "buffers")

    def __init__(self, header, pickle, buffers):
        self.header = header
        self.pickle = pickle
        self.buffers = buffers

    @property
    def kind(self):
        return self.header["kind"]

    @property
    def id(self):
        return self.header["id"]


def seal(key, kind, request_id, pickle, buffers=(), python=PYTHON):
    """Frame ``pickle`` and its out-of-band ``buffers`` into a signed envelope (a list of frames).

    No frame is copied: the buffers go out as they are (``memoryview``, ``PickleBuffer.raw()``...).
    ``python`` is only for tests that need an envelope from another Python.
    """
    if kind not in KINDS:
        raise ValueError(f"envelope kind must be one of {KINDS}, got {kind!r}")
    frames = [_flat(pickle)] + [_flat(b) for b in buffers]
    header = json.dumps({
        "format": FORMAT, "python": python, "kind": kind, "id": request_id,
        "frames": [f.nbytes for f in frames],
    }, separators=(",", ":")).encode()
    return [header, sign(key, header, frames)] + frames


def _flat(buffer):
    """The bytes of ``buffer`` as a flat view; ``PickleBuffer.raw`` also flattens Fortran order."""
    raw = getattr(buffer, "raw", None)
    return raw() if raw is not None else memoryview(buffer).cast("B")


def sign(key, header, frames):
    """The HMAC-SHA256 of ``header`` and ``frames``, each prefixed with its length."""
    if not key:
        raise EnvelopeError("no key: the kernel connection is unsigned (empty key), so payloads "
                            "cannot be authenticated; refusing to seal or open them")
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for frame in (header, *frames):
        mac.update(memoryview(frame).nbytes.to_bytes(8, "big"))
        mac.update(frame)
    return mac.digest()


def unseal(key, frames, kind=None, request_id=None):
    """Verify ``frames`` and return an :class:`Envelope`, or raise :class:`EnvelopeError`.

    Refuses, in this order: a malformed envelope, another format version, no signature, a
    signature that does not match (tampered with, or another key), another kind or request than
    expected, another Python minor version.
    """
    frames = list(frames)
    if len(frames) < 3:
        raise EnvelopeError(f"malformed envelope: {len(frames)} frames, expected a header, a "
                            f"signature and a pickle at least")
    header_frame, signature, body = bytes(frames[0]), bytes(frames[1]), frames[2:]
    try:
        header = json.loads(header_frame)
        version = header["format"]
    except (ValueError, TypeError, KeyError):
        raise EnvelopeError("malformed envelope: the header is not an envelope header") from None
    if version != FORMAT:
        raise EnvelopeError(f"envelope format {version!r}, but this side reads format {FORMAT} "
                            f"(the two sides run different versions of cloudpickle_ipy)")
    if not signature:
        raise EnvelopeError("unsigned envelope: it carries no signature")
    if not hmac.compare_digest(signature, sign(key, header_frame, body)):
        raise EnvelopeError("bad signature: the envelope was tampered with or signed with "
                            "another key")
    # Signed, so the header is ours: what remains are mismatches, not attacks.
    if kind is not None and header.get("kind") != kind:
        raise EnvelopeError(f"expected a {kind} envelope, got {header.get('kind')!r}")
    if request_id is not None and header.get("id") != request_id:
        raise EnvelopeError(f"the envelope belongs to request {header.get('id')!r}, not to "
                            f"{request_id!r}")
    if header.get("python") != PYTHON:
        raise EnvelopeError(f"payload made by Python {header.get('python')}, but this is Python "
                            f"{PYTHON}: code pickled by value does not load across minor "
                            f"versions")
    lengths = [memoryview(f).nbytes for f in body]
    if header.get("frames") != lengths:
        raise EnvelopeError(f"malformed envelope: frame lengths {lengths} do not match the "
                            f"header's {header.get('frames')}")
    return Envelope(header, body[0], body[1:])
