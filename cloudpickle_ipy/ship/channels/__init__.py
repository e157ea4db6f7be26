"""What carries Jupyter messages between this process and one kernel, one module per way of reaching
it; the request protocol on top (:mod:`..kernel`) is written once, for all of them.

A channel sends messages on the kernel's ``shell`` and ``control`` channels and receives what
arrives on ``shell``, ``iopub`` and ``control``, as jupyter_client's message dicts (``msg_type``,
``header``, ``parent_header``, ``content``, ``buffers``). It also knows what only the way of reaching
the kernel can tell: whether the kernel lives, whether it was restarted under us, how to interrupt
it, and whether message buffers can travel as binary frames.
"""


class Channel:
    """The interface :class:`~cloudpickle_ipy.ship.kernel.KernelTarget` uses; see the module docstring.

    ``kernel`` is how listings show the kernel (never with a secret in it); ``owned``: the kernel
    was started for this channel and :meth:`close` shuts it down; ``part_size``: the largest
    message it carries (``None``: no limit of its own); ``binary``: buffers travel as binary
    frames (False: the way to the kernel mangles them, so they travel as base64 strings in the
    content, see :mod:`..agent`).
    """

    kernel = "?"
    owned = False
    binary = True
    part_size = None

    def send(self, channel, msg_type, content, buffers=None):
        """Send one message on ``channel`` (``"shell"`` or ``"control"``); return its msg_id."""
        raise NotImplementedError

    def receive(self, timeout):
        """The ``(channel, message)`` pairs that arrive within ``timeout`` seconds (at least one
        if any arrives in time; an empty list otherwise)."""
        raise NotImplementedError

    @property
    def alive(self):
        """Whether the kernel is running (its process, its heartbeat, or its server says so)."""
        raise NotImplementedError

    def incarnation(self):
        """Something that changes when the kernel is restarted by whoever manages it (None when
        that cannot be told here: a restart then shows as a ``starting`` status on IOPub)."""
        return None

    def wait_for_ready(self, timeout):
        """Wait until the kernel answers (after a start or a restart); raise RuntimeError if not."""
        raise NotImplementedError

    def interrupt(self):
        """Interrupt whatever the kernel runs now, like the notebook's interrupt button."""
        raise NotImplementedError

    def close(self):
        """Release the connection; shut the kernel down if it is :attr:`owned`."""
        raise NotImplementedError
