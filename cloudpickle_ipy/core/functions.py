"""Functions, code objects and cells: how they are reduced, how they are rebuilt.

A function travels as ``_rebuild_function(code, globals, name, closure)`` plus a state dict that a
state setter applies once the function exists. Everything that can refer back to the function (its
globals, the contents of its cells, its defaults and ``__dict__``) is in the state, so the pickle
memo already holds the function when those are pickled and recursion resolves to it.
"""
import builtins
import dis
import operator
import pickle
import sys
import types

from . import decorated, modules
from .names import private, private_constants, private_keys, private_names
from .registry import travels_by_reference
from .sources import source_file

PYTHON_VERSION = sys.version_info[:2]
_MODULE_TYPE = types.ModuleType


class PythonVersionError(pickle.UnpicklingError):
    """By-value code made by one Python minor version is being loaded by another."""


# --- code objects ----------------------------------------------------------------------------------
# A code object travels as the arguments of its constructor, tagged with the Python version that made
# it: the constructor and the bytecode change with every minor version, and building a code object
# from another version's fields crashes or fails obscurely, so the tag is checked first. Pickling the
# fields (not one marshal blob per code object) lets the memo share file names, names and constants.

def _code_fields():
    """The attributes that ``types.CodeType(...)`` takes, in its order, on this interpreter."""
    sample = _code_fields.__code__
    fields = ["co_argcount", "co_posonlyargcount", "co_kwonlyargcount", "co_nlocals",
              "co_stacksize", "co_flags", "co_code", "co_consts", "co_names", "co_varnames",
              "co_filename", "co_name"]
    if hasattr(sample, "co_qualname"):
        fields.append("co_qualname")
    fields.append("co_firstlineno")
    fields.append("co_linetable" if hasattr(sample, "co_linetable") else "co_lnotab")
    if hasattr(sample, "co_exceptiontable"):
        fields.append("co_exceptiontable")
    fields += ["co_freevars", "co_cellvars"]
    return fields


_CODE_FIELDS = _code_fields()
_CONSTS_INDEX = _CODE_FIELDS.index("co_consts")
_get_code_fields = operator.attrgetter(*_CODE_FIELDS)


_FILENAME_INDEX = _CODE_FIELDS.index("co_filename")
_NAME_INDEXES = [_CODE_FIELDS.index(f) for f in ("co_name", "co_qualname") if f in _CODE_FIELDS]
_NAME_TUPLE_INDEXES = [_CODE_FIELDS.index(f) for f in ("co_names", "co_varnames", "co_freevars",
                                                        "co_cellvars")]


def reduce_code(pickler, code):
    """The fields with names written by value (see ``names``), and the file name as a portable one
    carrying the source when that lives only in memory (see ``sources``)."""
    cached = _reduced_code.get(id(code))
    if cached is None or cached[0] is not code:
        cached = _cache_fields(code)
    _, before, filename, after = cached
    # One SourceFile per file and payload; the C pickler alone (no pickler) makes one per code.
    shipped_files = {} if pickler is None else pickler.source_files
    shipped = shipped_files.get(filename)
    if shipped is None:
        shipped = shipped_files[filename] = source_file(filename) or private(filename)
    return _rebuild_code, (PYTHON_VERSION, before + (shipped,) + after)


# id(code) -> (code, fields before co_filename, co_filename, fields after), the names private:
# the same function is often pickled again and again (a task submitted in a loop). Bounded.
_reduced_code = {}
_CACHED_CODES = 4096


def _cache_fields(code):
    fields = list(_get_code_fields(code))
    for index in _NAME_INDEXES:
        fields[index] = private(fields[index])
    for index in _NAME_TUPLE_INDEXES:
        fields[index] = private_names(fields[index])
    fields[_CONSTS_INDEX] = private_constants(fields[_CONSTS_INDEX])
    if len(_reduced_code) >= _CACHED_CODES:
        _reduced_code.clear()
    cached = _reduced_code[id(code)] = (code, tuple(fields[:_FILENAME_INDEX]),
                                         fields[_FILENAME_INDEX],
                                         tuple(fields[_FILENAME_INDEX + 1:]))
    return cached


def _rebuild_code(version, fields):
    version = tuple(version)
    if version != PYTHON_VERSION:
        made, here = "%d.%d" % version, "%d.%d" % PYTHON_VERSION
        raise PythonVersionError(
            f"this payload holds code compiled by Python {made}, but this is Python {here}: "
            f"by-value functions and classes only load on the Python minor version that pickled "
            f"them; load it with Python {made} or pickle it again with Python {here}")
    return types.CodeType(*fields)


# --- the globals a code object uses ----------------------------------------------------------------
# A function carries the globals its code (nested functions and class bodies included) reads or
# writes, and nothing else. Only names present in the function's globals can be such globals, so
# each of those is looked up in the bytecode as an (opcode, index) pair at an even offset: a C-speed
# ``bytes.find`` per name, exact as long as no name instruction needs EXTENDED_ARG.

def _global_name_opcodes():
    names = ("LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_NAME",
             "LOAD_FROM_DICT_OR_GLOBALS")  # class bodies read globals with LOAD_NAME
    return frozenset(dis.opmap[n] for n in names if n in dis.opmap)


def _load_global_shift():
    """From 3.11, LOAD_GLOBAL's argument is ``name_index << 1 | push_null``: detect it."""
    probe = compile("def probe():\n    a\n    return b\n", "<probe>", "exec").co_consts[0]
    raw = probe.co_code
    args = [raw[i + 1] for i in range(0, len(raw), 2) if raw[i] == dis.opmap["LOAD_GLOBAL"]]
    return 1 if args[-1] == 2 else 0


_GLOBAL_OPS = _global_name_opcodes()
_LOAD_GLOBAL = dis.opmap["LOAD_GLOBAL"]
_LOAD_GLOBAL_SHIFT = _load_global_shift()
_EXTENDED_ARG = dis.opmap["EXTENDED_ARG"]


def _instruction_patterns(index):
    """The two-byte instructions that use name ``index`` as a global."""
    patterns = []
    for op in sorted(_GLOBAL_OPS):
        if op == _LOAD_GLOBAL and _LOAD_GLOBAL_SHIFT:
            patterns += [bytes([op, index << 1]), bytes([op, index << 1 | 1])]
        else:
            patterns.append(bytes([op, index]))
    return tuple(patterns)


_PATTERNS = [_instruction_patterns(i) for i in range(256 >> _LOAD_GLOBAL_SHIFT)]

# Names a rebuilt globals dict already has.
_BASE_NAMES = frozenset({"__name__", "__package__", "__builtins__"})


def _collect_globals(code, namespace, used):
    """Add to ``used`` the globals in ``namespace`` that ``code`` and its nested code use, in order."""
    names = code.co_names
    if names:
        raw = code.co_code
        scanned = _scan_globals(code) if len(names) > len(_PATTERNS) else None
        for index, name in enumerate(names):
            if name in namespace and name not in used and name not in _BASE_NAMES and (
                    _uses_as_global(raw, _PATTERNS[index]) if scanned is None
                    else name in scanned):
                used[name] = namespace[name]
    for const in code.co_consts:
        if type(const) is types.CodeType:
            _collect_globals(const, namespace, used)


def _uses_as_global(raw, patterns):
    for pattern in patterns:
        at = raw.find(pattern)
        while at != -1:
            if not at & 1:
                return True
            at = raw.find(pattern, at + 1)
    return False


def _scan_globals(code):
    """The global names of ``code`` (not nested code), decoding every instruction: for code with
    more names than the two-byte patterns cover."""
    names, found = code.co_names, set()
    raw = code.co_code
    extended = 0
    for op, arg in zip(raw[::2], raw[1::2]):
        if op == _EXTENDED_ARG:
            extended = (extended | arg) << 8
            continue
        if op in _GLOBAL_OPS:
            index = extended | arg
            found.add(names[index >> _LOAD_GLOBAL_SHIFT if op == _LOAD_GLOBAL else index])
        extended = 0
    return found


def _all_names(code, names):
    """Every name ``code`` and its nested code use (globals and attributes), in order."""
    names.update(dict.fromkeys(code.co_names))
    for const in code.co_consts:
        if type(const) is types.CodeType:
            _all_names(const, names)
    return names


class GlobalsBase:
    """Stands for one module's globals in a payload: every function pickled from that module in
    one pickler shares the rebuilt dict, as they shared the original one."""

    __slots__ = ("name", "package")

    def __init__(self, name, package):
        self.name, self.package = name, package

    def __reduce__(self):
        return _rebuild_globals, (self.name, self.package)


def _rebuild_globals(name, package):
    return {"__name__": name, "__package__": package, "__builtins__": builtins}


# --- cells -------------------------------------------------------------------------------------------

class EmptyCell:
    """Stands for one closure cell: rebuilt empty and filled by the state of a function that uses it,
    so cells shared by several closures stay shared."""

    __slots__ = ()

    def __reduce__(self):
        return _rebuild_cell, ()


class CellIsEmpty:
    """Marks a cell with no value (a free variable not assigned yet); kept empty when rebuilt."""


def _rebuild_cell():
    return types.CellType()


def _cell_value(cell):
    try:
        return cell.cell_contents
    except ValueError:
        return CellIsEmpty


def reduce_cell(pickler, cell):
    return _rebuild_cell, (), _cell_value(cell), None, None, _restore_cell


def _restore_cell(cell, value):
    if value is not CellIsEmpty:
        cell.cell_contents = value
    return cell


# --- functions ---------------------------------------------------------------------------------------

# The keys of a function's state: private copies (see names), as are the names they hold.
_GLOBALS, _SUBMODULES, _MODULE_ATTRIBUTES, _CELLS, _DICT = map(
    private, ("globals", "submodules", "module_attributes", "cells", "__dict__"))
_DEFAULTS, _KWDEFAULTS, _DOC, _ANNOTATIONS, _QUALNAME, _MODULE, _TYPE_PARAMS = map(
    private, ("__defaults__", "__kwdefaults__", "__doc__", "__annotations__", "__qualname__",
              "__module__", "__type_params__"))


def reduce_function(pickler, func):
    if travels_by_reference(func, func.__module__, func.__qualname__):
        return NotImplemented
    code = func.__code__
    if code is decorated.SINGLEDISPATCH_CODE:
        return decorated.reduce_singledispatch(pickler, func)
    namespace = func.__globals__
    base = pickler.globals_bases.get(id(namespace))
    if base is None:
        base = pickler.globals_bases[id(namespace)] = GlobalsBase(
            _private_or_none(namespace.get("__name__")),
            _private_or_none(namespace.get("__package__")))
    state = {}
    used = {}
    _collect_globals(code, namespace, used)
    closure = func.__closure__
    contents = () if closure is None else tuple(_cell_value(c) for c in closure)
    defaults, kwdefaults = func.__defaults__, func.__kwdefaults__
    imports = attributes = None
    if used or contents or defaults or kwdefaults:
        held = [v for v in (*used.values(), *contents, *(defaults or ()),
                            *(kwdefaults.values() if kwdefaults else ())) if type(v) is _MODULE_TYPE]
        if held:
            stand_ins, imports, attributes = modules.reach(pickler, held, _all_names(code, {}))
            if stand_ins:  # by-value modules travel as their stand-ins
                used, contents, defaults, kwdefaults = _swapped(
                    stand_ins, used, contents, defaults, kwdefaults)
    if used:
        state[_GLOBALS] = {private(k): v for k, v in used.items()}
    if imports:
        state[_SUBMODULES] = tuple(imports)
    if attributes:
        state[_MODULE_ATTRIBUTES] = tuple(attributes)
    if closure is not None:
        cells = pickler.empty_cells
        closure = tuple(cells.get(id(c)) or cells.setdefault(id(c), EmptyCell()) for c in closure)
        state[_CELLS] = contents
    if defaults is not None:
        state[_DEFAULTS] = defaults
    if kwdefaults is not None:
        state[_KWDEFAULTS] = kwdefaults
    if func.__doc__ is not None:
        state[_DOC] = func.__doc__
    if func.__annotations__:  # keyed by parameter names, which travel as private copies
        state[_ANNOTATIONS] = private_keys(func.__annotations__)
    if func.__qualname__ != getattr(code, "co_qualname", code.co_name):  # what rebuilding gives
        state[_QUALNAME] = private(func.__qualname__)
    if func.__module__ != namespace.get("__name__"):
        state[_MODULE] = _private_or_none(func.__module__)
    if func.__dict__:
        state[_DICT] = func.__dict__
    if getattr(func, "__type_params__", None):
        state[_TYPE_PARAMS] = func.__type_params__
    return (_rebuild_function, (code, base, private(func.__name__), closure), state, None, None,
            _restore_function)


def _swapped(stand_ins, used, contents, defaults, kwdefaults):
    def swap(value):
        return stand_ins.get(id(value), value)
    return ({k: swap(v) for k, v in used.items()}, tuple(map(swap, contents)),
            defaults and tuple(map(swap, defaults)),
            kwdefaults and {k: swap(v) for k, v in kwdefaults.items()})


def _private_or_none(name):
    return private(name) if type(name) is str else name


def _rebuild_function(code, globals, name, closure):
    func = types.FunctionType(code, globals, name, None, closure)
    func.__doc__ = None
    return func


def _restore_function(func, state):
    for key, value in state.items():
        if key == "globals":
            func.__globals__.update(value)
        elif key == "cells":
            for cell, content in zip(func.__closure__, value):
                if content is not CellIsEmpty:
                    cell.cell_contents = content
        elif key == "__dict__":
            func.__dict__.update(value)
        elif key == "module_attributes":
            modules.restore_attributes(value)
        elif key != "submodules":  # imported while unpickling: nothing left to do
            setattr(func, key, value)
    return func


def reduce_method(pickler, method):
    """A bound method travels as its function bound again to its object (``func.__get__(obj)``):
    pickle's own reduction looks the method up by the function's name, which fails for a function
    stored under another name (``A.echo = lambda self, x: x``)."""
    func = method.__func__
    if not hasattr(type(func), "__get__"):
        return NotImplemented
    return operator.methodcaller("__get__", method.__self__), (func,)


REDUCERS = {
    types.FunctionType: reduce_function,
    types.CodeType: reduce_code,
    types.CellType: reduce_cell,
    types.MethodType: reduce_method,
}
