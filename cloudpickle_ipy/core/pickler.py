"""The Pickler: for each object the C pickler cannot handle alone, decide how it travels.

``reducer_override`` runs for every such object, so it is one dict lookup on the object's type, a
second (per pickler) for instances of classes that pickle plainly (see ``instances``: reduced here
for less than the C pickler's own way costs) and ``isinstance`` checks for classes and exceptions;
everything else is left to the C pickler.

Reducers of the user's go into that dict (``register``) or a copy of it (``reducers=``, for one
call), so they win over ours for their type and cost nothing for the others.
"""
import copyreg
import pickle
import sys
import types

from . import (
    classes,
    decorated,
    descriptors,
    functions,
    instances,
    locate,
    modules,
    plain,
    references,
    sentinels,
    stdlib,
    typevars,
)
from .classes import reduce_class
from .exceptions import reduce_exception
from .user_reducers import REGISTERED, check_reducer, checked_reducers, taking_pickler

DEFAULT_PROTOCOL = pickle.HIGHEST_PROTOCOL

# How each kind of object travels, by exact type; each module contributes its own kinds.
_REDUCERS = {**functions.REDUCERS, **classes.REDUCERS, **descriptors.REDUCERS, **modules.REDUCERS,
             **stdlib.REDUCERS, **typevars.REDUCERS, **decorated.REDUCERS, **references.REDUCERS}

# Kinds from modules too costly to import here: their reducers join once the user has imported them
# (before that, none of their objects can exist).
_ONCE_IMPORTED = {"dataclasses": sentinels.reducers, "typing": typevars.typing_reducers}


def _add_reducers_of_imported_modules():
    for name in [name for name in _ONCE_IMPORTED if name in sys.modules]:
        _REDUCERS.update({**_ONCE_IMPORTED.pop(name)(), **taking_pickler(REGISTERED)})


def _reducer_override_for(reducers):
    """A ``reducer_override`` that consults ``reducers`` (type -> ``reduce(pickler, obj)``)."""
    find = reducers.get  # bound once: the lookup below runs per object

    def reducer_override(self, obj):
        kind = type(obj)
        reduce = find(kind)
        if reduce is not None:
            return reduce(self, obj)
        known = self.known_reductions.get(kind)
        if known is None:
            known = self.known_reductions[kind] = self._known_reduction(kind)
        if known:
            return known(obj)
        if isinstance(obj, type):
            return reduce_class(self, obj)
        if isinstance(obj, BaseException):
            return reduce_exception(self, obj)
        return NotImplemented

    return reducer_override


class Pickler(pickle.Pickler):
    """A pickle.Pickler that ships interactive and by-value code by value.

    Subclasses may define ``reducer_override`` (calling ``super().reducer_override(obj)`` for what
    they do not handle) and ``dispatch_table``, as documented for :class:`pickle.Pickler`.
    """

    def __init__(self, file, protocol=None, buffer_callback=None):
        protocol = _protocol(protocol)
        super().__init__(file, protocol, buffer_callback=buffer_callback)
        if _ONCE_IMPORTED:
            _add_reducers_of_imported_modules()
        self._new_payload()
        self.protocol = protocol
        # class -> the reduce(obj) its instances take (see instances), or False: they are asked
        self.known_reductions = {}

    def _known_reduction(self, kind):
        table = getattr(self, "dispatch_table", copyreg.dispatch_table)  # a subclass may set one
        return kind not in table and _FIND(kind, self.protocol) or False

    def _new_payload(self):
        """Forget what the memo held: each table below says what a payload already carries.

        One rebuilt globals dict per module, and the globals it was given (see functions), how
        each closure cell is made (see functions), each code file name as it travels (see sources),
        what travels for each by-value module and for each package with submodules (see modules),
        the type parameters of the type statements already pickled (see typevars).
        """
        self.globals_bases = {}
        self.shipped_globals = {}
        self.closure_cells = {}
        self.source_files = {}
        self.module_subsets = {}
        self.package_imports = {}
        self.alias_params = {}

    reducer_override = _reducer_override_for(_REDUCERS)

    def clear_memo(self):
        super().clear_memo()
        self._new_payload()

    def dump(self, obj):
        try:
            return super().dump(obj)
        except RecursionError as e:
            raise pickle.PicklingError(
                f"Could not pickle object as excessively deep recursion required. The "
                f"{type(obj).__name__!r} object holds objects nested deeper than the "
                f"interpreter's recursion limit allows: flatten the structure, or raise the "
                f"limit with sys.setrecursionlimit where it applies") from e
        except Exception as e:
            self._new_payload()  # walked again from the start, as a payload of its own
            located = locate.annotate(self, obj, e)
            if located is None:
                raise
            raise located from e


CloudPickler = Pickler


def dump(obj, file, protocol=None, buffer_callback=None, *, reducers=None):
    """Pickle ``obj`` to the binary ``file``, by value where needed.

    ``reducers`` ({type: reduce_function}, as for ``register``) apply to this call only.
    """
    if reducers is not None:
        reducers = checked_reducers(reducers)
    _pickler(file, _protocol(protocol), buffer_callback, reducers).dump(obj)


def dumps(obj, protocol=None, buffer_callback=None, *, reducers=None):
    """Return the pickle of ``obj`` as bytes, by value where needed.

    ``reducers`` ({type: reduce_function}, as for ``register``) apply to this call only.
    """
    if protocol is None:
        protocol = DEFAULT_PROTOCOL
    elif type(protocol) is not int or protocol < 0:
        protocol = _protocol(protocol)
    if reducers is not None:
        reducers = checked_reducers(reducers)
    # The fast path for data, unless a callback's side effects could not be taken back, or the
    # object is a function or class: by value, it would fail there, after a table and a pickler
    # were made for nothing; by reference, Pickler writes the same.
    if buffer_callback is None and type(obj) not in _NOT_DATA:
        if _ONCE_IMPORTED:
            _add_reducers_of_imported_modules()
        data = plain.dumps(obj, protocol, _REDUCERS, reducers)
        if data is not None:
            return data
    output = plain.Output()
    _pickler(output, protocol, buffer_callback, reducers).dump(obj)
    return output.getvalue()


_NOT_DATA = frozenset({types.FunctionType, type})


def _not_implemented(obj):
    return NotImplemented


_FIND = instances.finder(_not_implemented)


def _protocol(protocol):
    """The protocol pickle would use for ``protocol`` (a negative one is the highest)."""
    if protocol is None:
        return DEFAULT_PROTOCOL
    if isinstance(protocol, dict):  # loky's order, dumps(obj, reducers)
        raise TypeError("protocol must be an int, not a dict: pass reducers as reducers=")
    if type(protocol) is int and protocol < 0:
        return pickle.HIGHEST_PROTOCOL
    return protocol


def _pickler(file, protocol, buffer_callback, reducers):
    """A Pickler for one call, where ``reducers`` (checked) win over every other for their type."""
    pickler = Pickler(file, protocol, buffer_callback=buffer_callback)
    if reducers:  # the C pickler looks reducer_override up on the instance when it dumps
        table = {**_REDUCERS, **taking_pickler(reducers)}
        pickler.reducer_override = types.MethodType(_reducer_override_for(table), pickler)
    return pickler


def register(type_, reduce_function):
    """Pickle objects of exactly ``type_`` with ``reduce_function(obj)``, which returns what
    ``__reduce__`` would (a string, or a tuple ``(callable, args, ...)``).

    Process-wide, like ``copyreg.pickle``, but for this package's pickler only; it wins over the
    reducer this package has for ``type_``, if any. A later call for the same type replaces it.
    It is asked for every such object, those in what it returns too: one for ``type`` gets every
    class, and must not return a class as its callable.
    """
    check_reducer(type_, reduce_function, "register()")
    REGISTERED[type_] = reduce_function
    _REDUCERS.update(taking_pickler({type_: reduce_function}))
    plain.forget_tables()
