"""PEP 695 ``type`` aliases defined in ``__main__`` (issue 12, item 13; Python 3.12+): recursive and
mutually recursive aliases, generic ones with bounds, constraints and (3.13+) defaults, load in a
fresh process referring to themselves, with type parameters that are their own.
"""
import sys

import pytest

import cloudpickle_ipy.core as cloudpickle
from tests.fresh import define, load_fresh

pytestmark = pytest.mark.skipif(sys.version_info < (3, 12), reason="type statements are 3.12+")


def test_recursive_and_mutually_recursive_aliases():
    ns = define("""
        type Tree = int | list[Tree]
        type Json = dict[str, Json] | list[Json] | str | int | float | bool | None
        type Expr = tuple[str, Args] | int
        type Args = list[Expr]

        def depth(tree: Tree) -> int:
            return 0 if isinstance(tree, int) else 1 + max(map(depth, tree), default=0)
    """)
    payload = cloudpickle.dumps([ns.Tree, ns.Json, ns.Expr, ns.depth])
    check = """
tree, json, expr, depth = obj
args = expr.__value__.__args__[0].__args__[1]
result = [repr(tree.__value__), tree.__value__.__args__[1].__args__[0] is tree,
          json.__value__.__args__[0].__args__[1] is json, args.__value__.__args__[0] is expr,
          depth.__annotations__["tree"] is tree, depth([1, [2, [3]]]), tree.__module__,
          tree.__name__, type(tree).__name__]
"""
    assert load_fresh(payload, check) == [
        "int | list[Tree]", True, True, True, True, 3, "__main__", "Tree", "TypeAliasType"]


def test_generic_recursive_alias_keeps_its_own_type_parameters():
    ns = define("""
        type Nested[T] = T | list[Nested[T]]
        type Keyed[K: str, V: (int, float), *Ts, **P] = dict[K, Keyed[K, V, *Ts, P]] | V
    """)
    payload = cloudpickle.dumps([ns.Nested, ns.Keyed])
    check = """
nested, keyed = obj
t, = nested.__type_params__
k, v, ts, p = keyed.__type_params__
result = [nested.__value__.__args__[0] is t, nested.__value__.__args__[1].__args__[0].__args__[0] is t,
          repr(nested.__value__), t.__name__, k.__bound__ is str, v.__constraints__,
          type(ts).__name__, type(p).__name__, keyed.__value__.__args__[1] is v,
          t.__infer_variance__, repr(nested[int])]
"""
    assert load_fresh(payload, check) == [
        True, True, repr(ns.Nested.__value__), "T", True, (int, float), "TypeVarTuple",
        "ParamSpec", True, True, "Nested[int]"]


@pytest.mark.skipif(sys.version_info < (3, 13), reason="type parameter defaults are 3.13+")
def test_type_parameter_defaults():
    ns = define("""
        type Table[R = int, **P = [str]] = list[Table[R, P]] | R
    """)
    check = """
r, p = obj.__type_params__
result = [r.__default__ is int, p.__default__, r.has_default(), repr(obj.__value__)]
"""
    assert load_fresh(cloudpickle.dumps(ns.Table), check) == [
        True, [str], True, repr(ns.Table.__value__)]


def test_alias_made_with_type_alias_type_keeps_its_shared_type_variable():
    ns = define("""
        from typing import TypeAliasType, TypeVar

        U = TypeVar("U")
        Listing = TypeAliasType("Listing", list[U], type_params=(U,))
    """)
    payload = cloudpickle.dumps([ns.Listing, ns.U])
    check = "listing, u = obj; result = [listing.__type_params__[0] is u, repr(listing.__value__)]"
    assert load_fresh(payload, check) == [True, "list[~U]"]
