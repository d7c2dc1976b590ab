"""Plain Pydantic models, as users write them (no max_length anywhere), on the embedded model.

Each one comes back valid from ``local:smollm2`` at default settings, in one model call,
under ``grammar`` and under ``auto``: the grammar's bounds and its guard against runaway
values (tether.types.Bounds) keep a small model from writing on until it is cut off.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, Literal, get_origin

import pytest
from pydantic import BaseModel

import tether
from tether.models.base import Wrapper
from tether.structured.output import output_type
from tether.types import Request, Response

pytestmark = pytest.mark.slow


class Person(BaseModel):
    name: str
    age: int
    city: str


class Address(BaseModel):
    street: str
    city: str
    country: str


class Company(BaseModel):
    name: str
    founded: int
    headquarters: Address


class Recipe(BaseModel):
    title: str
    ingredients: list[str]


class Contact(BaseModel):
    name: str
    email: str | None = None
    phone: str | None = None


class Sentiment(BaseModel):
    sentiment: Literal["positive", "negative", "neutral"]
    reason: str


class Priority(enum.Enum):
    low = "low"
    medium = "medium"
    high = "high"


class Ticket(BaseModel):
    title: str
    priority: Priority


class Meeting(BaseModel):
    topic: str
    date: dt.date


class Product(BaseModel):
    name: str
    price: float
    in_stock: bool


class Cat(BaseModel):
    kind: Literal["cat"]
    name: str


class Dog(BaseModel):
    kind: Literal["dog"]
    name: str


class Pet(BaseModel):
    pet: Cat | Dog


class Item(BaseModel):
    name: str
    quantity: int


class Order(BaseModel):
    customer: str
    items: list[Item]


class Launch(BaseModel):
    name: str
    start: dt.datetime
    location: str | None = None


class Book(BaseModel):
    title: str
    author: str
    year: int


CASES: list[tuple[str, Any]] = [
    ("Maria Lopez is 34 and lives in Madrid.", Person),
    ("Acme Corp was founded in 1999 and is based at 12 Main Street, Springfield, USA.", Company),
    ("Pancakes: you need flour, eggs, milk and a pinch of salt.", Recipe),
    ("Reach John Smith at john.smith@example.com.", Contact),
    ("I loved the new phone, the battery lasts for days!", Sentiment),
    ("URGENT: the payment page is down for all users.", Ticket),
    ("The budget review meeting is on 2024-03-15.", Meeting),
    ("The blue kettle costs 24.99 dollars and is in stock.", Product),
    ("My dog Rex loves the park.", Pet),
    ("Alice ordered 2 pizzas and 3 sodas.", Order),
    ("The product launch is at 2025-06-01 09:30 in Berlin.", Launch),
    ("Dune was written by Frank Herbert in 1965.", Book),
    ("The office is at 221B Baker Street, London, United Kingdom.", Address),
    ("Alice ordered 2 pizzas and 3 sodas.", list[Item]),
    ("The parcel weighs 12 kilograms.", int),
]


class Counting(Wrapper):
    """Counts the model calls that reach the model."""

    calls = 0

    async def request(self, request: Request) -> Response:
        self.calls += 1
        return await self.inner.request(request)


@pytest.mark.parametrize("strategy", ["grammar", "auto"])
@pytest.mark.parametrize(("text", "output"), CASES, ids=[output_type(o).name for _, o in CASES])
def test_a_plain_schema_is_valid_in_one_call(text: str, output: Any, strategy: str) -> None:
    model = Counting(tether.model("local:smollm2"))
    found = tether.extract(text, output, model=model, strategy=strategy)  # type: ignore[arg-type]
    assert model.calls == 1
    assert isinstance(found, get_origin(output) or output)


# At temperature 0 the small model gets these right; the guard must leave them whole.
GREEDY: list[tuple[str, Any, Any]] = [
    (CASES[0][0], Person, Person(name="Maria Lopez", age=34, city="Madrid")),
    (CASES[11][0], Book, Book(title="Dune", author="Frank Herbert", year=1965)),
    (CASES[8][0], Pet, Pet(pet=Dog(kind="dog", name="Rex"))),
    (
        CASES[9][0],
        Order,
        Order(
            customer="Alice",
            items=[Item(name="2 pizzas", quantity=2), Item(name="3 sodas", quantity=3)],
        ),
    ),
]


@pytest.mark.parametrize(
    ("text", "output", "expected"), GREEDY, ids=[o.__name__ for _, o, _ in GREEDY]
)
def test_greedy_answers_hold_the_values_in_the_text(text: str, output: Any, expected: Any) -> None:
    assert tether.extract(text, output, model="local:smollm2", temperature=0) == expected
