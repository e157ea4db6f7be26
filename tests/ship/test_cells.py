"""Which names ``%%cloudpickle_ship`` pushes: the names a cell reads before it assigns them."""
import sys

import pytest

from cloudpickle_ipy.ship.cells import names_read


@pytest.mark.parametrize("cell, expected", [
    # plain reads, in the order of first read; builtins are filtered later against the namespace
    ("x + y\nx", ["x", "y"]),
    ("print(data)", ["print", "data"]),
    # assigned before being read: the cell's own
    ("y = 1\ny + 1", []),
    ("a, (b, *c) = t\na + b", ["t"]),
    ("y = y + 1", ["y"]),
    ("x.attr = 1", ["x"]),
    ("x[i] = v", ["v", "x", "i"]),
    ("obj.method().field", ["obj"]),
    # augmented assignment and del read first
    ("n += 1\nn", ["n"]),
    ("del gone", ["gone"]),
    ("tmp = 1\ndel tmp\ntmp", ["tmp"]),
    # imports assign
    ("import numpy as np\nnp.ones(3)", []),
    ("import os.path\nos.getcwd()", []),
    ("from math import pi, tau as t2\npi + t2 + e", ["e"]),
    # annotations are evaluated at top level; a bare annotation does not assign
    ("z: Number = 1\nz", ["Number"]),
    ("w: int\nw", ["int", "w"]),
    # functions: decorators and defaults now, free names of the body too; params are local
    ("def f(a, b=default):\n    return a + b + helper(c)\nf(1)",
     ["default", "c", "helper"]),
    ("@deco\ndef f():\n    pass", ["deco"]),
    ("def f():\n    local = 1\n    return local", []),
    ("helper = 1\ndef f():\n    return helper\n", []),
    ("def f():\n    return later\nlater = 2\nf()", ["later"]),
    ("def fact(n):\n    return n * fact(n - 1)", []),
    ("fib = lambda n: fib(n - 1)", []),
    ("def f():\n    global g\n    g = 1\n", []),
    ("def f():\n    global g\n    g += 1\n", ["g"]),
    ("def outer():\n    v = 1\n    def inner():\n        return v + w\n    return inner",
     ["w"]),
    ("def f():\n    import json\n    return json.dumps(k)", ["k"]),
    ("def f():\n    try:\n        pass\n    except E as err:\n        return err", ["E"]),
    ("async def f():\n    async with lock as l:\n        return l", ["lock"]),
    # lambdas
    ("square = lambda x: x * x * k\nsquare(2)", ["k"]),
    ("f = lambda x, s=scale: x * s", ["scale"]),
    # comprehensions: the first iterable here, the rest inside their own scope
    ("[i * q for i in r if i > lo]", ["r", "lo", "q"]),
    ("{k: v for k, v in items.items()}", ["items"]),
    ("[j for i in rows for j in i]", ["rows"]),
    ("i = 5\n[i for i in range(i)]", ["range"]),
    # classes: the body runs now; methods do not see the class's names
    ("class A(Base):\n    k = 1\n    j = k + m\n    def f(self):\n        return k\n",
     ["Base", "m", "k"]),
    ("class A:\n    def f(self):\n        return A\nA().f()", []),
    # conditional assignments do not count as assignments for what follows
    ("if cond:\n    c = 1\nc", ["cond", "c"]),
    ("if cond:\n    c = 1\nelse:\n    c = 2\nc", ["cond"]),
    ("for item in seq:\n    acc = item\nacc, item", ["seq", "acc", "item"]),
    ("while go:\n    w = 1\nw", ["go", "w"]),
    ("try:\n    t = f()\nexcept Exception as exc:\n    exc\nt", ["f", "Exception", "t"]),
    ("with open(p) as fh:\n    fh.read()\nfh", ["open", "p"]),
    ("(found := look())\nfound", ["look"]),
    # IPython syntax is transformed first
    ("%time x = 1\n!echo hi\nvalue", ["get_ipython", "value"]),
    ("x = 1\nx?", ["get_ipython"]),
])
def test_names_read(cell, expected):
    assert names_read(cell) == expected


@pytest.mark.skipif(sys.version_info < (3, 10), reason="match needs Python 3.10")
def test_match_captures_are_assigned_in_their_case():
    cell = "match cmd:\n    case Point(x=px) if px > limit:\n        px\n    case other:\n" \
           "        other\nother"
    assert names_read(cell) == ["cmd", "Point", "limit", "other"]


def test_syntax_error_raises():
    with pytest.raises(SyntaxError):
        names_read("def (")
