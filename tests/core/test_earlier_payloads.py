"""Payloads written before issue 13 still load: they name ``_rebuild_code``, ``_rebuild_function``
(with every attribute in the state its ``_restore_function`` sets), ``_rebuild_globals``,
``_rebuild_cell`` and ``_restore_cell``, and import modules with ``importlib.import_module``.

``EarlierPickler`` writes functions, code objects, cells and modules as those payloads did.
"""
import importlib
import io
import operator
import pickle
import types

from cloudpickle_ipy.core import functions
from tests.fresh import define, load_fresh


class _Globals:
    def __init__(self, namespace):
        self.args = (namespace.get("__name__"), namespace.get("__package__"))

    def __reduce__(self):
        return functions._rebuild_globals, self.args


class _EmptyCell:
    def __reduce__(self):
        return functions._rebuild_cell, ()


class EarlierPickler(pickle.Pickler):
    """Functions of ``__main__``, code objects, cells and modules as payloads had them before."""

    def __init__(self, file):
        super().__init__(file, pickle.HIGHEST_PROTOCOL)
        self.bases, self.cells = {}, {}

    def reducer_override(self, obj):
        kind = type(obj)
        if kind is types.CodeType:
            fields = operator.attrgetter(*functions._CODE_FIELDS)(obj)
            return functions._rebuild_code, (functions.PYTHON_VERSION, fields)
        if kind is types.ModuleType:
            return importlib.import_module, (obj.__name__,)
        if kind is types.CellType:
            return (functions._rebuild_cell, (), obj.cell_contents, None, None,
                    functions._restore_cell)
        if kind is types.FunctionType and obj.__module__ == "__main__":
            return self._reduce_function(obj)
        return NotImplemented

    def _reduce_function(self, func):
        namespace = func.__globals__
        base = self.bases.setdefault(id(namespace), _Globals(namespace))
        closure = func.__closure__
        state = {"globals": {name: namespace[name] for name in func.__code__.co_names
                             if name in namespace}}
        if closure is not None:
            closure = tuple(self.cells.setdefault(id(cell), _EmptyCell()) for cell in closure)
            state["cells"] = tuple(cell.cell_contents for cell in func.__closure__)
        state["__defaults__"] = func.__defaults__
        state["__doc__"] = func.__doc__
        state["__qualname__"] = func.__qualname__
        return (functions._rebuild_function, (func.__code__, base, func.__name__, closure), state,
                None, None, functions._restore_function)


def earlier_payload(obj):
    buffer = io.BytesIO()
    EarlierPickler(buffer).dump(obj)
    return buffer.getvalue()


def test_a_closure_written_as_before_loads():
    ns = define("""
        import json

        def make(prefix):
            def render(value, indent=None):
                '''Renders a value.'''
                return prefix + json.dumps(value, indent=indent)
            return render

        render = make("=> ")
    """)
    payload = earlier_payload(ns.render)
    assert b"_rebuild_function" in payload and b"import_module" in payload
    check = "(obj([1, 2]), obj.__doc__, obj.__qualname__, obj.__defaults__)"
    assert load_fresh(payload, check) == ("=> [1, 2]", "Renders a value.",
                                          "make.<locals>.render", (None,))


def test_a_cell_written_as_before_loads():
    ns = define("""
        def make():
            items = []
            return lambda x: items.append(x) or len(items)
    """)
    f = ns.make()
    payload = earlier_payload([f, f.__closure__[0]])
    assert load_fresh(payload, "(obj[0](1), obj[0](2), obj[1].cell_contents)") == (1, 2, [1, 2])
