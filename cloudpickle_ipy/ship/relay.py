"""What a target's execution outputs (its IOPub messages), shown here as it arrives.

A :class:`~.kernel.KernelTarget` hands every IOPub message of our request's execution (but its
``status`` and our own comm's messages) to its output handler, ``output(msg_type, content)``, in
the order the target sent them. A handler acts on the output messages of the Jupyter protocol
(``stream``, ``display_data``, ``execute_result``, ``update_display_data``, ``clear_output``) and
ignores the rest; a target of another kind shows its output by handing messages of the same shape
to its ``output``. :func:`as_text` is the default: it works in a plain script. In IPython,
:mod:`cloudpickle_ipy.display` publishes whole MIME bundles through the shell's display machinery
instead (a notebook shows the target's figures and tables as the target's notebook would).
"""
import sys


def as_text(kind, content):
    """Write one output message as text: streams to ``sys.stdout``/``sys.stderr`` as they are,
    the ``text/plain`` part of a display (or of its update) to ``sys.stdout``."""
    if kind == "stream":
        write(content)
    elif kind in ("display_data", "update_display_data", "execute_result"):
        text = content["data"].get("text/plain")
        if text is not None:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()


def write(stream):
    """Write the content of a ``stream`` message to this process's stream of the same name,
    flushed so that it keeps its place among the output that follows."""
    out = sys.stderr if stream["name"] == "stderr" else sys.stdout
    out.write(stream["text"])
    out.flush()
