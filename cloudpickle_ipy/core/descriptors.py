"""What class bodies hold besides functions: classmethod, staticmethod, property (and abc's
deprecated abstract variants of the three), and the functools descriptors that pickle cannot handle
(cached_property holds a lock before 3.12, and singledispatchmethod a cache of weak references)."""
import abc
import functools

from .references import reference


def reduce_method_wrapper(pickler, method):
    return _TYPES[type(method)], (method.__func__,)


def reduce_property(pickler, prop):
    return _TYPES[type(prop)], (prop.fget, prop.fset, prop.fdel, prop.__doc__)


def reduce_cached_property(pickler, prop):
    return REBUILD_CACHED_PROPERTY, (prop.func, prop.attrname, prop.__doc__)


def _rebuild_cached_property(func, attrname, doc):
    prop = functools.cached_property(func)
    prop.attrname, prop.__doc__ = attrname, doc
    return prop


def reduce_singledispatchmethod(pickler, method):
    """Its registry travels; the dispatch cache is rebuilt empty on first call."""
    registry = method.dispatcher.registry
    others = tuple((cls, func) for cls, func in registry.items() if cls is not object)
    return REBUILD_SINGLEDISPATCHMETHOD, (method.func, others)


def _rebuild_singledispatchmethod(default, registrations):
    method = functools.singledispatchmethod(default)
    for cls, func in registrations:
        method.register(cls, func)
    return method


_TYPES = {kind: reference(kind) for kind in (
    classmethod, staticmethod, property, abc.abstractclassmethod, abc.abstractstaticmethod,
    abc.abstractproperty)}
REBUILD_CACHED_PROPERTY = reference(_rebuild_cached_property)
REBUILD_SINGLEDISPATCHMETHOD = reference(_rebuild_singledispatchmethod)
REDUCERS = {
    classmethod: reduce_method_wrapper,
    staticmethod: reduce_method_wrapper,
    property: reduce_property,
    abc.abstractclassmethod: reduce_method_wrapper,
    abc.abstractstaticmethod: reduce_method_wrapper,
    abc.abstractproperty: reduce_property,
    functools.cached_property: reduce_cached_property,
    functools.singledispatchmethod: reduce_singledispatchmethod,
}
