"""Instances of classes that pickle the default way are reduced without asking them (issue 13): the
bytes must be pickle's own, whatever the class does to change its reduction (slots, ``__getstate__``
on the class or on one instance, ``__getnewargs__``, a reducer in copyreg, a custom ``__reduce__``,
a builtin base), with every protocol, through the fast path for data and through Pickler.
"""
import collections
import copyreg
import dataclasses
import io
import pickle

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


def _own_getstate():
    obj = Plain(a=1)
    obj.__getstate__ = lambda: {"overridden": True}  # on the instance only
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
    assert outcome(cloudpickle_ipy.dumps, data, protocol) == outcome(pickle.dumps, data, protocol)


class _WithoutInstances(cloudpickle_ipy.Pickler):
    """Leaves every instance to the C pickler's own reduction."""

    def _pickles_plainly(self, kind):
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
