"""A module in memory and its source file on disk: reading a source safely, and telling whether the
code this process runs is the code its file holds now.

Reading never blocks and never balloons: a path that is now a FIFO, a device or a socket is refused
before it is opened (a FIFO would wait for a writer, ``/dev/zero`` never ends), and so is a file
larger than :data:`MAX_SOURCE_BYTES`.

Whether the code running is the file's: the file is compiled and compared, line numbers aside, with
the code in memory: every function and method the module holds, and its module-level code (which ran
once, at import) with what is known to have run (:func:`running_code`).
"""
import functools
import importlib.machinery
import importlib.util
import marshal
import os
import stat
import sys
import types

MAX_SOURCE_BYTES = 16 * 2**20  # 16 MiB: far above any hand-written module (the largest of the
# standard library is under 1 MiB), far below what would strain a client or a kernel

_CODE = types.CodeType
_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


class NotASource(ValueError):
    """A path that is not a regular file of reasonable size; the message says what it is."""


def signature(path):
    """What changes when the file is edited: (mtime in ns, size); None if it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def read_source(path, limit=MAX_SOURCE_BYTES, head=False):
    """The bytes of the regular file ``path`` (with ``head``, only its first ``limit`` bytes);
    :class:`NotASource` if it is something else or larger than ``limit`` bytes, ``OSError`` if it
    cannot be read."""
    _check_regular(path, os.stat(path), None if head else limit)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        _check_regular(path, os.fstat(fd), None if head else limit)  # replaced since the stat
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if head:
        return data[:limit]
    if size > limit:  # grew while it was read
        raise NotASource(f"{path} is larger than {limit >> 20} MiB")
    return data


def _check_regular(path, st, limit):
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        raise NotASource(f"{path} is {kind}, not a regular file")
    if limit is not None and st.st_size > limit:
        raise NotASource(f"{path} is larger than {limit >> 20} MiB ({st.st_size / 2**20:,.0f} MiB)")


def _pyc_header(module, whole=False):
    """(source mtime in s, source size) from the header of the ``.pyc`` the standard loader wrote
    when it imported ``module`` (with ``whole``: and the pyc's bytes); None if there is no such pyc
    to trust (no bytecode written, another loader, another Python's pyc, or a hash-based one)."""
    namespace = module.__dict__
    if (sys.dont_write_bytecode
            or not isinstance(namespace.get("__loader__"), importlib.machinery.SourceFileLoader)):
        return None
    try:
        data = read_source(namespace["__cached__"], **({} if whole else {"limit": 16, "head": True}))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if len(data) < 16 or data[:4] != importlib.util.MAGIC_NUMBER or data[4:8] != bytes(4):
        return None
    header = int.from_bytes(data[8:12], "little"), int.from_bytes(data[12:16], "little")
    return (header, data) if whole else header


def _pyc_is_of(header, file_signature):
    """Whether a pyc header describes the file with ``file_signature`` (as the loader checks)."""
    mtime_ns, size = file_signature
    return header == ((mtime_ns // 1_000_000_000) & 0xFFFFFFFF, size & 0xFFFFFFFF)


def edited_since_import(module, file_signature):
    """Whether the source changed since ``module`` was imported, judged by its pyc header alone
    (cheap: for modules imported before anything of ours looked at them)."""
    header = _pyc_header(module) if file_signature is not None else None
    return header is not None and not _pyc_is_of(header, file_signature)


class RunningCode:
    """What :func:`running_code` found ``module`` running: its module-level code (``skeleton``, None
    if unknown), and how the module looked then, to tell whether anything reloaded or patched it
    since (``importlib.reload`` gives a new ``__spec__``; IPython's autoreload may patch functions
    and globals in place, keeping it)."""

    __slots__ = ("module", "spec", "stamp", "skeleton")

    def __init__(self, module, skeleton):
        self.module, self.spec, self.stamp = module, module.__dict__.get("__spec__"), _stamp(module)
        self.skeleton = skeleton

    def current(self, module):
        """Whether ``module`` is untouched since: the same object, spec, and namespace values."""
        return (module is self.module and module.__dict__.get("__spec__") is self.spec
                and _stamp(module) == self.stamp)


def running_code(module, source, file_signature, before=None):
    """Whether ``module`` runs the code of ``source`` (its file's bytes now, with
    ``file_signature``): (:class:`RunningCode`, None) when it does, (RunningCode, why not in a few
    words) when it does not. ``before``: what the previous call found.

    Functions and methods are compared with those in memory. Module-level code (and class bodies),
    which ran once, is compared with what ran: known from ``before`` while nothing touched the
    module since; from the ``.pyc`` the loader wrote at import, when the file changed since and
    nothing is known; and taken from the file when the module was reloaded or patched since."""
    untouched = before is not None and before.current(module)
    ran = before.skeleton if untouched else None
    filename = module.__dict__.get("__file__")
    code = _compile(source, filename)
    if isinstance(code, str):
        return RunningCode(module, ran), code
    on_disk = {}
    for nested in _nested(code):
        on_disk.setdefault(_key(nested), []).append(_comparable(nested))
    for function_code in _functions(module, filename):
        if _comparable(function_code) not in on_disk.get(_key(function_code), ()):
            return RunningCode(module, ran), f"{_key(function_code)} differs"
    skeleton = _skeleton(_comparable(code))
    if ran is None and (before is None or untouched):
        ran = _cached_skeleton(module, file_signature)
    if ran is not None and ran != skeleton:
        return RunningCode(module, ran), "module-level code differs"
    return RunningCode(module, skeleton), None


def _cached_skeleton(module, file_signature):
    """The module-level code of the ``.pyc`` the loader wrote at import, if the file changed since."""
    found = _pyc_header(module, whole=True)
    if found is None or _pyc_is_of(found[0], file_signature):
        return None
    try:
        cached = marshal.loads(memoryview(found[1])[16:])
    except (EOFError, ValueError, TypeError):
        return None
    return _skeleton(_comparable(cached)) if isinstance(cached, _CODE) else None


def _stamp(module):
    """What changes when anything rebinds a name of ``module``, as a reload or a patch does."""
    return tuple(map(id, module.__dict__.values()))


def _compile(source, filename):
    """The module's code as the standard loader compiles it, or why it does not compile."""
    try:
        return compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return f"does not compile: {exc.msg} (line {exc.lineno})"
    except ValueError as exc:  # null bytes
        return f"does not compile: {exc}"


def _comparable(code):
    """``code`` without its line numbers, nested code objects included: equal for two versions of
    a file that differ only by comments, blank lines or lines moved."""
    consts = code.co_consts
    if "__firstlineno__" in code.co_names:  # a class body stores its first line (Python 3.13+)
        consts = tuple(None if type(c) is int and c == code.co_firstlineno else c for c in consts)
    consts = tuple(_comparable(c) if isinstance(c, _CODE) else c for c in consts)
    lines = {"co_linetable": b""} if hasattr(code, "co_linetable") else {"co_lnotab": b""}
    return code.replace(co_firstlineno=1, co_consts=consts, **lines)


def _nested(code):
    """Every code object inside ``code``, at any depth."""
    for const in code.co_consts:
        if isinstance(const, _CODE):
            yield const
            yield from _nested(const)


def _skeleton(code):
    """``code`` (already :func:`_comparable`) with the bodies of the functions it defines replaced by
    their names: what runs once, at import (module level, class bodies, comprehensions there)."""
    consts = []
    for const in code.co_consts:
        if isinstance(const, _CODE):
            function = const.co_flags & _NEWLOCALS and const.co_name not in _INLINE
            const = ("<function>", _key(const)) if function else _skeleton(const)
        consts.append(const)
    return code.replace(co_consts=tuple(consts))


_NEWLOCALS = 0x0002  # inspect.CO_NEWLOCALS: a function's body (not a class body, not a module)
_INLINE = frozenset({"<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>"})  # run where defined


def _key(code):
    """What matches a function's code in memory with its version on disk: its qualified name
    (Python 3.11+), else its name (``__qualname__`` may be a decorator's copy)."""
    return getattr(code, "co_qualname", code.co_name)


def _functions(module, filename):
    """The code of every function and method ``module`` holds that was compiled from ``filename``:
    found in its namespace, in its classes (nested ones too), through decorators that keep
    ``__wrapped__``, static and class methods, properties and cached properties."""
    name = module.__name__
    seen = set()
    stack = list(module.__dict__.values())
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, types.FunctionType):
            if obj.__code__.co_filename == filename:
                yield obj.__code__
            wrapped = obj.__dict__.get("__wrapped__")
            if wrapped is not None:
                stack.append(wrapped)
        elif isinstance(obj, type):
            if obj.__dict__.get("__module__") == name:
                stack.extend(obj.__dict__.values())
        elif isinstance(obj, (staticmethod, classmethod)):
            stack.append(obj.__func__)
        elif isinstance(obj, property):
            stack.extend(f for f in (obj.fget, obj.fset, obj.fdel) if f is not None)
        elif isinstance(obj, functools.cached_property):
            stack.append(obj.func)
