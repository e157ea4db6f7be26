"""Names written by value, not by identity, so that a payload does not depend on what the pickling
process interned.

The pickler shares a string or tuple between two places of a payload when both hold the same object
(its memo is keyed by id). Which names are the same object depends on the process: CPython interns
identifiers when it compiles code, sets an attribute or builds a code object, and a process that
loaded a payload (and interned its names, or had interned them before) holds other objects than the
one that made it. So the names that by-value reductions write (code object names and constants,
function, class and attribute names) are replaced by private copies, one per value and payload:
they are shared exactly where their values are equal, and never with the user's own data. Pickling
again what a payload rebuilt then gives the payload's bytes.
"""


def private(table, name):
    """The payload's own copy of the string ``name`` (``table`` is one payload's)."""
    copy = table.get(name)
    if copy is None:
        # A new object equal to ``name``: join makes one even of a single character, which most
        # other operations (and unpickling) return as a shared singleton.
        copy = table[name] = "".join(("", name))
    return copy


def private_keys(table, mapping):
    """A new dict of ``mapping`` with string keys replaced by the payload's copies (keys such as
    ``"__doc__"`` are this package's own interned constants, which user data may share)."""
    return {private(table, key): value for key, value in mapping.items()}


def private_names(table, names):
    """The payload's own copy of a tuple of strings, shared by every equal tuple of the payload."""
    copy = table.get(names)
    if copy is None:
        copy = table[names] = tuple([private(table, name) for name in names])
    return copy


def private_constants(table, constants):
    """A code object's ``constants`` with every string, also inside tuples and frozensets, replaced
    by the payload's copy (a code object interns the identifiers among its constants, so the
    loading side holds its own interned strings there). Tuples holding strings become new tuples,
    never shared; frozensets become :class:`SortedSet`. The same object if nothing changes."""
    changed = None
    for index, constant in enumerate(constants):
        kind = type(constant)
        if kind is str:
            copy = private(table, constant)
        elif kind is tuple and constant:
            copy = private_constants(table, constant)
        elif kind is frozenset:
            copy = SortedSet(private_constants(table, tuple(constant)))
        else:
            continue
        if copy is not constant:
            if changed is None:
                changed = list(constants)
            changed[index] = copy
    return constants if changed is None else tuple(changed)


class SortedSet:
    """Stands for a set constant (``x in {"a", "b"}``), written in sorted order: pickle writes sets
    in hash order, which changes with PYTHONHASHSEED."""

    __slots__ = ("items",)

    def __init__(self, items):
        self.items = items

    def __reduce__(self):
        return frozenset, (tuple(sorted(self.items, key=_constant_order)),)


def _constant_order(constant):
    return type(constant).__name__, repr(constant)
