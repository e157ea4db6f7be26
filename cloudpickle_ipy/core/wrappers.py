"""``wrap_non_picklable_objects``: let plain ``pickle`` (multiprocessing, ProcessPoolExecutor) send
lambdas, closures and interactive classes.

Anything but a class is wrapped in a ``CloudpickledObjectWrapper`` (a ``CallableObjectWrapper``
if it is callable): a proxy whose ``__reduce__`` nests a payload made by this package's ``dumps``;
plain ``pickle.loads`` rebuilds it, since the rebuild function is importable.

A wrapped class must still be a class (constructible, subclassable, ``isinstance``-able), so it is a
subclass of the original made by a metaclass of ours. Plain pickle never asks a class for its
``__reduce__``: it looks the class up by name unless ``copyreg`` has a reducer for the class's
metaclass, so each such metaclass is registered there. Instances of a wrapped class pickle as usual,
with their class going through that reducer.
"""
import copyreg
import pickle
import threading
import types
import weakref

from .pickler import dumps

_lock = threading.RLock()  # reentrant: __init_subclass__ may wrap classes too


class CloudpickledObjectWrapper:
    """Stands in for ``obj`` so that plain pickle sends it through this package's ``dumps``.

    Attribute access (get, set, delete) passes through to the wrapped object. Unpickled, it gives
    the wrapper again if ``keep_wrapper`` (so it can be sent on), else the bare object.
    """

    __slots__ = ("__wrapped__", "_keep_wrapper")

    def __init__(self, obj, keep_wrapper=False):
        object.__setattr__(self, "__wrapped__", obj)
        object.__setattr__(self, "_keep_wrapper", keep_wrapper)

    def __reduce__(self):
        return _rebuild, (dumps(self.__wrapped__), self._keep_wrapper)

    def __getattr__(self, name):
        if name in _OWN:  # unset, in an instance made without __init__: no endless recursion
            raise AttributeError(name)
        return getattr(self.__wrapped__, name)

    def __setattr__(self, name, value):
        setattr(object.__getattribute__(self, "__wrapped__"), name, value)

    def __delattr__(self, name):
        delattr(object.__getattribute__(self, "__wrapped__"), name)

    def __repr__(self):
        return f"{type(self).__name__}({self.__wrapped__!r})"


_OWN = frozenset(CloudpickledObjectWrapper.__slots__)


class CallableObjectWrapper(CloudpickledObjectWrapper):
    """A wrapper that calls through, so a wrapped function still works as a task."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        return self.__wrapped__(*args, **kwargs)


class _WrappedClassType(type):
    """Metaclass of wrapped classes, whose ``copyreg`` entry sends them through ``dumps``."""


# original metaclass -> metaclass of its wrapped classes (subclassing _WrappedClassType and it)
_metaclass_for = {type: _WrappedClassType}
# original class -> {keep_wrapper: weakref to its wrapped class}
_wrapped_classes = weakref.WeakKeyDictionary()


def _wrapping(cls):
    """``(original, keep_wrapper)`` if ``cls`` is a wrapped class itself (not a subclass of one)."""
    return cls.__dict__.get("_cloudpickle_ipy_wrapped")


def _reduce_wrapped_class(cls):
    # A subclass of a wrapped class has our metaclass too: it travels by value, as itself.
    original, keep_wrapper = _wrapping(cls) or (cls, False)
    return _rebuild, (dumps(original), keep_wrapper)


copyreg.pickle(_WrappedClassType, _reduce_wrapped_class)


def _wrapping_metaclass(metaclass):
    with _lock:
        wrapping = _metaclass_for.get(metaclass)
        if wrapping is None:
            wrapping = type(metaclass)(f"_Wrapped{metaclass.__name__}",
                                       (_WrappedClassType, metaclass), {"__module__": __name__})
            copyreg.pickle(wrapping, _reduce_wrapped_class)
            _metaclass_for[metaclass] = wrapping
        return wrapping


def _wrap_class(cls, keep_wrapper):
    """A subclass of ``cls`` that plain pickle sends by value (one per process, so ``isinstance``
    holds across shipments), or None if ``cls`` refuses subclasses (an enum with members, ``bool``).

    Making it runs ``cls.__init_subclass__``, as any subclass would.
    """
    with _lock:
        known = _wrapped_classes.setdefault(cls, {})
        wrapped = known[keep_wrapper]() if keep_wrapper in known else None
        if wrapped is not None:
            return wrapped
        namespace = {
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__,
            "__slots__": (),  # keep the original's instance layout
            "_cloudpickle_ipy_wrapped": (cls, keep_wrapper),
        }
        metaclass = _wrapping_metaclass(type(cls))
        try:
            wrapped = types.new_class(cls.__name__, (cls,), {"metaclass": metaclass},
                                      lambda body: body.update(namespace))
        except TypeError:
            return None
        known[keep_wrapper] = weakref.ref(wrapped)
        return wrapped


def wrap_non_picklable_objects(obj, keep_wrapper=True):
    """Wrap a function, callable, class or other object so plain ``pickle`` sends it by value.

    The receiving side gets the wrapped object again if ``keep_wrapper`` (so it can send it on),
    else the bare object. It needs this package importable, not the object's module.
    """
    if isinstance(obj, CloudpickledObjectWrapper):
        obj = obj.__wrapped__
    elif isinstance(obj, _WrappedClassType) and _wrapping(obj):
        obj = _wrapping(obj)[0]
    if isinstance(obj, type):
        wrapped = _wrap_class(obj, keep_wrapper)
        if wrapped is not None:
            return wrapped
    wrapper = CallableObjectWrapper if callable(obj) else CloudpickledObjectWrapper
    return wrapper(obj, keep_wrapper)


def _rebuild(payload, keep_wrapper):
    obj = pickle.loads(payload)
    return wrap_non_picklable_objects(obj) if keep_wrapper else obj
