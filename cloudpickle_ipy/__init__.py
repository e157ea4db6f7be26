"""cloudpickle_ipy: ship the functions, classes and modules you are writing to other Python processes.

The pickler lives in :mod:`cloudpickle_ipy.core` (a drop-in for cloudpickle) and is re-exported here.
"""
from .core import *  # noqa: F403
from .core import __all__  # noqa: F401  (the same public names)

__version__ = "0.1.0"


def connect(target="local", **options):
    """A target kernel to push, pull, call and run on: ``connect("local")`` starts one.

    See :func:`cloudpickle_ipy.ship.targets.connect`; jupyter_client is imported only from here.
    """
    from .ship.targets import connect

    return connect(target, **options)


def load_ipython_extension(shell):
    """``%load_ext cloudpickle_ipy``: the %pickle_by_value magic and the module watcher."""
    from .extension import load  # IPython only from here on: the core stays importable without it

    load(shell)


def unload_ipython_extension(shell):
    """``%unload_ext cloudpickle_ipy``: remove every hook the extension added."""
    from .extension import unload

    unload(shell)
