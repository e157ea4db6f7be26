"""The public wrapper classes: what ``wrap_non_picklable_objects`` returns for anything but a class.

``CloudpickledObjectWrapper(obj, keep_wrapper=False)`` stands in for ``obj`` under plain pickle;
``CallableObjectWrapper`` is its callable subclass. Loads happen in a fresh process.
"""
import pickle

import pytest

from cloudpickle_ipy.core import (
    CallableObjectWrapper,
    CloudpickledObjectWrapper,
    wrap_non_picklable_objects,
)
from tests.fresh import define, load_fresh

NS = define("""
    rate = 3

    def scale(x):
        return x * rate

    class Basket:
        def __init__(self, items):
            self.items = items

        def total(self):
            return sum(self.items) * rate

    class Doubler:
        def __call__(self, x):
            return 2 * x
""")

# In the fresh process: what came out of the payload, and whether it is one of our wrappers.
DESCRIBE = """
from cloudpickle_ipy.core import CallableObjectWrapper, CloudpickledObjectWrapper
result = [type(obj).__name__, isinstance(obj, CloudpickledObjectWrapper),
          isinstance(obj, CallableObjectWrapper), callable(obj)]
"""


@pytest.mark.parametrize("make", [lambda: NS.scale, lambda: (lambda x: x + 1), lambda: NS.Doubler()],
                         ids=["function", "lambda", "callable instance"])
def test_callables_are_wrapped_in_a_callable_object_wrapper(make):
    obj = make()
    wrapped = wrap_non_picklable_objects(obj)
    assert isinstance(wrapped, CallableObjectWrapper)
    assert isinstance(wrapped, CloudpickledObjectWrapper)
    assert callable(wrapped) and wrapped(5) == obj(5)
    assert wrapped.__wrapped__ is obj


def test_an_instance_that_is_not_callable_is_wrapped_and_stays_not_callable():
    wrapped = wrap_non_picklable_objects(NS.Basket([1, 2]))
    assert isinstance(wrapped, CloudpickledObjectWrapper)
    assert not isinstance(wrapped, CallableObjectWrapper)
    assert not callable(wrapped)
    with pytest.raises(TypeError, match="not callable"):
        wrapped()


def test_a_wrapped_class_is_a_class_not_a_wrapper_instance():
    wrapped = wrap_non_picklable_objects(NS.Basket)
    assert isinstance(wrapped, type) and issubclass(wrapped, NS.Basket)
    assert not isinstance(wrapped, CloudpickledObjectWrapper)
    assert isinstance(wrapped([1]), NS.Basket)


def test_attribute_access_passes_through_to_the_wrapped_object():
    basket = NS.Basket([1, 2])
    wrapped = wrap_non_picklable_objects(basket)
    assert wrapped.items == [1, 2] and wrapped.total() == 9
    wrapped.items = [5]  # set on the wrapped object, so it travels with it
    assert basket.items == [5]
    wrapped.note = "fragile"
    assert basket.note == "fragile"
    del wrapped.note
    assert not hasattr(basket, "note")
    with pytest.raises(AttributeError, match="missing"):
        wrapped.missing
    assert load_fresh(pickle.dumps(wrapped), "[obj.items, obj.total()]") == [[5], 15]


def test_function_attributes_pass_through_and_travel():
    func = define("def area(r):\n    return 3 * r * r\n").area
    wrapped = wrap_non_picklable_objects(func)
    wrapped.unit = "cm2"
    assert func.unit == "cm2"
    assert wrapped.__name__ == "area"
    check = "[obj.__name__, obj.unit, obj(2)]"
    assert load_fresh(pickle.dumps(wrapped), check) == ["area", "cm2", 12]


@pytest.mark.parametrize("keep_wrapper, expected", [
    (True, ["CallableObjectWrapper", True, True, True]),
    (False, ["function", False, False, True]),
])
def test_keep_wrapper_decides_what_the_receiving_side_gets(keep_wrapper, expected):
    wrapped = wrap_non_picklable_objects(NS.scale, keep_wrapper=keep_wrapper)
    assert load_fresh(pickle.dumps(wrapped), DESCRIBE) == expected
    assert load_fresh(pickle.dumps(wrapped), "obj(4)") == 12


@pytest.mark.parametrize("keep_wrapper, expected", [
    (True, ["CloudpickledObjectWrapper", True, False, False]),
    (False, ["Basket", False, False, False]),
])
def test_keep_wrapper_for_an_instance(keep_wrapper, expected):
    wrapped = wrap_non_picklable_objects(NS.Basket([4]), keep_wrapper=keep_wrapper)
    assert load_fresh(pickle.dumps(wrapped), DESCRIBE) == expected


def test_the_classes_can_be_used_directly_and_do_not_keep_the_wrapper_by_default():
    plain = CloudpickledObjectWrapper(NS.Basket([2]))
    assert not callable(plain) and plain.total() == 6
    assert load_fresh(pickle.dumps(plain), DESCRIBE) == ["Basket", False, False, False]
    kept = CallableObjectWrapper(lambda x: x - 1, keep_wrapper=True)
    assert kept(1) == 0
    assert load_fresh(pickle.dumps(kept), DESCRIBE) == ["CallableObjectWrapper", True, True, True]
    assert load_fresh(pickle.dumps(kept), "obj(10)") == 9


def test_a_kept_wrapper_can_be_sent_on_again():
    wrapped = wrap_non_picklable_objects(lambda x: x * 7)
    check = "import pickle\nresult = pickle.loads(pickle.dumps(obj))(3)"
    assert load_fresh(pickle.dumps(wrapped), check) == 21


def test_wrapping_a_wrapper_rewraps_the_original():
    once = wrap_non_picklable_objects(NS.scale)
    twice = wrap_non_picklable_objects(once, keep_wrapper=False)
    assert twice.__wrapped__ is NS.scale
    assert load_fresh(pickle.dumps(twice), DESCRIBE) == ["function", False, False, True]


def test_an_instance_made_without_init_does_not_recurse():
    empty = CloudpickledObjectWrapper.__new__(CloudpickledObjectWrapper)
    with pytest.raises(AttributeError):
        empty.anything
    assert "CloudpickledObjectWrapper" in repr(wrap_non_picklable_objects(NS.Basket([])))


def test_a_subclass_of_a_wrapped_class_travels_in_one_payload():
    # Inside, the class goes by value as itself: not through the wrapper's reducer again and again.
    Wrapped = wrap_non_picklable_objects(NS.Basket)

    class Bigger(Wrapped):
        def total(self):
            return 10 * super().total()

    payload = pickle.dumps(Bigger)
    assert payload.count(b"\x8c\x08_rebuild\x94") == 1
    assert load_fresh(payload, "obj([1, 2]).total()") == 90
    instances = pickle.dumps(wrap_non_picklable_objects([Wrapped([2]), Bigger([1])], False))
    assert load_fresh(instances, "[b.total() for b in obj]") == [6, 30]
