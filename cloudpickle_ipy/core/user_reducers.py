"""Reducers given by the user, through ``register(type_, reduce_function)`` or ``reducers=``.

Like ``copyreg``'s, they take the object and return what ``__reduce__`` would; the core's also take
the pickler, so the Pickler gets them in that form (``taking_pickler``). They are checked when
given, so that one that could never be called is refused at once.
"""
import pickle

# The C pickler saves these itself, before asking any reducer: one for them would never be called.
_SAVED_BEFORE_REDUCERS = frozenset({type(None), bool, int, float, bytes, str, bytearray, tuple,
                                    list, dict, set, frozenset, pickle.PickleBuffer})

REGISTERED = {}  # type -> reduce(obj), from register(): process-wide


def checked_reducers(reducers):
    """``reducers=``, each entry checked as ``register`` checks it (cheaply: it is per call)."""
    try:
        items = reducers.items()
    except AttributeError:
        raise TypeError(f"reducers= takes a dict {{type: reduce_function}}, not "
                        f"{type(reducers).__name__}") from None
    for type_, reduce_function in items:
        if (type_ in _SAVED_BEFORE_REDUCERS or not isinstance(type_, type)
                or not callable(reduce_function)):
            check_reducer(type_, reduce_function, "reducers=")
    return reducers


def check_reducer(type_, reduce_function, where):
    if not isinstance(type_, type):
        raise TypeError(f"{where} takes a class to reduce the instances of, not {type_!r}")
    if not callable(reduce_function):
        raise TypeError(f"{where}: the reducer for {type_.__qualname__} must be a function "
                        f"taking the object and returning what __reduce__ would, not "
                        f"{reduce_function!r}")
    if type_ in _SAVED_BEFORE_REDUCERS:
        raise ValueError(f"{where}: the pickler writes {type_.__name__} objects itself and never "
                         f"asks a reducer for them; give one for a subclass of {type_.__name__}")


def taking_pickler(reducers):
    """``reducers`` (type -> ``reduce(obj)``) in the core's form: type -> ``reduce(pickler, obj)``."""
    return {type_: _ignoring_pickler(reduce) for type_, reduce in reducers.items()}


def _ignoring_pickler(reduce):
    def reduce_for_pickler(pickler, obj):
        return reduce(obj)
    return reduce_for_pickler
