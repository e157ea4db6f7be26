"""Dynamic classes, enums included: how they are reduced and rebuilt.

A class travels as ``_rebuild_class(metaclass, name, bases, skeleton, tracking_id)`` plus its
attributes as state. The skeleton holds only what must exist when the class is created (``__slots__``,
an enum's members); everything else is set afterwards, once the class is in the pickle memo, so
methods that refer back to the class (``super()``, class attributes) resolve to it. The tracking id
(see ``identity``) makes a class loaded twice in one process one class.
"""
import abc
import enum
import types
import weakref

from . import identity
from .registry import travels_by_reference

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


def reduce_class(pickler, cls):
    if (cls.__flags__ & (_HEAPTYPE | _IMMUTABLETYPE) != _HEAPTYPE
            or travels_by_reference(cls, cls.__module__, cls.__qualname__)):
        return NotImplemented
    namespace = cls.__dict__
    skeleton = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
    skeleton.update((name, namespace[name]) for name in _AT_CREATION if name in namespace)
    skipped = _NOT_SHIPPED
    extras = {}
    if isinstance(cls, enum.EnumMeta):
        members = cls.__members__
        skeleton.update((name, member._value_) for name, member in members.items())
        skipped = skipped | _ENUM_CLASS_INTERNALS | members.keys()
        member_attributes = {
            name: extra for name, member in members.items()
            if (extra := {k: v for k, v in vars(member).items()
                          if k not in _ENUM_MEMBER_INTERNALS})}
        if member_attributes:
            extras["members"] = member_attributes
    attributes = {
        name: value for name, value in namespace.items()
        if name not in skipped and not (isinstance(value, _MADE_BY_TYPE)
                                        and value.__objclass__ is cls)}
    if "_abc_impl" in namespace:
        registered = _abc_registered(cls)
        if registered:
            extras["abc_registered"] = registered
    args = (type(cls), cls.__name__, cls.__bases__, skeleton,
            identity.tracking_id(cls, _fingerprint))
    return _rebuild_class, args, (attributes, extras), None, None, _restore_class


def _fingerprint(cls):
    """What defines ``cls``: where, its bases, its attribute names and its methods' bytecode."""
    parts = [cls.__module__, cls.__qualname__]
    parts += [f"{base.__module__}.{base.__qualname__}" for base in cls.__bases__]
    for name, value in cls.__dict__.items():
        parts.append(name)
        func = getattr(value, "__func__", getattr(value, "fget", value))
        code = getattr(func, "__code__", None)
        if isinstance(code, types.CodeType):
            parts += [code.co_code, f"{code.co_filename}:{code.co_firstlineno}"]
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


_awaiting_state = weakref.WeakSet()  # classes rebuilt by a load whose attributes are not set yet


def _rebuild_class(metaclass, name, bases, skeleton, tracking_id):
    with identity.lock:
        cls = identity.tracked(tracking_id)
        if cls is not None:
            return cls

        def fill(namespace):  # item by item: metaclasses such as EnumMeta watch __setitem__
            for key, value in skeleton.items():
                namespace[key] = value

        cls = types.new_class(name, bases, {"metaclass": metaclass}, fill)
        identity.track(cls, tracking_id)
        _awaiting_state.add(cls)
        return cls


def _restore_class(cls, state):
    """Set the attributes of a class this load created; a class the process had keeps its own."""
    with identity.lock:
        if cls not in _awaiting_state:
            return cls
        _awaiting_state.discard(cls)
    attributes, extras = state
    for name, value in attributes.items():
        setattr(cls, name, value)
    for name, value in attributes.items():  # as the class statement would have done
        set_name = getattr(type(value), "__set_name__", None)
        if set_name is not None:
            set_name(value, cls, name)
    for subclass in extras.get("abc_registered", ()):
        cls.register(subclass)
    for name, member_attributes in extras.get("members", {}).items():
        vars(cls[name]).update(member_attributes)
    return cls


REDUCERS = {type: reduce_class}
