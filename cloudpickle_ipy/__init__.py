"""cloudpickle_ipy: ship the functions, classes and modules you are writing to other Python processes.

The pickler lives in :mod:`cloudpickle_ipy.core` (a drop-in for cloudpickle) and is re-exported here.
"""
import sys

from .core import *  # noqa: F403
from .core import __all__  # noqa: F401  (the same public names)

__version__ = "0.1.0"


def connect(target="local", **options):
    """A target kernel to push, pull, call and run on: ``connect("local")`` starts one.

    See :func:`cloudpickle_ipy.ship.targets.connect`; jupyter_client is imported only from here.
    In IPython, the target's output shows as the target would show it (:mod:`.display`): a notebook
    gets its figures and HTML, and a bar for long transfers; elsewhere its text goes to
    ``sys.stdout`` and ``sys.stderr``.
    """
    from .ship.targets import connect

    kernel = connect(target, **options)
    shell = _running_ipython()
    if shell is not None:
        from .display import attach
        from .extension import state_of

        state = state_of(shell)  # the extension's settings apply when it is loaded
        if state is None:
            attach(shell, kernel)
        else:
            state.show_output_of(kernel)
    return kernel


def _running_ipython():
    """The IPython shell this code runs in, if any (IPython is not imported for the question)."""
    ipython = sys.modules.get("IPython")
    return None if ipython is None else ipython.get_ipython()


def load_ipython_extension(shell):
    """``%load_ext cloudpickle_ipy``: the %pickle_by_value magic and the module watcher."""
    from .extension import load  # IPython only from here on: the core stays importable without it

    load(shell)


def unload_ipython_extension(shell):
    """``%unload_ext cloudpickle_ipy``: remove every hook the extension added."""
    from .extension import unload

    unload(shell)
