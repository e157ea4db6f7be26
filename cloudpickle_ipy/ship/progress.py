"""Progress of long transfers to and from a target: bytes done of total, and the rate.

A :class:`~.kernel.KernelTarget` reports a large request or reply as its parts arrive at the other
side, calling its ``progress`` hook with ``(direction, done, total)`` (``"push"`` or ``"pull"``,
bytes; a push also when it starts). :class:`Progress` is such a hook: it shows a bar for a
transfer that has lasted ``after`` seconds, or that will at the rate measured since it was first
reported (short transfers show nothing), and closes it when the transfer is done.

The bar is tqdm's, chosen because it is the well-kept standard for this: sizes in KiB/MiB/GiB, a
smoothed rate, time left, the terminal's width, one line rewritten in place. :class:`TransferBar`
draws it on one line of ``sys.stderr``; :mod:`cloudpickle_ipy.display` derives a bar that updates
a notebook display in place instead (tqdm's own notebook bar needs ipywidgets, which a saved
notebook, nbconvert or a console cannot show).
"""
import sys
import time

from tqdm.std import tqdm

AFTER = 2.0  # seconds a transfer lasts, or is estimated to last, before its progress shows


class TransferBar(tqdm):
    """A tqdm bar, headed ``what``, for ``total`` bytes of which ``done`` were done at ``since``
    (``time.time()``): its times and rate are measured from there."""

    def __init__(self, what, total, done, since, **options):
        options.setdefault("file", sys.stderr)
        options.setdefault("dynamic_ncols", True)
        super().__init__(total=total, initial=done, desc=what,
                         unit="B", unit_scale=True, unit_divisor=1024, mininterval=0.1,
                         leave=True, **options)
        self.start_t = self.last_print_t = since

    def update_to(self, done):
        self.update(done - self.n)


class Progress:
    """A progress hook: ``bar(what, total, done, since)`` (a :class:`TransferBar` by default)
    shows each transfer that lasts, or is estimated to last, ``after`` seconds or more; ``what``
    says where it goes: "to ``target``" or "from ``target``"."""

    def __init__(self, bar=TransferBar, after=AFTER, target="the target"):
        self.bar, self.after, self.target = bar, after, target
        self._first = None  # (direction, total, bytes done, time) when the transfer was first seen
        self._done = 0
        self._shown = None  # the bar of the current transfer, once shown

    def __call__(self, direction, done, total):
        now = time.time()
        if self._first is None or self._first[:2] != (direction, total) or done < self._done:
            self.close()  # a new transfer (the last one ended, or stopped half-way)
            self._first = (direction, total, done, now)
        self._done = done
        _, _, first, since = self._first
        if self._shown is None and self._lasts(now - since, done - first, total):
            what = f"{'from' if direction == 'pull' else 'to'} {self.target}"
            self._shown = self.bar(what, total, first, since)
        if self._shown is not None:
            self._shown.update_to(done)
        if done >= total:
            self.close()

    def _lasts(self, seconds, moved, total):
        """Whether a transfer that moved ``moved`` bytes in its last ``seconds`` is a long one:
        it has lasted ``after`` seconds, or will at that rate (a rate read off at least a
        hundredth of it: the first small part's round trip says nothing of the bandwidth)."""
        return seconds >= self.after or (moved >= total / 100 and moved > 0
                                         and seconds * total / moved >= self.after)

    def close(self):
        """End the current transfer's bar (if it showed), as it stands."""
        if self._shown is not None:
            self._shown.close()
        self._first = self._shown = None
