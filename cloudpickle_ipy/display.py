"""A target's output in IPython: what the target displays, this shell displays.

:class:`DisplayRelay` is the output handler (:mod:`.ship.relay`) the extension gives every target
it uses. It publishes the target's displays with their whole MIME bundle through the shell's own
display publisher, so a notebook shows the target's figures, tables and HTML, and a terminal
IPython prints their ``text/plain`` as it does for any display. Updates of a display
(``display_id``) and ``clear_output`` act here as they act there; streams stay streams, in their
place among the displays (ipykernel's publisher flushes them before each display).

The target's display ids are mapped to ids of this shell, one prefix per target: two targets
updating a display each named ``"loss"`` update their own display, not each other's.

:func:`progress_for` is the progress hook of long transfers (:mod:`.ship.progress`) in this shell:
a bar that updates a notebook display in place, or one line of a terminal.
"""
import html
import io
import uuid

from .ship import relay
from .ship.progress import AFTER, Progress, TransferBar

# The view of an ipywidget: its model lives in the target kernel, out of this frontend's reach
# (the bundle's text/plain still shows).
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class DisplayRelay:
    """Publish one target's output messages through ``shell``'s display machinery."""

    def __init__(self, shell):
        self.shell = shell
        self._prefix = f"cloudpickle_ipy-{uuid.uuid4().hex[:12]}-"

    def __call__(self, kind, content):
        if kind == "stream":
            relay.write(content)
        elif kind in ("display_data", "execute_result", "update_display_data"):
            data = {mime: value for mime, value in content["data"].items() if mime != _WIDGET_VIEW}
            transient = {}
            display_id = (content.get("transient") or {}).get("display_id")
            if display_id is not None:
                transient["display_id"] = self._prefix + str(display_id)
            # Looked up at each call: capture_output() and the like swap the publisher.
            self.shell.display_pub.publish(data=data, metadata=content.get("metadata") or {},
                                           transient=transient,
                                           update=kind == "update_display_data")
        elif kind == "clear_output":
            self.shell.display_pub.clear_output(wait=bool(content.get("wait")))


def attach(shell, target, progress_after=AFTER):
    """Show ``target``'s output through ``shell`` (its display ids kept from call to call), and
    the progress of its transfers that last ``progress_after`` seconds (``None``: none)."""
    output = getattr(target, "output", None)
    if not (isinstance(output, DisplayRelay) and output.shell is shell):
        target.output = DisplayRelay(shell)
    target.progress = None if progress_after is None else progress_for(
        shell, progress_after, getattr(target, "name", None) or "the target")


def progress_for(shell, after, target):
    """A progress hook for transfers to and from ``target`` (its name) that last ``after``
    seconds or more: a display updated in place in a notebook (a kernel's shell), a line of
    ``sys.stderr`` in a terminal."""
    if getattr(shell, "kernel", None) is None:
        return Progress(TransferBar, after, target)
    return Progress(lambda *transfer: NotebookBar(shell, *transfer), after, target)


# The words beside the notebook's bar: tqdm's line without its own bar.
_BESIDE = "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]"


class NotebookBar(TransferBar):
    """A transfer's bar as one display of ``shell``, updated in place: an HTML ``<progress>``
    with tqdm's words beside it, and tqdm's line as its ``text/plain``."""

    def __init__(self, shell, what, total, done, since):
        self.shell, self._published = shell, False
        self._display_id = f"cloudpickle_ipy-progress-{uuid.uuid4().hex}"
        # tqdm draws through display() below; the file only receives its final newline.
        super().__init__(what, total, done, since, file=io.StringIO(), dynamic_ncols=False,
                         ncols=80)

    def display(self, msg=None, pos=None):
        meter = self.format_dict
        words = html.escape(self.format_meter(**{**meter, "bar_format": _BESIDE}))
        self.shell.display_pub.publish(
            data={"text/plain": self.format_meter(**meter),
                  "text/html": f'<progress value="{self.n}" max="{self.total}" style="width: '
                               f'24em; vertical-align: middle"></progress> <code>{words}</code>'},
            metadata={}, transient={"display_id": self._display_id}, update=self._published)
        self._published = True
        return True
