"""Dynamic classes (defined in ``__main__``) and their instances travel by value.

Methods, zero-argument ``super()``, ``__slots__``, properties, class- and staticmethods, bound
methods, class attributes that refer back to the class, metaclasses, ``__init_subclass__``,
descriptors with ``__set_name__``, docstrings, annotations and names all work after a load in a
fresh interpreter. A class keeps its identity: loaded from two payloads in one process it is one
class, and sent back to the process that defined it, it is the original class. ``abc`` classes keep
their abstract methods and registered virtual subclasses, without shipping the abc caches; the
unnamed builtin types (``type(None)``...) load as themselves.
"""
import pickle

import pytest

from cloudpickle_ipy.core import dumps, loads
from tests.fresh import define, load_fresh

PROTOCOLS = list(range(2, pickle.HIGHEST_PROTOCOL + 1))

# Check code that pickles the loaded object again in the fresh process and sends the bytes back.
SEND_BACK = "import cloudpickle_ipy.core as c; result = c.dumps(obj)"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_class_with_methods_and_instance_state(protocol):
    ns = define("""
        class Account:
            rate = 2

            def __init__(self, owner, balance=0):
                self.owner = owner
                self.balance = balance

            def deposit(self, amount):
                self.balance += amount * self.rate
                return self.balance
    """)
    payload = dumps([ns.Account, ns.Account("ann", 5)], protocol=protocol)
    check = """
cls, acct = obj
result = (cls("bob").deposit(3), acct.owner, acct.deposit(1), type(acct) is cls,
          cls.__module__, cls.__name__)
"""
    assert load_fresh(payload, check) == (6, "ann", 7, True, "__main__", "Account")


def test_zero_argument_super_in_subclass_of_dynamic_class():
    ns = define("""
        class Base:
            def __init__(self, x):
                self.x = x

            def greet(self):
                return "base"

        class Child(Base):
            def __init__(self, x, y):
                super().__init__(x)
                self.y = y

            def greet(self):
                return "child+" + super().greet()
    """)
    payload = dumps(ns.Child)
    check = "c = obj(1, 2); result = (c.greet(), c.x, c.y, obj.__base__.__name__)"
    assert load_fresh(payload, check) == ("child+base", 1, 2, "Base")


def test_slots_class_and_instance():
    ns = define("""
        class Point:
            __slots__ = ("x", "y")

            def __init__(self, x, y):
                self.x, self.y = x, y

            def total(self):
                return self.x + self.y
    """)
    payload = dumps([ns.Point, ns.Point(3, 4)])
    check = """
cls, p = obj
try:
    p.z = 1
except AttributeError:
    extra = "refused"
else:
    extra = "accepted"
result = (p.x, p.y, p.total(), cls(1, 1).total(), hasattr(p, "__dict__"), cls.__slots__, extra)
"""
    assert load_fresh(payload, check) == (3, 4, 7, 2, False, ("x", "y"), "refused")


def test_slots_with_dict_and_weakref():
    ns = define("""
        class Node:
            __slots__ = ("value", "__dict__", "__weakref__")

            def __init__(self, value):
                self.value = value
    """)
    node = ns.Node(1)
    node.label = "extra"
    payload = dumps(node)
    check = """
import weakref
ref = weakref.ref(obj)
result = (obj.value, obj.label, ref() is obj, vars(obj), type(obj).__slots__)
"""
    assert load_fresh(payload, check) == (
        1, "extra", True, {"label": "extra"}, ("value", "__dict__", "__weakref__"))


def test_property_getter_and_setter():
    ns = define("""
        class Temperature:
            def __init__(self, celsius):
                self._c = celsius

            @property
            def fahrenheit(self):
                "Degrees Fahrenheit."
                return self._c * 9 / 5 + 32

            @fahrenheit.setter
            def fahrenheit(self, value):
                self._c = (value - 32) * 5 / 9
    """)
    payload = dumps(ns.Temperature(100))
    check = """
before = obj.fahrenheit
obj.fahrenheit = 32
result = (before, obj._c, type(obj).fahrenheit.__doc__)
"""
    assert load_fresh(payload, check) == (212.0, 0.0, "Degrees Fahrenheit.")


def test_classmethod_and_staticmethod():
    ns = define("""
        class Vector:
            def __init__(self, *coords):
                self.coords = coords

            @classmethod
            def zeros(cls, n):
                return cls(*[0] * n)

            @staticmethod
            def dot(a, b):
                return sum(x * y for x, y in zip(a.coords, b.coords))
    """)
    payload = dumps(ns.Vector)
    check = "z = obj.zeros(3); result = (type(z) is obj, z.coords, obj.dot(obj(1, 2), obj(3, 4)))"
    assert load_fresh(payload, check) == (True, (0, 0, 0), 11)


def test_bound_method_pickled_alone():
    ns = define("""
        class Counter:
            def __init__(self, start):
                self.n = start

            def bump(self, k=1):
                self.n += k
                return self.n
    """)
    payload = dumps(ns.Counter(10).bump)
    check = "result = (obj(), obj(5), obj.__self__.n, type(obj.__self__).__name__)"
    assert load_fresh(payload, check) == (11, 16, 16, "Counter")


def test_classmethod_bound_to_class_pickled_alone():
    ns = define("""
        class Registry:
            kind = "reg"

            @classmethod
            def create(cls):
                return cls()
    """)
    payload = dumps(ns.Registry.create)
    check = "made = obj(); result = (type(made) is obj.__self__, obj.__self__.kind)"
    assert load_fresh(payload, check) == (True, "reg")


def test_class_attributes_referring_back_to_the_class():
    ns = define("""
        class Tree:
            def __init__(self, v):
                self.v = v

        Tree.self_ref = Tree
        Tree.instances = [Tree(1), Tree(2)]
    """)
    payload = dumps(ns.Tree)
    check = ("(obj.self_ref is obj, [type(t) is obj for t in obj.instances], "
             "[t.v for t in obj.instances])")
    assert load_fresh(payload, check) == (True, [True, True], [1, 2])


def test_dynamic_metaclass_with_method_and_call_override():
    ns = define("""
        class Meta(type):
            def describe(cls):
                return cls.__name__ + " via Meta"

            def __call__(cls, *args, **kwargs):
                instance = super().__call__(*args, **kwargs)
                instance.created_by = "Meta"
                return instance

        class Thing(metaclass=Meta):
            def __init__(self, v):
                self.v = v
    """)
    payload = dumps(ns.Thing)
    check = """
t = obj(3)
result = (type(obj).__name__, type(obj).__module__, obj.describe(), t.v, t.created_by)
"""
    assert load_fresh(payload, check) == ("Meta", "__main__", "Thing via Meta", 3, "Meta")


def test_init_subclass_hook_effect_survives_and_hook_still_works():
    ns = define("""
        class Plugin:
            registry = []

            def __init_subclass__(cls, name=None, **kwargs):
                super().__init_subclass__(**kwargs)
                cls.plugin_name = name or cls.__name__.lower()
                Plugin.registry.append(cls)

        class CsvReader(Plugin, name="csv"):
            pass
    """)
    payload = dumps(ns.CsvReader)
    check = """
base = obj.__base__
before = [c.__name__ for c in base.registry]
class Extra(base):
    pass
result = (obj.plugin_name, before, base.registry[0] is obj, Extra.plugin_name,
          [c.__name__ for c in base.registry])
"""
    assert load_fresh(payload, check) == (
        "csv", ["CsvReader"], True, "extra", ["CsvReader", "Extra"])


def test_docstring_annotations_module_and_qualname():
    ns = define("""
        class Outer:
            '''The outer class.'''
            size: int
            label: str = "x"

            class Inner:
                '''The inner class.'''
    """)
    payload = dumps([ns.Outer, ns.Outer.Inner])
    check = """
outer, inner = obj
result = (outer.__doc__, outer.__annotations__, outer.label, outer.__qualname__,
          inner.__doc__, inner.__qualname__, inner.__name__, inner.__module__,
          outer.Inner is inner)
"""
    assert load_fresh(payload, check) == (
        "The outer class.", {"size": int, "label": str}, "x", "Outer",
        "The inner class.", "Outer.Inner", "Inner", "__main__", True)


def test_descriptor_set_name_is_called_after_load():
    ns = define("""
        class Field:
            def __init__(self, default):
                self.default = default

            def __set_name__(self, owner, name):
                self.name = name

            def __get__(self, instance, owner):
                if instance is None:
                    return self
                return instance.__dict__.get(self.name, self.default)

            def __set__(self, instance, value):
                instance.__dict__[self.name] = value

            def __reduce__(self):  # ships its configuration only, the name comes from the class
                return Field, (self.default,)

        class Model:
            title = Field("untitled")
            count = Field(0)
    """)
    assert ns.Model.title.name == "title"
    payload = dumps(ns.Model)
    check = """
m = obj()
m.count = 4
result = (obj.title.name, obj.count.name, m.title, m.count, vars(m))
"""
    assert load_fresh(payload, check) == ("title", "count", "untitled", 4, {"count": 4})


def test_class_loaded_from_two_payloads_is_one_class():
    ns = define("""
        class Shape:
            def __init__(self, sides):
                self.sides = sides

        class Square(Shape):
            pass
    """)
    payloads = [dumps(ns.Shape), dumps(ns.Square(4)), dumps(ns.Square)]
    check = """
shape, square_instance, square = [pickle.loads(p) for p in obj]
result = (isinstance(square_instance, shape), type(square_instance) is square,
          square.__base__ is shape, square_instance.sides)
"""
    assert load_fresh(pickle.dumps(payloads), check) == (True, True, True, 4)


def test_class_sent_back_to_defining_process_is_the_original():
    ns = define("""
        class Widget:
            def __init__(self, n):
                self.n = n

            def double(self):
                return 2 * self.n
    """)
    back = load_fresh(dumps(ns.Widget), SEND_BACK)
    assert loads(back) is ns.Widget


def test_instance_sent_back_to_defining_process_has_the_original_class():
    ns = define("""
        class Widget:
            def __init__(self, n):
                self.n = n
    """)
    back = load_fresh(dumps(ns.Widget(7)), "obj.n += 1; " + SEND_BACK)
    loaded = loads(back)
    assert type(loaded) is ns.Widget
    assert loaded.n == 8


def test_abstract_class_and_concrete_subclass():
    ns = define("""
        import abc

        class Shape(abc.ABC):
            @abc.abstractmethod
            def area(self):
                ...

            def describe(self):
                return "area " + str(self.area())

        class Square(Shape):
            def __init__(self, side):
                self.side = side

            def area(self):
                return self.side ** 2
    """)
    payload = dumps([ns.Shape, ns.Square])
    check = """
shape, square = obj
try:
    shape()
except TypeError:
    abstract = "TypeError"
else:
    abstract = "instantiated"
s = square(3)
result = (abstract, sorted(shape.__abstractmethods__), s.describe(), isinstance(s, shape),
          issubclass(square, shape), sorted(square.__abstractmethods__))
"""
    assert load_fresh(payload, check) == ("TypeError", ["area"], "area 9", True, True, [])


def test_registered_virtual_subclass_survives():
    ns = define("""
        import abc

        class Sized(abc.ABC):
            @abc.abstractmethod
            def size(self):
                ...

        class Box:
            def size(self):
                return 3

        class Unrelated:
            pass

        Sized.register(Box)
    """)
    payloads = [dumps(ns.Sized), dumps(ns.Box), dumps(ns.Unrelated)]
    check = """
base, virtual, unrelated = [pickle.loads(p) for p in obj]
result = (issubclass(virtual, base), isinstance(virtual(), base), issubclass(unrelated, base))
"""
    assert load_fresh(pickle.dumps(payloads), check) == (True, True, False)


def test_abc_caches_are_not_shipped():
    ns = define("""
        import abc

        class Base(abc.ABC):
            pass

        class Member:
            pass

        Base.register(Member)
        others = [type(f"Other{i}", (), {}) for i in range(100)]
        children = [type(f"Child{i}", (Base,), {}) for i in range(100)]
    """)
    before = dumps(ns.Base)
    for _ in range(5):
        for other, child in zip(ns.others, ns.children):
            isinstance(other(), ns.Base)
            isinstance(child(), ns.Base)
    assert isinstance(ns.Member(), ns.Base)
    after = dumps(ns.Base)
    assert len(after) == len(before)
    check = "(obj.__name__, sorted(c.__name__ for c in obj.__subclasses__()))"
    assert load_fresh(after, check) == ("Base", [])


def test_unnamed_builtin_types_load_as_themselves():
    payload = dumps([type(None), type(Ellipsis), type(NotImplemented)])
    check = ("[obj[0] is type(None), obj[1] is type(Ellipsis), "
             "obj[2] is type(NotImplemented), obj[0]() is None]")
    assert load_fresh(payload, check) == [True, True, True, True]
