"""Class bodies defined inside a by-value function can read the module's globals after loading.

A class body's names are looked up at run time in the function's globals, so the shipped globals
must include the names used by nested code (class bodies and their methods), not just the
function's own.
"""
from cloudpickle_ipy.core import dumps
from tests.fresh import define, load_fresh

SOURCE = """
    CONST = 41
    OTHER = "other"
    FACTOR = 5

    def helper(n):
        return n * FACTOR

    def make():
        class Inner:
            x = CONST
            y = helper(2)

            def get(self):
                return OTHER

        return Inner
"""


def test_class_body_reads_module_constant():
    ns = define(SOURCE)
    assert load_fresh(dumps(ns.make), "obj().x") == ns.CONST


def test_class_body_calls_module_function_using_its_own_globals():
    ns = define(SOURCE)
    assert load_fresh(dumps(ns.make), "obj().y") == ns.helper(2) == 10


def test_method_of_class_body_reads_module_global():
    ns = define(SOURCE)
    assert load_fresh(dumps(ns.make), "obj()().get()") == "other"


def test_comprehension_in_class_body_in_function_reads_global():
    ns = define("""
        BASE = 100

        def make():
            class Table:
                rows = [BASE + i for i in range(3)]
            return Table.rows
    """)
    assert load_fresh(dumps(ns.make), "obj()") == [100, 101, 102]
