"""pydantic v2 models and attrs classes defined in ``__main__`` (issue 12, item 15): the classes and
their instances load in a fresh process, and validation still runs there.

The classes are defined in a real ``__main__`` (a script run by a new interpreter), as in a notebook,
since both libraries look up their module's namespace. The core-test extra installs both libraries.
"""
from tests.fresh import load_fresh, run_script

PYDANTIC_MODELS = """
    import sys
    from typing import Generic, List, Optional, TypeVar

    from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator
    from pydantic import model_validator

    import cloudpickle_ipy.core as cloudpickle

    class Address(BaseModel):
        city: str
        zip_code: str = Field(pattern=r"^[0-9]{5}$")

    class User(BaseModel):
        model_config = ConfigDict(str_strip_whitespace=True)

        id: int = Field(gt=0)
        name: str
        tags: List[str] = []
        address: Optional[Address] = None

        @field_validator("name")
        @classmethod
        def capitalized(cls, value):
            if not value[:1].isupper():
                raise ValueError("name must be capitalized")
            return value

        @model_validator(mode="after")
        def not_banned(self):
            if "banned" in self.tags:
                raise ValueError("banned user")
            return self

        @computed_field
        @property
        def label(self) -> str:
            return f"{self.id}:{self.name}"

    T = TypeVar("T")

    class Page(BaseModel, Generic[T]):
        items: List[T]
        total: int

    user = User(id=1, name=" Ann ", address={"city": "Lyon", "zip_code": "69001"})
    page = Page[int](items=[1], total=1)
    sys.stdout.buffer.write(cloudpickle.dumps([User, Address, Page, user, page]))
"""

PYDANTIC_CHECK = """
from pydantic import ValidationError
User, Address, Page, user, page = obj
result = [user.name, user.label, user.address.city, user.model_dump(), User(id="5", name="Bob").id,
          type(user) is User, isinstance(user.address, Address), page.items,
          Page[str](items=["a"], total=1).items, User.model_json_schema()["required"],
          User.model_validate_json('{"id": 2, "name": "Cy"}').label]
for bad in [dict(id=0, name="Bob"), dict(id=1, name="bob"), dict(id=1, name="Bob", tags=["banned"]),
            dict(id=1, name="Bob", address={"city": "Y", "zip_code": "1"}), dict(id="x", name="Bo")]:
    try:
        User(**bad)
        result.append("accepted")
    except ValidationError as e:
        result.append(e.errors()[0]["type"])
"""


def test_pydantic_models_and_instances_validate_after_loading():
    payload = run_script(PYDANTIC_MODELS)
    assert load_fresh(payload, PYDANTIC_CHECK) == [
        "Ann", "1:Ann", "Lyon",
        {"id": 1, "name": "Ann", "tags": [], "address": {"city": "Lyon", "zip_code": "69001"},
         "label": "1:Ann"},
        5, True, True, [1], ["a"], ["id", "name"], "2:Cy",
        "greater_than", "value_error", "value_error", "string_pattern_mismatch", "int_parsing"]


ATTRS_CLASSES = """
    import sys

    import attr
    import attrs

    import cloudpickle_ipy.core as cloudpickle

    def positive(instance, attribute, value):
        if value <= 0:
            raise ValueError(f"{attribute.name} must be positive")

    @attrs.define
    class Point:
        x: int = attrs.field(validator=attrs.validators.instance_of(int))
        y: int = attrs.field(default=0, converter=int)
        tags: list = attrs.Factory(list)

        def norm1(self):
            return abs(self.x) + abs(self.y)

    @attrs.frozen
    class Money:
        amount: float = attrs.field(validator=positive)
        currency: str = "EUR"

    @attr.s
    class Legacy:
        a = attr.ib()
        b = attr.ib(default=2, validator=attr.validators.instance_of(int))

        def total(self):
            return self.a + self.b

    sys.stdout.buffer.write(cloudpickle.dumps(
        [Point, Money, Legacy, Point(1, "2"), Money(3.5), Legacy(1)]))
"""

ATTRS_CHECK = """
import attrs
Point, Money, Legacy, point, money, legacy = obj
result = [repr(point), point.norm1(), Point(3, "4").y, repr(money), legacy.total(),
          attrs.evolve(point, x=5).x, [f.name for f in attrs.fields(Point)], point == Point(1, 2),
          hasattr(point, "__dict__"), type(point) is Point]
for make in [lambda: Point("x"), lambda: Money(-1), lambda: Legacy(1, "b")]:
    try:
        make()
        result.append("accepted")
    except (TypeError, ValueError) as e:
        result.append(type(e).__name__)
try:
    money.amount = 2
except attrs.exceptions.FrozenInstanceError:
    result.append("frozen")
"""


def test_attrs_classes_and_instances_validate_after_loading():
    payload = run_script(ATTRS_CLASSES)
    assert load_fresh(payload, ATTRS_CHECK) == [
        "Point(x=1, y=2, tags=[])", 3, 4, "Money(amount=3.5, currency='EUR')", 3, 5,
        ["x", "y", "tags"], True, False, True, "TypeError", "ValueError", "TypeError", "frozen"]
