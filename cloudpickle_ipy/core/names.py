"""Names written by value, not by identity, so that a payload does not depend on what the pickling
process interned.

The pickler shares a string or tuple between two places of a payload when both hold the same object
(its memo is keyed by id). Which names are the same object depends on the process: CPython interns
identifiers when it compiles code, sets an attribute or builds a code object, and a process that
loaded a payload (and interned its names, or had interned them before) holds other objects than the
one that made it. So the names that by-value reductions write (code object names and constants,
function, class and attribute names, and this package's own keys) are replaced by private copies,
one per value: they are shared exactly where their values are equal, and never with the user's own
data, whatever either process interned. Pickling again what a payload rebuilt gives its bytes.

The copies are kept for the life of the process (names of the code pickled, and short constants),
so that a name costs one dict lookup.
"""
_COPIES = {}  # value -> this process's private copy


def private(name):
    """The private copy of the string ``name``."""
    copy = _COPIES.get(name)
    if copy is None:
        # A new object equal to ``name``: join makes one even of a single character, which most
        # other operations (and unpickling) return as a shared singleton.
        copy = _COPIES.setdefault(name, "".join(("", name)))
    return copy


def private_keys(mapping):
    """A new dict of ``mapping`` with its (string) keys replaced by their private copies."""
    return {private(key): value for key, value in mapping.items()}


def private_names(names):
    """The private copy of a tuple of strings, the same object for every equal tuple."""
    copy = _COPIES.get(names)
    if copy is None:
        copy = _COPIES.setdefault(names, tuple([private(name) for name in names]))
    return copy


def private_constants(constants):
    """A code object's ``constants`` with every string that CPython may intern (identifier-like,
    or short), also inside tuples and frozensets, replaced by its private copy: a code object
    interns such constants, so the loading side holds its own interned strings there. Tuples
    holding such strings become new tuples, never shared; frozensets become :class:`SortedSet`.
    The same object if nothing changes."""
    changed = None
    for index, constant in enumerate(constants):
        kind = type(constant)
        if kind is str:
            if len(constant) > 40 and not _name_like(constant):
                continue
            copy = private(constant)
        elif kind is tuple and constant:
            copy = private_constants(constant)
        elif kind is frozenset:
            copy = SortedSet(private_constants(tuple(constant)))
        else:
            continue
        if copy is not constant:
            if changed is None:
                changed = list(constants)
            changed[index] = copy
    return constants if changed is None else tuple(changed)


def _name_like(text):
    """Whether CPython interns ``text`` as a constant: letters, digits and underscores only."""
    return text.isascii() and text.replace("_", "a").isalnum()


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
