"""Instances of classes that pickle the default way are reduced without asking them (issue 13): the
bytes must be pickle's own, whatever the class does to change its reduction (slots, ``__getstate__``
on the class or on one instance, ``__getnewargs__``, a reducer in copyreg, a custom ``__reduce__``,
a builtin base), with every protocol, through the fast path for data and through Pickler.
"""
import collections
import copyreg
import dataclasses
import datetime
import decimal
import fractions
import io
import pickle
import sys

import pytest

import cloudpickle_ipy
from cloudpickle_ipy.core import instances

PROTOCOLS = list(range(0, pickle.HIGHEST_PROTOCOL + 1))


class Plain:
    def __init__(self, **attributes):
        vars(self).update(attributes)


class PlainChild(Plain):
    __slots__ = ()


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self):
        self.a, self.b = 1, [2]


class SlottedWithDict(Plain):
    __slots__ = ("extra",)


class WithGetstate(Plain):
    def __getstate__(self):
        return {"only": 1}

    def __setstate__(self, state):
        vars(self).update(state)


class SlottedWithWeakref:
    __slots__ = ("a", "__weakref__")


class SlottedWithGetstate:
    __slots__ = ("a",)

    def __getstate__(self):
        return {"a": self.a * 2}

    def __setstate__(self, state):
        self.a = state["a"]


class SlottedWithReduce:
    __slots__ = ("a",)

    def __init__(self, a):
        self.a = a

    def __reduce__(self):
        return SlottedWithReduce, (self.a,)


class ClassmethodReduce:
    __slots__ = ()

    @classmethod
    def __reduce__(cls):
        return cls, ()


class PropertyChild(property):
    """C storage beneath: pickle refuses it with protocols 2 and up (its state is incomplete)."""


class PropertyChildWithGetstate(property):
    def __getstate__(self):
        return {"doc": "kept"}


class IntChild(int):
    __slots__ = ()


class NewargsNotATuple(tuple):
    __slots__ = ()

    def __getnewargs__(self):
        return [list(self)]  # pickle refuses it: it must be a tuple


class WithGetnewargs(Plain):
    def __new__(cls, *args):
        return super().__new__(cls)

    def __getnewargs__(self):
        return (1, 2)


class WithReduce(Plain):
    def __reduce__(self):
        return Plain, ()


class InCopyreg(Plain):
    pass


def _reduce_in_copyreg(obj):
    return Plain, ()


copyreg.pickle(InCopyreg, _reduce_in_copyreg)


class ListChild(list):
    pass


class DictChild(dict):
    pass


@dataclasses.dataclass
class Record:
    id: int
    name: str


@dataclasses.dataclass(frozen=True)
class Frozen:
    x: int


Pair = collections.namedtuple("Pair", "left right")

if sys.version_info >= (3, 10):
    @dataclasses.dataclass(slots=True, frozen=True)
    class SlotsRecord:
        id: int
        name: str
else:
    SlotsRecord = None


def _own_getstate():
    obj = Plain(a=1)
    obj.__getstate__ = lambda: {"overridden": True}  # on the instance only
    return obj


def _slotted_with_weakref():
    obj = SlottedWithWeakref()
    obj.a = 1
    return obj


def _slotted_with_getstate():
    obj = SlottedWithGetstate()
    obj.a = 4
    return obj


def shapes():
    return {
        "plain": Plain(a=1, b="two", c=[3.0]),
        "empty": Plain(),
        "child": PlainChild(x=1),
        "slotted": Slotted(),
        "slotted_with_dict": SlottedWithDict(y=2),
        "getstate": WithGetstate(z=3),
        "getnewargs": WithGetnewargs(),
        "reduce": WithReduce(q=1),
        "copyreg": InCopyreg(r=1),
        "list_child": ListChild([1, 2]),
        "dict_child": DictChild(a=1),
        "dataclass": Record(1, "one"),
        "frozen": Frozen(5),
        "namedtuple": Pair(1, 2),
        "own_getstate": _own_getstate(),
        "slotted_unset": Slotted.__new__(Slotted),
        "slotted_with_weakref": _slotted_with_weakref(),
        "slotted_with_getstate": _slotted_with_getstate(),
        "slotted_with_reduce": SlottedWithReduce(3),
        "classmethod_reduce": ClassmethodReduce(),
        "property_child": PropertyChild(len),
        "property_child_with_getstate": PropertyChildWithGetstate(len),
        "decimal": decimal.Decimal("1.25"),
        "fraction": fractions.Fraction(3, 7),
        "date": datetime.date(2024, 2, 29),
        "timedelta": datetime.timedelta(days=1, microseconds=5),
        "datetime_fold": datetime.datetime(2024, 11, 3, 1, 30, fold=1),
        "aware_time": datetime.time(1, 2, tzinfo=datetime.timezone.utc),
        "complex": complex(1, 2),
        "int_child": IntChild(7),
        "newargs_not_a_tuple": NewargsNotATuple((1, 2)),
        **({"slots_dataclass": SlotsRecord(1, "one")} if SlotsRecord else {}),
    }


def outcome(dumps, *args):
    """What ``dumps(*args)`` gives: the bytes, or the type of the error it raised (pickle refuses
    slotted classes with protocols 0 and 1)."""
    try:
        return dumps(*args)
    except Exception as e:  # noqa: BLE001 -- the same refusal is expected of both
        return type(e)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("shape", sorted(shapes()))
def test_fast_path_writes_what_pickle_writes(shape, protocol):
    obj = shapes()[shape]
    data = [obj, obj, {"again": obj}]
    ours, theirs = outcome(cloudpickle_ipy.dumps, data, protocol), outcome(pickle.dumps, data, protocol)
    if protocol < 2 and shape.startswith("property_child"):
        # copyreg wraps the object in a new property; pickle refuses that property, Pickler
        # pickles it by value and meets the object again, until the recursion limit: both refuse.
        assert isinstance(ours, type) and isinstance(theirs, type)
    else:
        assert ours == theirs


class _WithoutInstances(cloudpickle_ipy.Pickler):
    """Leaves every instance to the C pickler's own reduction."""

    def _known_reduction(self, kind):
        return False


def _pickled(pickler_class, obj, protocol):
    buffer = io.BytesIO()
    pickler_class(buffer, protocol).dump(obj)
    return buffer.getvalue()


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("shape", sorted(shapes()))
def test_pickler_writes_what_the_c_pickler_writes(shape, protocol):
    obj = shapes()[shape]
    data = [obj, {"again": obj}, lambda: None]  # the lambda travels by value
    assert (outcome(_pickled, cloudpickle_ipy.Pickler, data, protocol)
            == outcome(_pickled, _WithoutInstances, data, protocol))


def test_which_classes_pickle_plainly():
    found = {shape for shape, obj in shapes().items() if instances.pickles_plainly(type(obj))}
    # own_getstate's class is plain: its instance is caught by the reducer itself.
    assert found == {"plain", "empty", "child", "dataclass", "frozen", "copyreg", "own_getstate"}


def test_a_pickler_subclass_dispatch_table_wins():
    class Table(cloudpickle_ipy.Pickler):
        dispatch_table = {Plain: lambda obj: (dict, ((("from_table", True),),))}

    loaded = pickle.loads(_pickled(Table, [Plain(a=1), lambda: 1], pickle.HIGHEST_PROTOCOL))
    assert loaded[0] == {"from_table": True}


def test_which_classes_decide_the_reduction_of_their_instances():
    find = instances.finder(None)
    plain = {"plain", "empty", "child", "dataclass", "frozen", "copyreg", "own_getstate"}
    reduced = {"slotted_with_reduce", "decimal", "fraction", "date", "timedelta"}
    with_state = {"getstate", "slotted_with_getstate"}
    from_arguments = {"namedtuple", "int_child", "complex", "newargs_not_a_tuple"}
    if sys.version_info >= (3, 11):  # object's __getstate__ gives the state of the others
        with_state |= {"slotted", "slotted_unset", "slotted_with_weakref", "slotted_with_dict"}
    if SlotsRecord and (sys.version_info >= (3, 11) or "__getstate__" in vars(SlotsRecord)):
        with_state.add("slots_dataclass")
    assert {shape for shape, obj in shapes().items() if find(type(obj), 5)} == (
        plain | reduced | with_state | from_arguments)
    # Protocols 0 and 1 reduce through copyreg, unless the class has its own __reduce__.
    assert {shape for shape, obj in shapes().items() if find(type(obj), 1)} == reduced
    assert find(decimal.Decimal, 5) is vars(decimal.Decimal)["__reduce__"]
    # What the C pickler saves itself is never reduced here (error paths walk it as it does).
    assert not any(find(kind, protocol) for kind in (tuple, list, dict, set, frozenset, str, bytes,
                                                     bytearray, int, float) for protocol in (1, 5))
