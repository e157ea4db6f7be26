"""Which names a cell needs from the local namespace: what ``%%cloudpickle_ship`` pushes first.

:func:`names_read` returns the names a cell reads before it binds them itself, in the order of
first read. The cell's statements are followed in order, as they run: a name bound on every path
before it is read (assignment, ``import``, ``def``, ``class``, ``with ... as``) is the cell's own;
a name bound only on some paths (inside an ``if``, a loop, a ``try``) still counts as read, since
pushing a name the cell then replaces costs little and missing one breaks the cell. Functions,
lambdas, classes and comprehensions defined in the cell read their free names (the globals their
bodies use): comprehensions and class bodies where they run, functions and lambdas right after
the statement defining them (the earliest they can be called, so a recursive function does not
read itself). ``x.y`` reads ``x``; ``x += 1`` and ``del x`` read ``x``.

IPython syntax (``%magic``, ``!cmd``) is transformed first; names inside a magic's arguments are
not seen (push them with ``--push``). Standard library only, IPython when installed.
"""
import ast

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_SCOPES = (*_FUNCTIONS, ast.ClassDef, *_COMPREHENSIONS)


def names_read(cell):
    """The names ``cell`` (IPython source) reads before binding them, in order of first read."""
    flow = _Flow()
    flow.block(ast.parse(_python_source(cell)).body)
    return list(flow.reads)


def _python_source(cell):
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return cell
    return TransformerManager().transform_cell(cell)


class _Flow:
    """The statements of a module or class body, in the order they run.

    ``bound`` holds the names bound on every path so far; ``reads`` (a dict used as an ordered
    set) the names read while not bound. A function's or lambda's free names are read when it is
    called, so after the statement defining it (a recursive function reads its own name):
    ``pending`` holds them until then. A class body's reads of names it has not bound go to the
    enclosing scope (``parent``), and so do its methods' free names (after the class exists),
    since methods do not see the class's own names.
    """

    def __init__(self, parent=None):
        self.parent = parent
        self.bound = set()
        self.reads = {}
        self.pending = []

    def read(self, name):
        if name in self.bound:
            return
        if self.parent is None:
            self.reads.setdefault(name, None)
        else:
            self.parent.read(name)

    def read_free(self, name):
        """A free name of a comprehension run here: a class's names do not satisfy it."""
        (self.read if self.parent is None else self.parent.read)(name)

    def flush(self):
        """The statement is done: read the free names of the functions it defined."""
        names, self.pending = self.pending, []
        if self.parent is None:
            for name in names:
                self.read(name)
        else:
            self.parent.pending.extend(names)

    # -- statements ---------------------------------------------------------------------------

    def block(self, statements):
        for statement in statements:
            self.statement(statement)
            self.flush()

    def branch(self, statements, bound=None):
        """Run ``statements`` from ``bound`` (default: now); return what they leave bound."""
        saved = self.bound
        self.bound = set(saved if bound is None else bound)
        try:
            self.block(statements)
            return self.bound
        finally:
            self.bound = saved

    def statement(self, node):
        method = getattr(self, "_" + type(node).__name__, None)
        if method is not None:
            method(node)
        else:  # expression statements, return, raise, assert, pass, global...
            for child in ast.iter_child_nodes(node):
                self.expr(child)

    def _Assign(self, node):
        self.expr(node.value)
        for target in node.targets:
            self.target(target)

    def _AugAssign(self, node):
        if isinstance(node.target, ast.Name):
            self.read(node.target.id)
        self.expr(node.value)
        self.target(node.target)

    def _AnnAssign(self, node):
        self.expr(node.annotation)
        if node.value is not None:
            self.expr(node.value)
            self.target(node.target)
        elif not isinstance(node.target, ast.Name):
            self.expr(node.target)

    def _Delete(self, node):
        for target in node.targets:
            if isinstance(target, ast.Name):
                self.read(target.id)
                self.bound.discard(target.id)
            else:
                self.expr(target)

    def _Import(self, node):
        for alias in node.names:
            self.bound.add(alias.asname or alias.name.partition(".")[0])

    def _ImportFrom(self, node):
        for alias in node.names:
            if alias.name != "*":
                self.bound.add(alias.asname or alias.name)

    def _FunctionDef(self, node):
        self.expr(node)
        self.bound.add(node.name)

    _AsyncFunctionDef = _FunctionDef

    def _ClassDef(self, node):
        for child in [*node.decorator_list, *node.bases, *node.keywords]:
            self.expr(child)
        body = _Flow(parent=self)
        body.block(node.body)
        self.bound.add(node.name)

    def _If(self, node):
        self.expr(node.test)
        self.bound = self.branch(node.body) & self.branch(node.orelse)

    def _For(self, node):
        self.expr(node.iter)
        self.branch([ast.Assign(targets=[node.target], value=ast.Constant(None)), *node.body])
        self.branch(node.orelse)

    _AsyncFor = _For

    def _While(self, node):
        self.expr(node.test)
        self.branch(node.body)
        self.branch(node.orelse)

    def _Try(self, node):
        after_body = self.branch(node.body)
        for handler in node.handlers:
            if handler.type is not None:
                self.expr(handler.type)
            self.branch(handler.body, self.bound | ({handler.name} if handler.name else set()))
        self.branch(node.orelse, after_body)
        self.block(node.finalbody)

    _TryStar = _Try

    def _With(self, node):
        for item in node.items:
            self.expr(item.context_expr)
            if item.optional_vars is not None:
                self.target(item.optional_vars)
        self.block(node.body)

    _AsyncWith = _With

    def _Match(self, node):
        self.expr(node.subject)
        for case in node.cases:
            self.expr(case.pattern)  # value patterns (Color.RED) and class patterns read names
            guard = [] if case.guard is None else [ast.Expr(case.guard)]
            self.branch(guard + case.body, self.bound | _pattern_names(case.pattern))

    # -- expressions and targets --------------------------------------------------------------

    def target(self, node):
        """Bind an assignment target; ``x.y = ...`` and ``x[i] = ...`` read ``x`` (and ``i``)."""
        if isinstance(node, ast.Name):
            self.bound.add(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                self.target(element)
        elif isinstance(node, ast.Starred):
            self.target(node.value)
        else:
            self.expr(node)

    def expr(self, node):
        """Read the names ``node`` reads now, and the free names of the scopes it defines."""
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                self.read(node.id)
            return
        if isinstance(node, ast.NamedExpr):
            self.expr(node.value)
            self.bound.add(node.target.id)
            return
        if isinstance(node, _SCOPES):
            for child in _evaluated_outside(node):
                self.expr(child)
            if isinstance(node, _FUNCTIONS):
                self.pending.extend(sorted(_free_names(node)))
            else:
                for name in sorted(_free_names(node)):
                    self.read_free(name)
            return
        for child in ast.iter_child_nodes(node):
            self.expr(child)


def _evaluated_outside(node):
    """The parts of a scope-defining node evaluated where it is defined: decorators, defaults,
    annotations, base classes, the first iterable of a comprehension."""
    if isinstance(node, _FUNCTIONS):
        args = node.args
        out = [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
        if not isinstance(node, ast.Lambda):
            every = [*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs, args.kwarg]
            out += [*node.decorator_list, node.returns,
                    *(a.annotation for a in every if a is not None)]
        return [n for n in out if n is not None]
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *node.keywords]
    return [node.generators[0].iter]  # a comprehension


def _free_names(node):
    """The names a function, lambda, class body or comprehension reads from outside itself."""
    local, loads, declared_global = set(), set(), set()
    if isinstance(node, _FUNCTIONS):
        args = node.args
        local.update(a.arg for a in [*args.posonlyargs, *args.args, args.vararg,
                                     *args.kwonlyargs, args.kwarg] if a is not None)
        body = node.body if isinstance(node.body, list) else [node.body]
    elif isinstance(node, ast.ClassDef):
        body = node.body
    else:  # a comprehension: its first iterable is evaluated outside
        first, *rest = node.generators
        body = [first.target, *first.ifs, *rest,
                *([node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt])]
    inner = set()  # free names of the scopes nested in this one
    stack = list(body)
    while stack:
        child = stack.pop()
        if isinstance(child, ast.Name):
            (loads if isinstance(child.ctx, ast.Load) else local).add(child.id)
        elif isinstance(child, ast.AugAssign) and isinstance(child.target, ast.Name):
            loads.add(child.target.id)  # x += 1 reads x
        elif isinstance(child, ast.Global):
            declared_global.update(child.names)
        elif isinstance(child, ast.Nonlocal):
            inner.update(child.names)
        elif isinstance(child, ast.alias):
            if child.name != "*":
                local.add(child.asname or child.name.partition(".")[0])
        elif isinstance(child, ast.ExceptHandler) and child.name:
            local.add(child.name)
        elif isinstance(child, (ast.MatchAs, ast.MatchStar)) and child.name:
            local.add(child.name)
        elif isinstance(child, ast.MatchMapping) and child.rest:
            local.add(child.rest)
        if isinstance(child, _SCOPES) and child is not node:
            if not isinstance(child, (ast.Lambda, *_COMPREHENSIONS)):
                local.add(child.name)
            stack.extend(_evaluated_outside(child))
            inner.update(_free_names(child))
            continue
        stack.extend(ast.iter_child_nodes(child))
    if isinstance(node, ast.ClassDef):  # methods do not see the class's names, the body does
        return (loads - local) | inner
    return ((loads | inner) - local) | (declared_global & (loads | inner))



def _pattern_names(pattern):
    return {n.name for n in ast.walk(pattern) if isinstance(n, (ast.MatchAs, ast.MatchStar))
            and n.name} | {n.rest for n in ast.walk(pattern)
                           if isinstance(n, ast.MatchMapping) and n.rest}
