"""Envelope frames cut into messages of at most ``size`` bytes, and put back together.

A large payload's body does not travel as one message: a websocket has a message size limit, and
a transfer in parts can be acknowledged part by part, which is what a progress bar shows. Each
part is one comm message whose data says where its buffers go, ``{"pieces": [[frame, offset,
length], ...]}`` (the first part also gives ``"lengths"``, every frame's total), and whose buffers
are those pieces, in order: slices of the sender's frames, never copies. The receiver writes each
piece in place into a frame allocated once; a frame that arrives whole in one piece is kept as it
came, uncopied. Parts may only arrive in order (one client's messages do, on every channel).
Standard library only: the agent uses it inside the kernel.
"""

# Envelopes of at least this many bytes travel in parts (and a request's body ahead of its
# signature: see .agent); smaller ones in one message.
SPLIT_MIN = 1 << 22
# The largest part, whatever the channel allows: a part is acknowledged (progress) when it arrives.
PART_MAX = 64 << 20


def cut(frames, size):
    """``[(data, buffers), ...]``: one message per part of at most ``size`` bytes (at least one
    part, even for empty frames). A frame that fits in a part is never cut (it starts a part of its
    own if the current one has no room left): the receiver keeps it as it comes, uncopied."""
    views = [memoryview(frame).cast("B") for frame in frames]
    parts, pieces, buffers, room = [], [], [], size

    def close():
        nonlocal pieces, buffers, room
        parts.append(({"pieces": pieces}, buffers))
        pieces, buffers, room = [], [], size

    for index, view in enumerate(views):
        if pieces and room < len(view) <= size:
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
    parts[0][0]["lengths"] = [len(view) for view in views]
    return parts


class Assembly:
    """The frames of one transfer, as its parts arrive (:meth:`add`)."""

    def __init__(self, lengths):
        if not isinstance(lengths, list) or not all(isinstance(n, int) and n >= 0
                                                    for n in lengths):
            raise ValueError(f"malformed part: frame lengths {lengths!r}")
        self.lengths = lengths
        self.total = sum(lengths)
        self.done = 0
        self._frames = [None] * len(lengths)

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
            added += length
        self.done += added
        return added

    @property
    def complete(self):
        return self.done == self.total

    def frames(self):
        """The frames (once :attr:`complete`); an empty frame is ``b""``."""
        return [b"" if frame is None else frame for frame in self._frames]
