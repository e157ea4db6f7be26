"""Functions, code objects and cells: how they are reduced, how they are rebuilt.

A function travels as ``FunctionType(code, globals, name, None, closure)`` plus what the function
holds beyond that, set once the function exists: everything that can refer back to the function (its
globals, the contents of its cells, its defaults and ``__dict__``) is pickled after the function is
in the pickle memo, so recursion resolves to it.

Loading is the C unpickler's work wherever it can be (issue 13): the types of code objects,
functions and cells load as the types themselves (see ``references``), so the unpickler calls them
directly; attributes travel as the ``(None, attributes)`` state that the unpickler sets with
``setattr``; a cell holding an int, a string or another atom is made with it; the globals dict of
a payload's first function of a module travels with the globals that cannot refer back to it, and
a global that an earlier function of the payload carried does not travel again. Only a function
whose globals, cells, ``__dict__`` or by-value modules remain to be filled in has a state setter
of ours called for it (``_restore_function``).
"""
import builtins
import dis
import operator
import pickle
import sys
import types

from . import decorated, modules
from .names import private, private_constants, private_keys, private_names
from .references import BUILTINS, Reduced, Reference, reference
from .registry import INTERACTIVE_MODULES, travels_by_reference
from .sources import source_file

PYTHON_VERSION = sys.version_info[:2]
_MODULE_TYPE = types.ModuleType

# What the C pickler writes itself, never asking a reducer: a cell holding one is made with it.
_ATOMS = frozenset({type(None), bool, int, float, str, bytes})


class PythonVersionError(pickle.UnpicklingError):
    """By-value code made by one Python minor version is being loaded by another."""


# --- code objects ----------------------------------------------------------------------------------
# A code object travels as the arguments of its constructor. The constructor and the bytecode change
# with every minor version, and building a code object from another version's fields crashes or fails
# obscurely, so the constructor itself travels tagged with the Python version that made the payload
# (``_code_type(version)``), and loads only on that version. Pickling the fields (not one marshal
# blob per code object) lets the memo share file names, names and constants.

def _code_type(version):
    """``types.CodeType``, if ``version`` (of the pickling Python) is this Python's."""
    version = tuple(version)
    if version != PYTHON_VERSION:
        made, here = "%d.%d" % version, "%d.%d" % PYTHON_VERSION
        raise PythonVersionError(
            f"this payload holds code compiled by Python {made}, but this is Python {here}: "
            f"by-value functions and classes only load on the Python minor version that pickled "
            f"them; load it with Python {made} or pickle it again with Python {here}")
    return types.CodeType


# The types that rebuild code objects, functions and cells (pickle cannot name the last two:
# types.FunctionType is builtins.function, which does not exist). FunctionType is the class of
# _code_type, which a payload with a function loads anyway.
_CODE_TYPE = reference(_code_type)
CODE_TYPE = Reference(types.CodeType, (_CODE_TYPE, (PYTHON_VERSION,)))
FUNCTION_TYPE = Reference(types.FunctionType, (getattr, (_CODE_TYPE, "__class__")))
CELL_TYPE = reference(types.CellType, "types", "CellType")


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
    info = _code_infos.get(id(code))
    if info is None or info.code is not code:
        info = _code_info(code)
    # One SourceFile per file and payload; the C pickler alone (no pickler) makes one per code.
    shipped_files = {} if pickler is None else pickler.source_files
    filename = info.filename
    shipped = shipped_files.get(filename)
    if shipped is None:
        shipped = shipped_files[filename] = source_file(filename) or private(filename)
    return CODE_TYPE, info.before + (shipped,) + info.after


class _CodeInfo:
    """What reducing a code object, or a function of it, needs of the code: its fields with names
    written by value, the globals and attribute names it uses, and what rebuilding gives a function
    of it by itself (name, qualified name, docstring)."""

    __slots__ = ("code", "before", "filename", "after", "globals", "names", "name", "qualname",
                 "doc")

    def __init__(self, code):
        fields = list(_get_code_fields(code))
        for index in _NAME_INDEXES:
            fields[index] = private(fields[index])
        for index in _NAME_TUPLE_INDEXES:
            fields[index] = private_names(fields[index])
        fields[_CONSTS_INDEX] = private_constants(fields[_CONSTS_INDEX])
        self.code = code
        self.before = tuple(fields[:_FILENAME_INDEX])
        self.filename = fields[_FILENAME_INDEX]
        self.after = tuple(fields[_FILENAME_INDEX + 1:])
        self.globals = tuple(map(private, _global_names(code, {})))
        self.names = _all_names(code, {})
        self.name = code.co_name
        self.qualname = getattr(code, "co_qualname", code.co_name)
        consts = code.co_consts
        self.doc = consts[0] if consts and type(consts[0]) is str else None


# id(code) -> its _CodeInfo: the same function is often pickled again and again (a task submitted in
# a loop), and closures made by one factory share their code. Bounded.
_code_infos = {}
_CACHED_CODES = 4096


def _code_info(code):
    """A new _CodeInfo of ``code``, kept (the callers look the cache up themselves)."""
    info = _CodeInfo(code)
    if len(_code_infos) >= _CACHED_CODES:
        _code_infos.clear()
    _code_infos[id(code)] = info
    return info


# --- the globals a code object uses ----------------------------------------------------------------
# A function carries the globals its code (nested functions and class bodies included) reads or
# writes, and nothing else. Each name the code has is looked up in its bytecode as an (opcode, index)
# pair at an even offset: a C-speed ``bytes.find`` per name, exact as long as no name instruction
# needs EXTENDED_ARG. The result is kept per code object (see _CodeInfo).

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


def _global_names(code, found):
    """Add to ``found`` (a dict used as an ordered set) the names that ``code`` and its nested code
    use as globals, in order."""
    names = code.co_names
    if names:
        raw = code.co_code
        scanned = _scan_globals(code) if len(names) > len(_PATTERNS) else None
        for index, name in enumerate(names):
            if name not in found and name not in _BASE_NAMES and (
                    _uses_as_global(raw, _PATTERNS[index]) if scanned is None
                    else name in scanned):
                found[name] = None
    for const in code.co_consts:
        if type(const) is types.CodeType:
            _global_names(const, found)
    return found


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


def _globals_base(namespace):
    """What the globals of one module travel as: a dict of what a module's dict starts with. Every
    function pickled from that module in one payload shares it, as they shared the original, and
    adds the globals it uses."""
    return {_NAME: _private_or_none(namespace.get("__name__")),
            _PACKAGE: _private_or_none(namespace.get("__package__")), _BUILTINS: BUILTINS}


# --- cells -------------------------------------------------------------------------------------------
# A closure's cells travel as the function's own (so cells shared by several closures stay shared).
# A cell first met holding an atom is made with it; any other is made empty and filled in by the state
# of a function that uses it, once that function is in the memo: its value may be the function.

class CellIsEmpty:
    """Marks a cell that a function's state leaves as it is: one with no value (a free variable not
    assigned yet), or one made with its value."""


def reduce_cell(pickler, cell):
    if pickler is not None:
        args = pickler.closure_cells.get(id(cell))
        if args is not None:  # a cell of a function being pickled
            return CELL_TYPE, args
    try:
        value = cell.cell_contents
    except ValueError:
        return CELL_TYPE, ()
    if type(value) in _ATOMS:
        return CELL_TYPE, (value,)
    return CELL_TYPE, (), (None, {_CELL_CONTENTS: value})


def _closure_values(pickler, closure):
    """What a function's state puts in each cell of its ``closure`` (CellIsEmpty: nothing), or None
    if every cell is made as it must be; records how each cell first met is made."""
    made = pickler.closure_cells
    values = []
    needed = False
    for cell in closure:
        try:
            value = cell.cell_contents
        except ValueError:
            value = CellIsEmpty
        args = made.get(id(cell))
        if args is None:
            if type(value) in _ATOMS:
                made[id(cell)] = (value,)
                value = CellIsEmpty
            else:
                made[id(cell)] = ()
        elif args and args[0] is value:
            value = CellIsEmpty
        if value is not CellIsEmpty:
            needed = True
        values.append(value)
    return values if needed else None


# --- functions ---------------------------------------------------------------------------------------

# The keys of a function's state: private copies (see names), as are the names they hold.
_GLOBALS, _SUBMODULES, _MODULE_ATTRIBUTES, _CELLS, _DICT, _CELL_CONTENTS = map(
    private, ("globals", "submodules", "module_attributes", "cells", "__dict__", "cell_contents"))
_DEFAULTS, _KWDEFAULTS, _DOC, _ANNOTATIONS, _QUALNAME, _MODULE, _TYPE_PARAMS = map(
    private, ("__defaults__", "__kwdefaults__", "__doc__", "__annotations__", "__qualname__",
              "__module__", "__type_params__"))
_NAME, _PACKAGE, _BUILTINS = map(private, ("__name__", "__package__", "__builtins__"))
_ABSENT = object()
_HAS_TYPE_PARAMS = hasattr(types.FunctionType, "__type_params__")  # 3.12 and later


def reduce_function(pickler, func):
    # Runs for every function of every payload: checks are ordered from the cheapest, and Python
    # calls made only where they are needed.
    module = func.__module__
    if module not in INTERACTIVE_MODULES and travels_by_reference(func, module, func.__qualname__):
        return NotImplemented
    code = func.__code__
    if code is decorated.SINGLEDISPATCH_CODE:
        return decorated.reduce_singledispatch(pickler, func)
    info = _code_infos.get(id(code))
    if info is None or info.code is not code:
        info = _code_info(code)
    namespace = func.__globals__
    base = pickler.globals_bases.get(id(namespace))
    fresh = base is None  # then it travels with this function
    if fresh:
        base = pickler.globals_bases[id(namespace)] = _globals_base(namespace)
    used = {}
    for name in info.globals:  # a loop: a comprehension would be one more call
        if name in namespace:
            used[name] = namespace[name]
    closure = func.__closure__
    cells = None if closure is None else _closure_values(pickler, closure)
    defaults, kwdefaults = func.__defaults__, func.__kwdefaults__
    imports = module_attributes = None
    if ((used and _MODULE_TYPE in map(type, used.values()))
            or (cells and _MODULE_TYPE in map(type, cells))
            or (defaults and _MODULE_TYPE in map(type, defaults))
            or (kwdefaults and _MODULE_TYPE in map(type, kwdefaults.values()))):
        held = [value for value in (*used.values(), *(cells or ()), *(defaults or ()),
                                    *(kwdefaults.values() if kwdefaults else ()))
                if type(value) is _MODULE_TYPE]
        stand_ins, imports, module_attributes = modules.reach(pickler, held, info.names)
        if stand_ins:  # by-value modules, and packages with submodules, travel as stand-ins
            used, cells, defaults, kwdefaults = _swapped(stand_ins, used, cells, defaults, kwdefaults)
    if used:
        shipped = pickler.shipped_globals.get(id(namespace))
        if shipped is None:
            pickler.shipped_globals[id(namespace)] = dict(used)
            if fresh and type(base) is dict:
                used = _into_base(base, used)
        else:  # those that a function pickled before from the same module did not carry
            new = {}
            for name, value in used.items():
                if shipped.get(name, _ABSENT) is not value:
                    shipped[name] = new[name] = value
            used = new
    # Set with setattr: what rebuilding does not give the function by itself.
    attributes = {}
    if defaults is not None:
        attributes[_DEFAULTS] = defaults
    if kwdefaults is not None:
        attributes[_KWDEFAULTS] = kwdefaults
    doc = func.__doc__
    if doc is not info.doc and not (type(doc) is str and doc == info.doc):
        attributes[_DOC] = doc
    if func.__annotations__:  # keyed by parameter names, which travel as private copies
        attributes[_ANNOTATIONS] = private_keys(func.__annotations__)
    if func.__qualname__ != info.qualname:
        attributes[_QUALNAME] = private(func.__qualname__)
    if func.__module__ != namespace.get("__name__"):
        attributes[_MODULE] = _private_or_none(func.__module__)
    if _HAS_TYPE_PARAMS and func.__type_params__:
        attributes[_TYPE_PARAMS] = func.__type_params__
    name = None if func.__name__ == info.name else private(func.__name__)
    args = (code, base, name) if closure is None else (code, base, name, None, closure)
    if not (used or cells or imports or module_attributes or func.__dict__):
        if attributes:
            return FUNCTION_TYPE, args, (None, attributes)
        return FUNCTION_TYPE, args
    state = {}
    if used:
        state[_GLOBALS] = used
    if imports:
        state[_SUBMODULES] = tuple(imports)
    if module_attributes:
        state[_MODULE_ATTRIBUTES] = tuple(module_attributes)
    if cells:
        state[_CELLS] = tuple(cells)
    state.update(attributes)
    if func.__dict__:
        state[_DICT] = func.__dict__
    return FUNCTION_TYPE, args, state, None, None, RESTORE_FUNCTION


def _into_base(base, used):
    """Put in ``base`` (the globals dict that travels with the function) the globals of ``used``
    that cannot refer back to the function, which does not exist yet when they are loaded; return
    the others, which the function's state carries."""
    others = {}
    for name, value in used.items():
        if type(value) in _BEFORE_FUNCTION:
            base[name] = value
        else:
            others[name] = value
    return others


# What may load before the function that it belongs to: atoms, and modules and their stand-ins
# (imports, or empty modules whose attributes the function's state sets).
_BEFORE_FUNCTION = _ATOMS | {_MODULE_TYPE, modules.ModuleSubset, Reduced}


def _swapped(stand_ins, used, cells, defaults, kwdefaults):
    def swap(value):
        return stand_ins.get(id(value), value)
    return ({k: swap(v) for k, v in used.items()}, cells and list(map(swap, cells)),
            defaults and tuple(map(swap, defaults)),
            kwdefaults and {k: swap(v) for k, v in kwdefaults.items()})


def _private_or_none(name):
    return private(name) if type(name) is str else name


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


RESTORE_FUNCTION = reference(_restore_function)


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


# --- what payloads written by earlier versions name ------------------------------------------------

def _rebuild_code(version, fields):
    return _code_type(version)(*fields)


def _rebuild_cell():
    return types.CellType()


def _restore_cell(cell, value):
    if value is not CellIsEmpty:
        cell.cell_contents = value
    return cell


def _rebuild_globals(name, package):
    return {"__name__": name, "__package__": package, "__builtins__": builtins}


def _rebuild_function(code, globals, name, closure):
    func = types.FunctionType(code, globals, name, None, closure)
    func.__doc__ = None
    return func

