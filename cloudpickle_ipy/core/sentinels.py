"""Objects of ``dataclasses`` that pickle cannot send faithfully.

Its sentinels must load as themselves, not as copies: ``dataclasses`` tells a required field by
``field.default is MISSING`` and a real field by ``field._field_type is _FIELD``, so a loaded
dataclass would lose its ``fields()`` or a subclass of it would turn required fields optional.

Its ``Field`` objects (and a dataclass's parameters) travel with their slot names, and a field's
name, as private copies (see ``names``): the slot ``name`` of a field named ``name`` is
otherwise the same string object as the field's name here, and not in a process that loaded it, so
pickling a loaded dataclass again would give other bytes.
"""
import sys

from .names import private, private_keys


def reducers():
    """Reducers for ``dataclasses`` (called once it is imported: it is costly)."""
    dataclasses = sys.modules["dataclasses"]
    names = ("MISSING", "KW_ONLY", "_HAS_DEFAULT_FACTORY", "_FIELD", "_FIELD_CLASSVAR",
             "_FIELD_INITVAR")
    by_id = {id(getattr(dataclasses, n)): n for n in names if hasattr(dataclasses, n)}

    def reduce_sentinel(pickler, obj):
        name = by_id.get(id(obj))
        return NotImplemented if name is None else (getattr, (dataclasses, name))

    table = {type(getattr(dataclasses, n)): reduce_sentinel for n in by_id.values()}
    table[dataclasses.Field] = _reduce_with_private_slot_names
    table[dataclasses._DataclassParams] = _reduce_with_private_slot_names
    return table


def _reduce_with_private_slot_names(pickler, obj):
    func, args, (attributes, slots) = obj.__reduce_ex__(2)[:3]
    slots = private_keys(slots)
    if type(slots.get("name")) is str:  # a field's name
        slots[_NAME] = private(slots["name"])
    return func, args, (attributes, slots)


_NAME = private("name")
