"""A target's output in IPython: what the target displays, this shell displays.

:class:`DisplayRelay` is the output handler (:mod:`.ship.relay`) the extension gives every target
it uses. It publishes the target's displays with their whole MIME bundle through the shell's own
display publisher, so a notebook shows the target's figures, tables and HTML, and a terminal
IPython prints their ``text/plain`` as it does for any display. Updates of a display
(``display_id``) and ``clear_output`` act here as they act there; streams stay streams, in their
place among the displays (ipykernel's publisher flushes them before each display).

The target's display ids are mapped to ids of this shell, one prefix per target: two targets
updating a display each named ``"loss"`` update their own display, not each other's.
"""
import uuid

from .ship import relay

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


def relay_to(shell, target):
    """Show ``target``'s output through ``shell`` (its display ids kept across calls)."""
    output = target.output
    if not (isinstance(output, DisplayRelay) and output.shell is shell):
        target.output = DisplayRelay(shell)
