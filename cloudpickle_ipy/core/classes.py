"""Dynamic classes, enums included: how they are reduced and rebuilt.

A class travels as ``_rebuild_class(metaclass, name, bases, skeleton, tracking_id)`` plus its
attributes as state. The skeleton holds only what must exist when the class is created (``__slots__``,
an enum's members); everything else is set afterwards, once the class is in the pickle memo, so
methods that refer back to the class (``super()``, class attributes) resolve to it. The tracking id
(see ``identity``) makes a class loaded twice in one process one class.

A class that a load made and that arrives again in a later payload (edited and shipped again) takes
that payload's attributes: the newest payload wins, while the class stays the same object, so
existing instances see the new methods. A class defined in this process keeps its own state.

The attributes are set in the order of the original class's ``__dict__`` (``__doc__`` first, which
the class statement places by itself), so that pickling a loaded class again gives the same bytes.
"""
import abc
import enum
import sys
import types
import weakref

from . import identity
from .names import SortedSet, private, private_constants, private_keys
from .references import reference
from .registry import travels_by_reference
from .sources import portable_filename

# Classes made by a class statement or type() are heap types; so are C types made by extension
# modules since 3.10, but those are immutable (and are refused by pickle, not sent by value).
_HEAPTYPE, _IMMUTABLETYPE = 1 << 9, 1 << 8

# Entries of a class's __dict__ that the class statement makes by itself (__dict__, __weakref__ and
# slot descriptors), and entries that must not travel: caches (abc's, and copyreg's __slotnames__,
# which the first pickled instance adds) are rebuilt on demand.
_MADE_BY_TYPE = (types.MemberDescriptorType, types.GetSetDescriptorType)
_NOT_SHIPPED = frozenset({"__module__", "__slots__", "_abc_impl", "__slotnames__"})
# Entries that the class statement itself reads (slots are laid out, Generic checks its bases).
_AT_CREATION = ("__slots__", "__orig_bases__")


def _enum_internals():
    """What EnumMeta adds to an enum class's __dict__ and to each member's, on this Python."""
    class Probe(enum.Enum):
        A = 1

    class FlagProbe(enum.Flag):
        A = 1

    made = set(vars(Probe)) | set(vars(FlagProbe)) | {"__new_member__"}
    made -= {"A", "__doc__", "__module__", "__qualname__", "__firstlineno__",
             "__static_attributes__"}
    return frozenset(made), frozenset(vars(Probe.A))


_ENUM_CLASS_INTERNALS, _ENUM_MEMBER_INTERNALS = _enum_internals()


# Keys of the skeleton and of the extras: private copies (see names).
_MODULE, _QUALNAME, _DOC, _MEMBERS, _ABC_REGISTERED = map(
    private, ("__module__", "__qualname__", "__doc__", "members", "abc_registered"))


def reduce_class(pickler, cls):
    if (cls.__flags__ & (_HEAPTYPE | _IMMUTABLETYPE) != _HEAPTYPE
            or travels_by_reference(cls, cls.__module__, cls.__qualname__)):
        return NotImplemented
    namespace = cls.__dict__
    doc = namespace.get("__doc__")
    skeleton = {_MODULE: private(cls.__module__), _QUALNAME: private(cls.__qualname__), _DOC: doc}
    skeleton.update((private(name), _as_shipped(name, namespace[name]))
                    for name in _AT_CREATION if name in namespace)
    skipped = _NOT_SHIPPED
    extras = {}
    if isinstance(cls, enum.EnumMeta):
        members = cls.__members__
        skeleton.update((private(name), member._value_) for name, member in members.items())
        skipped = skipped | _ENUM_CLASS_INTERNALS | members.keys()
        member_attributes = {
            private(name): private_keys(extra) for name, member in members.items()
            if (extra := {k: v for k, v in vars(member).items()
                          if k not in _ENUM_MEMBER_INTERNALS})}
        if member_attributes:
            extras[_MEMBERS] = member_attributes
    attributes = {_DOC: doc}
    for name, value in namespace.items():
        if name in skipped or name == "__doc__" or (
                isinstance(value, _MADE_BY_TYPE) and value.__objclass__ is cls):
            continue
        if name in _HOLDING_NAMES or type(value) is frozenset:
            value = _as_shipped(name, value)
        attributes[private(name)] = value
    if "_abc_impl" in namespace:
        registered = _abc_registered(cls)
        if registered:
            extras[_ABC_REGISTERED] = registered
    args = (type(cls), private(cls.__name__), _bases(cls), skeleton,
            identity.tracking_id(cls, _fingerprint))
    return REBUILD_CLASS, args, (attributes, extras), None, None, RESTORE_CLASS


# Attributes that hold names (the class statement's, or those its decorator or metaclass made from
# the names of its body): they travel as private copies, see names.
_NAME_TUPLES = frozenset({"__slots__", "__static_attributes__", "__match_args__", "_fields"})
_NAME_KEYS = frozenset({"__annotations__", "_field_defaults", "__dataclass_fields__"})
_HOLDING_NAMES = _NAME_TUPLES | _NAME_KEYS


def _as_shipped(name, value):
    """``value`` of attribute ``name`` as it travels: frozensets (``__abstractmethods__``, a
    TypedDict's keys) in a stable order, names as private copies."""
    kind = type(value)
    if kind is frozenset:
        return SortedSet(private_constants(tuple(value)))
    if name in _NAME_TUPLES:
        if kind is str:
            return private(value)
        if kind is tuple:
            return private_constants(value)
    elif name in _NAME_KEYS and kind is dict:
        return private_keys(value)
    return value


def _bases(cls):
    """The bases to make ``cls`` again from. A TypedDict's metaclass makes it a subclass of dict
    but refuses dict as a base: it is made again from the bases of its class statement."""
    metaclass = type(cls)
    if metaclass.__name__ == "_TypedDictMeta":
        return cls.__dict__.get("__orig_bases__") or (sys.modules[metaclass.__module__].TypedDict,)
    return cls.__bases__


def _fingerprint(cls):
    """What defines ``cls``: where, its bases, its attribute names and its methods' bytecode."""
    parts = [cls.__module__, cls.__qualname__]
    parts += [f"{base.__module__}.{base.__qualname__}" for base in cls.__bases__]
    for name, value in cls.__dict__.items():
        parts.append(name)
        func = getattr(value, "__func__", getattr(value, "fget", value))
        code = getattr(func, "__code__", None)
        if isinstance(code, types.CodeType):
            parts += [code.co_code, f"{portable_filename(code.co_filename)}:{code.co_firstlineno}"]
    return identity.digest(*parts)


def _abc_registered(cls):
    """The virtual subclasses registered with ``cls.register``, in a stable order."""
    try:
        refs = abc._get_dump(cls)[0]  # the C implementation keeps weak references
        registered = [ref() for ref in refs]
    except AttributeError:  # the pure-Python implementation (_py_abc)
        registered = list(cls._abc_registry)
    return sorted((c for c in registered if c is not None),
                  key=lambda c: (c.__module__, c.__qualname__))


_loaded = weakref.WeakSet()  # classes that a load made (later payloads update them)
_awaiting_state = weakref.WeakSet()  # classes whose attributes the current load has yet to set
_shipped_names = weakref.WeakKeyDictionary()  # class -> the attribute names its last payload set


def _rebuild_class(metaclass, name, bases, skeleton, tracking_id):
    with identity.lock:
        cls = identity.tracked(tracking_id)
        if cls is None:
            def fill(namespace):  # item by item: metaclasses such as EnumMeta watch __setitem__
                for key, value in skeleton.items():
                    namespace[key] = value

            cls = types.new_class(name, bases, {"metaclass": metaclass}, fill)
            identity.track(cls, tracking_id)
            _loaded.add(cls)
        elif cls not in _loaded:
            return cls  # defined here: it keeps its own state
        _awaiting_state.add(cls)
        return cls


def _restore_class(cls, state):
    """Set the attributes of a class that a load made, as this payload has them."""
    with identity.lock:
        if cls not in _awaiting_state:
            return cls
        _awaiting_state.discard(cls)
    attributes, extras = state
    current = vars(cls)
    for name in _shipped_names.get(cls, ()):  # removed since the payload that shipped it
        if name not in attributes and name in current:
            _try_delattr(cls, name)
    for name, value in attributes.items():
        if name in current and name != "__doc__":
            _try_delattr(cls, name)  # so that it takes its place in the original's order
        setattr(cls, name, value)
    _shipped_names[cls] = frozenset(attributes)
    for name, value in attributes.items():  # as the class statement would have done
        set_name = getattr(type(value), "__set_name__", None)
        if set_name is not None:
            set_name(value, cls, name)
    for subclass in extras.get("abc_registered", ()):
        cls.register(subclass)
    for name, member_attributes in extras.get("members", {}).items():
        vars(cls[name]).update(member_attributes)
    return cls


def _try_delattr(cls, name):
    try:
        delattr(cls, name)
    except (AttributeError, TypeError):  # a few type attributes cannot be deleted
        pass


REBUILD_CLASS, RESTORE_CLASS = reference(_rebuild_class), reference(_restore_class)
REDUCERS = {type: reduce_class}
