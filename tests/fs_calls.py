"""Which file-system calls some of our modules make while a block runs: what a test asserts instead of
timing, to show that work does not grow with the number of modules.

Stats are counted by a profile hook (it sees each call of ``os.stat`` and ``os.lstat``, not their
arguments); files opened and folders listed are recorded, with their paths, by an audit hook
(``open``, ``os.scandir``, ``os.listdir``). A call counts when one of the given source files is on
the stack that made it (``os.path.islink`` called from one of them counts too).
"""
import os
import sys

_STATS = (os.stat, os.lstat)
_LISTINGS = ("os.scandir", "os.listdir")
_recorders = []


def _audit(event, args):
    if _recorders and (event == "open" or event in _LISTINGS):
        recorder = _recorders[-1]
        if recorder.ours(sys._getframe(1)):
            (recorder.opened if event == "open" else recorder.listed).append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # audit hooks cannot be removed: one for the process, idle when unused


class FileSystemCalls:
    """``with FileSystemCalls(module, ...) as calls:`` then ``calls.stats`` (a count),
    ``calls.opened`` and ``calls.listed`` (paths), for the calls made from those modules' code."""

    def __init__(self, *modules):
        self.files = {os.path.abspath(module.__file__) for module in modules}
        self.stats = 0
        self.opened, self.listed = [], []

    def ours(self, frame):
        while frame is not None:
            if frame.f_code.co_filename in self.files:
                return True
            frame = frame.f_back
        return False

    def _profile(self, frame, event, arg):
        if event == "c_call" and any(arg is f for f in _STATS) and self.ours(frame):
            self.stats += 1

    def __enter__(self):
        _recorders.append(self)
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc):
        sys.setprofile(None)
        _recorders.remove(self)
