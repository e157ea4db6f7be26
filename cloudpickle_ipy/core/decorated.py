"""Functions decorated by ``functools``: ``lru_cache``/``cache`` wrappers and ``singledispatch``
functions, defined dynamically.

Pickle sends both by name, which the loading side cannot find, and a singledispatch function's
closure holds a dispatch cache of weak references. Both travel as what they were made from, and are
made again on load: the wrapped function with the cache's parameters (the cache starts empty), and
the default implementation with every registered one.
"""
import functools

from .references import reference
from .registry import travels_by_reference

_LRU_CACHE_WRAPPER = type(functools.lru_cache()(len))
SINGLEDISPATCH_CODE = functools.singledispatch(len).__code__  # the code of every such function


def reduce_lru_cache(pickler, wrapper):
    if travels_by_reference(wrapper, wrapper.__module__, wrapper.__qualname__):
        return NotImplemented
    parameters = wrapper.cache_parameters()
    return (REBUILD_LRU_CACHE, (wrapper.__wrapped__, parameters["maxsize"], parameters["typed"]),
            _extra_attributes(wrapper))


def _rebuild_lru_cache(func, maxsize, typed):
    return functools.lru_cache(maxsize=maxsize, typed=typed)(func)


def reduce_singledispatch(pickler, dispatcher):
    """Called by ``functions.reduce_function`` for a function made by ``singledispatch``."""
    registry = dispatcher.registry
    implementations = tuple((cls, func) for cls, func in registry.items() if cls is not object)
    return (REBUILD_SINGLEDISPATCH, (registry[object], implementations),
            _extra_attributes(dispatcher))


def _rebuild_singledispatch(default, implementations):
    dispatcher = functools.singledispatch(default)
    for cls, func in implementations:
        dispatcher.register(cls, func)
    return dispatcher


# What the decorators set on their wrapper themselves (functools.update_wrapper and singledispatch).
_MADE_BY_DECORATOR = frozenset({"__wrapped__", "register", "dispatch", "registry", "_clear_cache"})
_ABSENT = object()


def _extra_attributes(wrapper):
    """Attributes set on the wrapper besides those its decorator sets (it copies the wrapped
    function's ``__dict__`` too), as the state to restore; None if there are none."""
    wrapped = vars(wrapper.__wrapped__)
    extra = {name: value for name, value in vars(wrapper).items()
             if name not in _MADE_BY_DECORATOR and wrapped.get(name, _ABSENT) is not value}
    return extra or None


REBUILD_LRU_CACHE = reference(_rebuild_lru_cache)
REBUILD_SINGLEDISPATCH = reference(_rebuild_singledispatch)
REDUCERS = {_LRU_CACHE_WRAPPER: reduce_lru_cache}
