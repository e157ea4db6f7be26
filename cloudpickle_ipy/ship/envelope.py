"""The wire format of one payload: a signed header, the pickle, and its out-of-band buffers.

Jupyter signs only a message's JSON frames, never its binary buffers, so every payload that travels
as buffers carries its own signature. An envelope is a list of frames::

    [header, signature, pickle, buffer_1, ..., buffer_n]

- ``header``: UTF-8 JSON ``{"format", "python", "kind", "id", "frames", "chunk", "cover"}``: the
  envelope format version, the sender's Python ``major.minor``, what kind of message it is
  (``request``/``reply``), the request it belongs to, the length of every frame after the
  signature, the chunk size ``c`` of the signature's tree hash, and which frames' bytes it
  covers (below);
- ``signature``: the HMAC-SHA256 described below, keyed with the kernel's connection key;
- ``pickle``: the pickle stream; each protocol-5 out-of-band buffer is its own frame, so a large
  array is neither copied into the pickle nor re-encoded.

The signature (format 3) is a one-level tree hash, so that the bytes of a large frame can be hashed
on several cores (``hashlib`` releases the GIL while it hashes) and none is copied. Write ``u64(n)``
for ``n`` as 8 bytes big-endian, and ``F_1 .. F_m`` for the frames after the signature (the pickle
first). Each frame ``F_i`` of length ``L_i`` is cut into ``k_i = ceil(L_i / c)`` chunks
``F_i[0:c], F_i[c:2c], ..., F_i[(k_i-1)c:L_i]`` (an empty frame has no chunk), and::

    M = u64(len(header)) || header
        || u64(L_1) || SHA-256(chunk 1 of F_1) || ... || SHA-256(chunk k_1 of F_1)
        || ...
        || u64(L_m) || SHA-256(chunk 1 of F_m) || ... || SHA-256(chunk k_m of F_m)
    signature = HMAC-SHA256(key, M)

``M`` parses in one way only: the header (whose length comes first) gives ``c``, and each frame's
length gives how many 32-byte digests follow it. So the MAC covers every byte of every frame (up to
a SHA-256 collision): a changed byte changes its chunk's digest, moved, dropped or reordered chunks
change the digest sequence, bytes moved between frames change the lengths, and the header (chunk
size included) is in ``M`` as it is. ``c`` is a power of two from ``MIN_CHUNK`` to ``MAX_CHUNK``
(so a forged header cannot make the receiver hash byte by byte); the sender picks it (``CHUNK``).

The header's ``cover`` is ``"all"`` (as above) or ``"pickle"``: then only the pickle's chunk
digests are in ``M``, and each out-of-band buffer adds its length alone. The sender chooses
``"pickle"`` only on a *private* channel (:attr:`.channels.Channel.private`: a Unix socket or TCP
on loopback), where nobody can change bytes in flight who could not also read the key: there,
hashing a large array's bytes on both sides (as slow as sending them) protects against nothing.
The pickle, which is code, the header and every length are always covered; a reply covers what its
request covered. ``cover`` is in the signed header, so it cannot be changed on the way.

:func:`unseal` checks everything before anything is unpickled and refuses with :class:`EnvelopeError`
naming the reason. The frames need not travel together (:mod:`.agent` says how a request's do):
whatever the route, the receiver reassembles ``[header, signature, body...]`` and unseals that.
Standard library only: this runs inside the target kernel too.
"""
import hashlib
import hmac
import json
import os
import sys
import threading

FORMAT = 3
PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
KINDS = ("request", "reply")
ALL, PICKLE = COVERS = ("all", "pickle")  # what the signature covers: see the module docstring

CHUNK = 1 << 22  # 4 MiB: what seal() uses
MIN_CHUNK, MAX_CHUNK = 1 << 16, 1 << 30  # what unseal() accepts
MAX_HEADER = 1 << 20  # bytes: a header lists one length per frame; a longer one is refused unread
# Below this many bytes in all, every chunk is hashed on the calling thread (threads cost ~0.1 ms).
PARALLEL_MIN = 1 << 23
MAX_THREADS = 8


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

    @property
    def cover(self):
        return self.header["cover"]


def seal(key, kind, request_id, pickle, buffers=(), python=PYTHON, chunk=CHUNK, cover=ALL):
    """Frame ``pickle`` and its out-of-band ``buffers`` into a signed envelope (a list of frames).

    No frame is copied: the buffers go out as they are (``memoryview``, ``PickleBuffer.raw()``...).
    ``python`` is only for tests that need an envelope from another Python; ``chunk`` is the tree
    hash's chunk size (a power of two from ``MIN_CHUNK`` to ``MAX_CHUNK``); ``cover``: which frames'
    bytes the signature covers (``ALL``, or ``PICKLE`` on a private channel only).
    """
    header, frames = frame(kind, request_id, pickle, buffers, python=python, chunk=chunk,
                           cover=cover)
    return [header, sign(key, header, frames, chunk, cover=cover)] + frames


def frame(kind, request_id, pickle, buffers=(), python=PYTHON, chunk=CHUNK, cover=ALL):
    """``(header, body)``: an envelope not signed yet, ``body`` being ``[pickle, *buffers]`` as
    flat views (nothing copied). ``[header, sign(key, header, body, chunk, cover=cover)] + body``
    is what :func:`seal` returns; apart, the body can be sent while its signature is computed."""
    if kind not in KINDS:
        raise ValueError(f"envelope kind must be one of {KINDS}, got {kind!r}")
    if not _valid_chunk(chunk):
        raise ValueError(f"chunk must be a power of two from {MIN_CHUNK} to {MAX_CHUNK}, "
                         f"got {chunk!r}")
    if cover not in COVERS:
        raise ValueError(f"cover must be one of {COVERS}, got {cover!r}")
    frames = [_flat(pickle)] + [_flat(b) for b in buffers]
    header = json.dumps({
        "format": FORMAT, "python": python, "kind": kind, "id": request_id,
        "frames": [f.nbytes for f in frames], "chunk": chunk, "cover": cover,
    }, separators=(",", ":")).encode()
    return header, frames


def _flat(buffer):
    """The bytes of ``buffer`` as a flat view; ``PickleBuffer.raw`` also flattens Fortran order."""
    raw = getattr(buffer, "raw", None)
    return raw() if raw is not None else memoryview(buffer).cast("B")


def _valid_chunk(chunk):
    return (type(chunk) is int and MIN_CHUNK <= chunk <= MAX_CHUNK
            and chunk & (chunk - 1) == 0)


def sign(key, header, frames, chunk=CHUNK, known=None, cover=ALL):
    """The signature of ``header`` and ``frames``: HMAC-SHA256 over ``M`` (see the module), the
    bytes of every frame in it (``cover=ALL``) or of the pickle alone (``PICKLE``).
    ``known``: ``{frame index: its chunk digests}`` already computed (with ``CHUNK``)."""
    if not key:
        raise EnvelopeError("no key: the kernel connection is unsigned (empty key), so payloads "
                            "cannot be authenticated; refusing to seal or open them")
    views = [memoryview(frame).cast("B") for frame in frames]
    signed = signed_frames(cover, len(views))
    known = known if known is not None and chunk == CHUNK else {}
    todo = [view for i, view in enumerate(views[:signed]) if i not in known]
    hashed = iter(_digests([view[at:at + chunk] for view in todo
                            for at in range(0, view.nbytes, chunk)]))
    mac = hmac.new(key, digestmod=hashlib.sha256)
    mac.update(len(header).to_bytes(8, "big"))
    mac.update(header)
    for i, view in enumerate(views):
        mac.update(view.nbytes.to_bytes(8, "big"))
        if i >= signed:
            continue
        if i in known:
            mac.update(b"".join(known[i]))
        else:
            mac.update(b"".join(next(hashed) for _ in range(-(-view.nbytes // chunk))))
    return mac.digest()


def signed_frames(cover, count):
    """How many of a body's ``count`` frames (the pickle first) have their bytes in ``M``."""
    return count if cover == ALL else 1


def chunk_digests(view, chunk=CHUNK):
    """The SHA-256 of each ``chunk`` of ``view``: what :func:`sign` and :func:`unseal` take as
    ``known``, computed as a frame's parts arrive (:mod:`.parts`)."""
    view = memoryview(view).cast("B")
    return _digests([view[at:at + chunk] for at in range(0, view.nbytes, chunk)])


def _digests(chunks):
    """The SHA-256 of each chunk, in order: on several threads when there is much to hash.

    Threads are started per call (striped over the chunks, the calling thread taking its share)
    rather than kept in a pool, so nothing lingers in the kernel and a forked process is safe.
    """
    digests = [None] * len(chunks)

    def work(first, step):
        for i in range(first, len(chunks), step):
            digests[i] = hashlib.sha256(chunks[i]).digest()

    threads = 1
    if len(chunks) > 1 and sum(c.nbytes for c in chunks) >= PARALLEL_MIN:
        threads = min(len(chunks), MAX_THREADS, _cores())
    helpers = [threading.Thread(target=work, args=(n, threads), daemon=True)
               for n in range(1, threads)]
    for helper in helpers:
        helper.start()
    try:
        work(0, threads)
    finally:
        for helper in helpers:
            helper.join()
    if None in digests:  # a helper died (it cannot, short of MemoryError): never sign a hole
        raise RuntimeError("hashing an envelope frame failed")
    return digests


def _cores():
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def unseal(key, frames, kind=None, request_id=None, known=None):
    """Verify ``frames`` and return an :class:`Envelope`, or raise :class:`EnvelopeError`.
    ``known``: the chunk digests of body frames hashed as they arrived (see :func:`sign`).

    Refuses, in this order: a malformed envelope, another format version, no signature, a
    signature that does not match (tampered with, or another key), another kind or request than
    expected, another Python minor version.
    """
    frames = list(frames)
    if len(frames) < 3:
        raise EnvelopeError(f"malformed envelope: {len(frames)} frames, expected a header, a "
                            f"signature and a pickle at least")
    header_frame, signature, body = bytes(frames[0]), bytes(frames[1]), frames[2:]
    if len(header_frame) > MAX_HEADER:
        raise EnvelopeError(f"malformed envelope: a header of {len(header_frame):,} bytes (at most "
                            f"{MAX_HEADER:,})")
    try:
        header = json.loads(header_frame)
        version = header["format"]
    except (ValueError, TypeError, KeyError, RecursionError):  # nested too deep for the parser
        raise EnvelopeError("malformed envelope: the header is not an envelope header") from None
    if version != FORMAT:
        raise EnvelopeError(f"envelope format {version!r}, but this side reads format {FORMAT} "
                            f"(the two sides run different versions of cloudpickle_ipy)")
    if not signature:
        raise EnvelopeError("unsigned envelope: it carries no signature")
    chunk = header.get("chunk") if isinstance(header, dict) else None
    if not _valid_chunk(chunk):
        raise EnvelopeError(f"malformed envelope: chunk size {chunk!r} is not a power of two "
                            f"from {MIN_CHUNK} to {MAX_CHUNK}")
    cover = header.get("cover")
    if cover not in COVERS:
        raise EnvelopeError(f"malformed envelope: cover {cover!r} is not one of {COVERS}")
    if not hmac.compare_digest(signature, sign(key, header_frame, body, chunk, known, cover)):
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
