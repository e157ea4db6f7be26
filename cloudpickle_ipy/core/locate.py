"""Where in a structure the object that cannot be pickled sits.

The C pickler's errors name a type but not a place ("cannot pickle '_thread.lock' object"). Once
a dump has failed, ``annotate`` walks the object graph again the way the pickler saves it (the same
``reducer_override``, dispatch table and ``__reduce_ex__``, in the same order) until it meets the
first object whose own reduction fails, and puts that object's path (``obj.handlers[0].lock``) in
the error. Nothing here runs while pickling succeeds.
"""
import collections.abc
import copyreg
import importlib
import pickle
import reprlib
import types

from .classes import REBUILD_CLASS
from .functions import FUNCTION_TYPE, RESTORE_FUNCTION
from .references import Reference

# Objects visited before giving up (about a second of walking): an error in a huge structure must
# not turn into a long hang.
LIMIT = 500_000

# Saved by the C pickler before any hook is consulted; they always pickle.
_ATOMS = frozenset({type(None), bool, int, float, str, bytes})
# Saved as they are after reducer_override declines; nothing inside them can fail.
_LEAVES = frozenset({bytearray, pickle.PickleBuffer})
# Pickled by reference although ``builtins`` has no such name before 3.10.
_SINGLETON_TYPES = (type(None), type(NotImplemented), type(...))

# How the arguments of our own reconstructors read as attributes of the object they rebuild.
_ARG_STEPS = {
    FUNCTION_TYPE: (".__code__", ".__globals__", ".__name__", ".<argdefs>", ".__closure__"),
    REBUILD_CLASS: (".__class__", ".__name__", ".__bases__", ".<namespace>", ".<class id>"),
}
_WITH_STEPS = (types.FunctionType, Reference)

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 40


class GaveUp(Exception):
    """The walk visited ``LIMIT`` objects without meeting one that fails."""


def annotate(pickler, obj, error):
    """The exception to raise for ``error`` from ``pickler.dump(obj)``: the same type, its message
    extended with where the failing object sits. None when ``error`` is to be re-raised as it is:
    it concerns the file or memory rather than an object, no object fails on its own, or its type
    cannot be built from a message."""
    if isinstance(error, (OSError, MemoryError)):
        return None
    try:
        found = find(pickler, obj)
    except GaveUp:
        message = f"{error} (gave up looking for where it sits after {LIMIT:,} objects)"
    else:
        if found is None:
            return None
        path, culprit = found
        message = f"{error}: found at {path}{_type_note(error, culprit)}"
    try:
        return type(error)(message)
    except Exception:
        return None


def _type_note(error, culprit):
    """Name the culprit's type, unless the error already does (the stdlib's messages quote it)."""
    cls = type(culprit)
    label = cls.__qualname__
    if cls.__module__ != "builtins":
        label = f"{cls.__module__}.{label}"
    text = str(error)
    if f"'{label}'" in text or f"'{cls.__qualname__}'" in text:
        return ""
    return f" (a {label!r} object)"


def find(pickler, obj):
    """``(path, culprit)`` for the first object, in the order ``pickler`` saves them, whose own
    reduction fails, or None if none does. Raises GaveUp after ``LIMIT`` objects.

    Depth-first with an explicit stack of iterators, so deep structures cannot exhaust the
    recursion limit and huge containers are not copied. ``seen`` stands for the pickler's memo; it
    keeps the temporaries that reductions make alive, so that their ids are not reused.
    """
    # The C pickler does not expose its protocol; object.__reduce_ex__ only tells 0-1 from 2+.
    protocol = pickle.HIGHEST_PROTOCOL if pickler.bin else 0
    persistent_id = getattr(pickler, "persistent_id", None)
    seen = {}
    visited = 0
    stack = [(None, None, iter([("obj", obj)]))]  # (path node, object, what it saves next)
    while stack:
        node, parent, children = stack[-1]
        try:
            item = next(children, None)
        except Exception:  # an iterator of list or dict items from parent's reduction
            return _render(node), parent
        if item is None:
            stack.pop()
            continue
        visited += 1
        if visited > LIMIT:
            raise GaveUp
        step, child = item
        child_node = (node, step)
        try:
            if persistent_id is not None and persistent_id(child) is not None:
                continue
            if type(child) in _ATOMS or id(child) in seen:
                continue
            seen[id(child)] = child
            grandchildren = _saved_parts(pickler, child, protocol)
        except Exception:
            return _render(child_node), child
        stack.append((child_node, child, grandchildren))
    return None


def _render(node):
    steps = []
    while node is not None:
        node, step = node
        steps.append(step)
    return "".join(reversed(steps))


def _saved_parts(pickler, obj, protocol):
    """Reduce ``obj`` as the C pickler does for ``pickler`` (raising where that fails) and return an
    iterator of ``(path step, object)`` for what it then saves, in order."""
    cls = type(obj)
    reduced = pickler.reducer_override(obj)
    if reduced is NotImplemented:
        if cls is list or cls is tuple:
            return ((f"[{i}]", item) for i, item in enumerate(obj))
        if cls is dict:
            return _mapping_parts(obj.items())
        if cls is set or cls is frozenset:
            return ((f".<item {i}>", item) for i, item in enumerate(obj))
        if cls in _LEAVES:
            return iter(())
        if cls is type or cls is types.FunctionType:
            _check_global(obj, obj.__qualname__)
            return iter(())
        try:
            reduce = getattr(pickler, "dispatch_table", copyreg.dispatch_table)[cls]
        except KeyError:
            reduce = None
        if reduce is not None:
            reduced = reduce(obj)
        elif issubclass(cls, type):
            _check_global(obj, obj.__qualname__)
            return iter(())
        else:
            reduced = obj.__reduce_ex__(protocol)
    if isinstance(reduced, str):
        _check_global(obj, reduced)
        return iter(())
    return _reduction_parts(obj, reduced, protocol)


def _check_global(obj, name):
    """Raise unless ``obj`` is found again as ``module.name``, as pickling by reference needs."""
    if any(obj is singleton for singleton in _SINGLETON_TYPES):
        return
    module_name = pickle.whichmodule(obj, name)
    found = importlib.import_module(module_name)
    for part in name.split("."):
        found = getattr(found, part)
    if found is not obj:
        raise pickle.PicklingError(f"{module_name}.{name} is another object")


def _reduction_parts(obj, reduced, protocol):
    """Check a reduction's shape as the C pickler does; return what saving it saves."""
    if not isinstance(reduced, tuple) or not 2 <= len(reduced) <= 6:
        raise pickle.PicklingError("a reduction must be a string or a tuple of 2 to 6 items")
    func, args, state, listitems, dictitems, setter = reduced + (None,) * (6 - len(reduced))
    if not callable(func) or not isinstance(args, tuple):
        raise pickle.PicklingError("a reduction needs a callable and a tuple of arguments")
    for items in (listitems, dictitems):
        if items is not None and not isinstance(items, collections.abc.Iterator):
            raise pickle.PicklingError("list and dict items of a reduction must be iterators")
    newobj = protocol >= 2 and getattr(func, "__name__", None) in ("__newobj__", "__newobj_ex__")
    if newobj and not (args and isinstance(args[0], type) and args[0] is obj.__class__):
        raise pickle.PicklingError("__newobj__ needs the object's class as its first argument")
    return _reduction_steps(obj, func, args, state, listitems, dictitems, setter, newobj)


def _reduction_steps(obj, func, args, state, listitems, dictitems, setter, newobj):
    if newobj:  # the C pickler writes the class, not copyreg's helper
        yield ".__class__", args[0]
    else:
        yield (".__class__" if func is type(obj) else ".<reconstructor>"), func
    steps = _ARG_STEPS.get(func) if type(func) in _WITH_STEPS else None
    for i in range(1 if newobj else 0, len(args)):
        yield (steps[i] if steps else f".<arg {i}>"), args[i]
    if listitems is not None:
        for i, item in enumerate(listitems):
            yield f"[{i}]", item
    if dictitems is not None:
        yield from _mapping_parts(dictitems)
    if setter is not None:
        yield ".<state setter>", setter
    if state is None:
        return
    if setter is RESTORE_FUNCTION:
        yield from _function_state(obj, state)
    elif isinstance(state, dict):
        yield from _attribute_parts(state)
    elif type(state) is tuple and len(state) == 2 and all(
            part is None or isinstance(part, dict) for part in state):
        for part in state:  # (__dict__, slots) as object.__reduce_ex__ makes it
            if part:
                yield from _attribute_parts(part)
    else:
        yield ".<state>", state


def _function_state(func, state):
    """The state of a function by value (see functions.reduce_function) as the function's parts."""
    for key, value in state.items():
        if key == "globals":
            for name, global_value in value.items():
                yield f".__globals__[{name!r}]", global_value
        elif key == "cells":
            for name, content in zip(func.__code__.co_freevars, value):
                yield f".<closure {name!r}>", content
        elif key == "__dict__":
            yield from _attribute_parts(value)
        elif key.startswith("__"):
            yield f".{key}", value
        else:
            yield f".<{key}>", value


def _mapping_parts(items):
    for i, (key, value) in enumerate(items):
        yield f".<key {i}>", key
        yield f"[{_key_repr(key, i)}]", value


def _attribute_parts(namespace):
    for i, (name, value) in enumerate(namespace.items()):
        if isinstance(name, str) and name.isidentifier():
            yield f".{name}", value
        else:
            yield f".<key {i}>", name
            yield f".__dict__[{_key_repr(name, i)}]", value


def _key_repr(key, index):
    try:
        return _repr.repr(key)
    except Exception:
        return f"<key {index}>"
