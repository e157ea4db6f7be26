"""What a target's execution outputs (its IOPub messages), shown here as it arrives."""
import sys


def relay(kind, content):
    """Write one IOPub output message to the local streams, as plain text."""
    if kind == "stream":
        stream = sys.stderr if content["name"] == "stderr" else sys.stdout
        stream.write(content["text"])
        stream.flush()
    elif kind in ("display_data", "update_display_data", "execute_result"):
        text = content["data"].get("text/plain")
        if text is not None:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
