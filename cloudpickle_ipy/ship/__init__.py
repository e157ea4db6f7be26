"""Moving payloads to other kernels: :func:`connect` (in :mod:`.targets`) and its errors.

Importing this package imports nothing beyond the standard library (the agent imports it inside
target kernels); jupyter_client only by :mod:`.channels.zeromq` and :mod:`.targets`.
"""


class ShipError(Exception):
    """Shipping to a target failed."""


class TargetError(ShipError):
    """No such kernel, a dead kernel, a bad connection file: the message is one line."""


class RemoteError(ShipError):
    """The code raised on the target; the message holds the target's traceback."""

    def __init__(self, ename, evalue, remote_traceback):
        self.ename, self.evalue, self.remote_traceback = ename, evalue, remote_traceback
        super().__init__(f"{ename}: {evalue}\n\nTraceback on the target:\n{remote_traceback}"
                         if remote_traceback else f"{ename}: {evalue}")


class PayloadRefused(ShipError):
    """The target refused a payload (unsigned, tampered, another format or Python); nothing in it
    was loaded."""


class KernelDied(ShipError):
    """The target kernel died or restarted; what it held is gone."""


class ModuleChangedOnDisk(ShipError):
    """A module pickled by value changed on disk since it was imported and was not reloaded: the
    target would run its file, this process runs the code in memory; nothing was sent."""


class ShipTimeout(ShipError, TimeoutError):
    """No answer within the timeout; the message says what became of the request."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C while waiting for a target; the message says what became of the request there.
    IPython shows the message alone, not a traceback through this package."""

    def _render_traceback_(self):
        return [str(self)]


class Target:
    """The face every kind of target shows (a kernel, a Dask cluster): ``push``, ``pull``,
    ``call``, ``run``, ``cell`` and ``close``, and a ``with`` block that closes it. A kind of
    target implements ``request(op, args, timeout=None)`` and the rest of that face."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def pull(self, *names):
        """The values of ``names`` on the target: one value for one name, else a tuple."""
        values = self.request("pull", {"names": list(names)})
        return values[0] if len(names) == 1 else tuple(values)

    def call(self, fn, /, *args, **kwargs):
        """``fn(*args, **kwargs)`` on the target; its return value comes back."""
        return self.request("call", {"fn": fn, "args": args, "kwargs": kwargs})


def connect(target="local", **options):
    """Connect to ``target`` and return a :class:`~.kernel.KernelTarget` (see :mod:`.targets`)."""
    from .targets import connect

    return connect(target, **options)
