"""Progress of long transfers to and from a target: bytes done of total, and the rate.

A :class:`~.kernel.KernelTarget` reports a large request or reply as its parts are acknowledged,
calling its progress hook ``(direction, done, total)`` (bytes). :class:`Progress` is such a hook: it
shows a bar for a transfer that has lasted ``after`` seconds, or that its rate so far says will
(short transfers show nothing), and closes it when the transfer is done.

The bar is tqdm's, chosen because it is the well-kept standard for this: sizes in KiB/MiB/GiB, an
average rate, time left, the terminal's width, one line rewritten in place. :class:`TransferBar`
draws it on one line of ``sys.stderr``; :mod:`cloudpickle_ipy.display` derives a bar that updates
a notebook display in place instead (tqdm's own notebook bar needs ipywidgets, which a saved
notebook, nbconvert or a console cannot show).
"""
import sys
import time

from tqdm.std import tqdm

AFTER = 2.0  # seconds a transfer lasts, or is estimated to last, before its progress shows
WHAT = {"push": "to the target", "pull": "from the target"}
_LOOK = 0.25  # seconds a transfer runs before its rate is trusted for an estimate of its length


class TransferBar(tqdm):
    """A tqdm bar for ``total`` bytes going ``direction``, started at ``start`` (``time.time()``)."""

    def __init__(self, direction, total, start, **options):
        options.setdefault("file", sys.stderr)
        options.setdefault("dynamic_ncols", True)
        super().__init__(total=total, desc=WHAT.get(direction, direction), unit="B",
                         unit_scale=True, unit_divisor=1024, mininterval=0.2, leave=True, **options)
        # Elapsed time and rate count from the start of the transfer, not from when it showed.
        self.start_t = self.last_print_t = start

    def update_to(self, done):
        self.update(done - self.n)


class Progress:
    """A progress hook: ``bar(direction, total, start)`` (a :class:`TransferBar` by default)
    shows each transfer that lasts, or is estimated to last, ``after`` seconds or more."""

    def __init__(self, bar=TransferBar, after=AFTER):
        self.bar, self.after = bar, after
        self._transfer = None  # (direction, total, start time, bytes done)
        self._shown = None  # the bar of the current transfer, once shown

    def __call__(self, direction, done, total):
        now = time.time()
        current = self._transfer
        if current is None or current[:2] != (direction, total) or done < current[3]:
            self.close()
            current = (direction, total, now, 0)
        self._transfer = current = current[:3] + (done,)
        if self._shown is None and self._lasts(now - current[2], done, total):
            self._shown = self.bar(direction, total, current[2])
        if self._shown is not None:
            self._shown.update_to(done)
        if done >= total:
            self.close()

    def _lasts(self, elapsed, done, total):
        """Whether a transfer at ``done`` of ``total`` after ``elapsed`` seconds is a long one."""
        if elapsed >= self.after:
            return True
        return elapsed >= min(_LOOK, self.after) and done > 0 and elapsed * total / done >= self.after

    def close(self):
        """End the current transfer's bar (if it showed), as it stands."""
        if self._shown is not None:
            self._shown.close()
        self._transfer = self._shown = None
