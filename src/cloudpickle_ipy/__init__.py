"""cloudpickle_ipy: ship the functions, classes and modules you are writing to other Python processes.

The pickler lives in :mod:`cloudpickle_ipy.core` (a drop-in for cloudpickle) and is re-exported here.
"""
from .core import *  # noqa: F403
from .core import __all__  # noqa: F401  (the same public names)

__version__ = "0.1.0"
