"""Standard-library sentinels that must load as themselves, not as copies.

``dataclasses`` tells a required field by ``field.default is MISSING`` and a real field by
``field._field_type is _FIELD``: pickled by their default reduction they load as new objects, and a
loaded dataclass loses its ``fields()`` or a subclass of it turns required fields optional.
"""
import sys


def reducers():
    """Reducers for the sentinels of ``dataclasses`` (called once it is imported: it is costly)."""
    dataclasses = sys.modules["dataclasses"]
    names = ("MISSING", "KW_ONLY", "_HAS_DEFAULT_FACTORY", "_FIELD", "_FIELD_CLASSVAR",
             "_FIELD_INITVAR")
    by_id = {id(getattr(dataclasses, n)): n for n in names if hasattr(dataclasses, n)}

    def reduce_sentinel(pickler, obj):
        name = by_id.get(id(obj))
        return NotImplemented if name is None else (getattr, (dataclasses, name))

    return {type(getattr(dataclasses, n)): reduce_sentinel for n in by_id.values()}
