"""Quick-start demo: code defined in ``__main__`` runs in another, fresh Python process.

Run it with ``python -m cloudpickle_ipy.demo``: a lambda, a closure and a class defined here are
pickled with cloudpickle_ipy, loaded by a new interpreter with the standard ``pickle.loads`` (it
cannot import this file) and called there.
"""
import subprocess
import sys
import tempfile

import cloudpickle_ipy

# What the other process runs: plain pickle, nothing of this script.
_WORKER = r"""
import os, pickle, sys
square, counter, Greeter = pickle.loads(sys.stdin.buffer.read())
print(f"  [worker pid {os.getpid()}] square(12) = {square(12)}")
print(f"  [worker pid {os.getpid()}] counter() three times = {[counter() for _ in range(3)]}")
greeter = Greeter("notebook")
print(f"  [worker pid {os.getpid()}] {greeter.greet()} (a {type(greeter).__qualname__} "
      f"from module {type(greeter).__module__!r})")
"""

GREETING = "Hello from"


def make_counter(start):
    count = start

    def counter():
        nonlocal count
        count += 1
        return count

    return counter


class Greeter:
    def __init__(self, name):
        self.name = name

    def greet(self):
        return f"{GREETING} {self.name}!"


def main():
    import os

    square = lambda x: x * x  # noqa: E731
    payload = cloudpickle_ipy.dumps((square, make_counter(10), Greeter))
    print(f"[main pid {os.getpid()}] pickled a lambda, a closure and a class defined in __main__:"
          f" {len(payload)} bytes")
    with tempfile.TemporaryDirectory() as elsewhere:
        done = subprocess.run([sys.executable, "-c", _WORKER], input=payload, cwd=elsewhere)
    print(f"[main pid {os.getpid()}] the fresh process "
          + ("ran them" if done.returncode == 0 else f"failed with exit code {done.returncode}"))
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
