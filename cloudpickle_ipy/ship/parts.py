"""Envelope frames cut into messages of at most ``size`` bytes, and put back together.

A large payload's body does not travel as one message: a websocket has a message size limit, and
a transfer in parts can be acknowledged part by part, which is what a progress bar shows. Each
part is one comm message whose data says where its buffers go, ``{"pieces": [[frame, offset,
length], ...]}`` (the first part also gives ``"lengths"``, every frame's total, and ``"cover"``,
what the envelope's signature covers), and whose buffers are those pieces, in order: slices of the
sender's frames, never copies. The receiver writes each piece in place into a frame allocated
once; a frame that arrives whole in one piece is kept as it came, uncopied. It also hashes each
piece's envelope chunks that the signature covers as it arrives (:func:`.envelope.chunk_digests`),
while the next part is still on its way, so that verifying the envelope at the end hashes nothing
twice. Parts may only arrive in order (one client's messages do, on every
channel).
Standard library only: the agent uses it inside the kernel.
"""
from .envelope import ALL, CHUNK, COVERS, chunk_digests, signed_frames

# Envelopes of at least this many bytes travel in parts (and a request's body ahead of its
# signature: see .agent); smaller ones in one message.
SPLIT_MIN = 1 << 22
# The largest part while progress is shown: a part is what progress counts as it arrives (each one
# cut from a larger frame costs the receiver a copy, so parts are only as small as needed).
PROGRESS_PART = 64 << 20


def cut(frames, size=None, cover=ALL):
    """``[(data, buffers), ...]``: one message per part of at most ``size`` bytes (``None``: no
    limit; at least one part, even for empty frames) of an envelope body whose signature has
    ``cover``. A frame that does not fit in the room left
    starts a new part: one that fits in a part is never cut (the receiver keeps it as it comes,
    uncopied), and one larger is cut at multiples of ``size`` (chunk boundaries, for hashing on
    arrival)."""
    views = [memoryview(frame).cast("B") for frame in frames]
    size = size or max([1, *map(len, views)])
    parts, pieces, buffers, room = [], [], [], size

    def close():
        nonlocal pieces, buffers, room
        parts.append(({"pieces": pieces}, buffers))
        pieces, buffers, room = [], [], size

    for index, view in enumerate(views):
        if pieces and room < len(view):
            close()
        offset = 0
        while offset < len(view):
            length = min(room, len(view) - offset)
            pieces.append([index, offset, length])
            buffers.append(view[offset:offset + length])
            offset += length
            room -= length
            if room == 0:
                close()
    if pieces or not parts:
        close()
    parts[0][0].update(lengths=[len(view) for view in views], cover=cover)
    return parts


class Assembly:
    """The frames of one transfer, as its parts arrive (:meth:`add`); ``lengths`` and ``cover``
    come with the first part."""

    def __init__(self, lengths, cover=ALL):
        if not isinstance(lengths, list) or not all(isinstance(n, int) and n >= 0
                                                    for n in lengths):
            raise ValueError(f"malformed part: frame lengths {lengths!r}")
        if cover not in COVERS:
            raise ValueError(f"malformed part: cover {cover!r}")
        self.lengths = lengths
        self.hashed = signed_frames(cover, len(lengths))
        self.total = sum(lengths)
        self.done = 0
        self._frames = [None] * len(lengths)
        self._digests = [{} for _ in lengths]  # frame -> {chunk number: digest}

    def add(self, data, buffers):
        """Place one part's ``buffers`` where its ``data`` says; return the bytes it carried."""
        pieces = data.get("pieces")
        if not isinstance(pieces, list) or len(pieces) != len(buffers):
            raise ValueError("malformed part: its pieces do not match its buffers")
        added = 0
        for (index, offset, length), buffer in zip(pieces, buffers):
            view = memoryview(buffer).cast("B")
            if not (0 <= index < len(self.lengths) and 0 <= offset
                    and offset + length <= self.lengths[index] and len(view) == length):
                raise ValueError("malformed part: a piece outside its frame")
            if offset == 0 and length == self.lengths[index]:
                self._frames[index] = view
            else:
                if self._frames[index] is None:
                    self._frames[index] = bytearray(self.lengths[index])
                self._frames[index][offset:offset + length] = view
            self._hash(index, offset, view)
            added += length
        self.done += added
        return added

    def _hash(self, index, offset, view):
        """The digests of the envelope chunks that lie whole in this piece (a piece starting off a
        chunk boundary leaves its frame to be hashed at the end); none of an unsigned frame's."""
        if offset % CHUNK or index >= self.hashed:
            return
        end = len(view) if offset + len(view) == self.lengths[index] else len(view) // CHUNK * CHUNK
        first = offset // CHUNK
        for number, digest in enumerate(chunk_digests(view[:end]), first):
            self._digests[index][number] = digest

    def digests(self):
        """``{frame index: its chunk digests}`` for the frames hashed whole as they arrived."""
        out = {}
        for index, (length, found) in enumerate(zip(self.lengths, self._digests)):
            count = -(-length // CHUNK)
            if len(found) == count:
                out[index] = [found[number] for number in range(count)]
        return out

    @property
    def complete(self):
        return self.done == self.total

    def frames(self):
        """The frames (once :attr:`complete`); an empty frame is ``b""``."""
        return [b"" if frame is None else frame for frame in self._frames]
