"""The JSON guard follows an answer token by token and says when a value should end."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from tether.models.json_guard import QUOTE, TOKEN_KINDS, Constraint, JsonGuard
from tether.types import Bounds


class Item(BaseModel):
    name: str
    quantity: int


class Order(BaseModel):
    customer: str = Field(max_length=30)
    items: list[Item]
    tags: list[str] = Field(max_length=3)
    note: str | None = None
    kind: str = Field(json_schema_extra={"enum": ["a", "b"]})


def guard(
    text: str, bounds: Bounds | None = None, schema: dict[str, Any] | None = None
) -> JsonGuard:
    found = JsonGuard(schema or Order.model_json_schema(), bounds or Bounds(string=10, items=3))
    for piece in text.split("|"):  # "|" marks where one token ends and the next begins
        found.accept(piece.encode())
    return found


def test_a_string_the_schema_leaves_unbounded_ends_at_the_bound() -> None:
    assert (
        guard('{"customer": "x", "items": [], "tags": [], "note": "01234567').constraint() is None
    )
    full = guard('{"customer": "x", "items": [], "tags": [], "note": "0123456789')
    assert full.constraint() == Constraint(require=QUOTE)


def test_a_bound_the_schema_sets_is_left_to_the_grammar() -> None:
    long = guard('{"customer": "abcdefghijklmnopqrstuvwxy')  # max_length 30: above the 10
    assert long.constraint() is None


def test_a_string_that_repeats_itself_ends() -> None:
    bounds = Bounds(string=1000)
    sentence = "She is 34 years old. "
    assert (
        guard(
            '{"customer": "x", "items": [], "tags": [], "note": "' + sentence, bounds
        ).constraint()
        is None
    )
    looping = guard('{"customer": "x", "items": [], "tags": [], "note": "' + sentence * 2, bounds)
    assert looping.constraint() == Constraint(require=QUOTE)
    off = guard(
        '{"customer": "x", "items": [], "tags": [], "note": "' + sentence * 2,
        Bounds(string=1000, runaway=False),
    )
    assert off.constraint() is None


def test_a_row_of_one_character_is_a_value_until_it_runs_long() -> None:
    bounds = Bounds(string=1000)
    start = '{"customer": "x", "items": [], "tags": [], "note": "'
    assert guard(start + "*" * 12 + "1234", bounds).constraint() is None
    assert guard(start + "-" * 40, bounds).constraint() is None
    assert guard(start + "-" * 48, bounds).constraint() == Constraint(require=QUOTE)
    assert guard(start + "text, " * 3, bounds).constraint() is None
    assert guard(start + "text, " * 4, bounds).constraint() == Constraint(require=QUOTE)


def test_free_text_folds_a_closing_brace_into_its_end_but_not_keys_or_enums() -> None:
    assert guard('{"customer": "Mad').folds() == ("brace-closer",)  # "Section [3]" stays text
    assert guard('{"customer": "x", "items": [], "tags": ["fl').folds() == (
        "brace-closer",
        "list-closer",
    )  # in a list item, a closing bracket ends the string too
    assert not guard('{"custo').folds()  # a key: the grammar spells it
    assert not guard('{"customer": "x", "items": [], "tags": [], "kind": "').folds()
    assert not guard('{"customer": "Mad', Bounds(runaway=False)).folds()


def test_a_list_does_not_go_on_past_its_bound() -> None:
    answer = (
        '{"customer": "x", "items": [{"name": "a", "quantity": 1}, {"name": "b", "quantity": 2}'
    )
    two = guard(answer)
    assert not two.overruns(b", {")
    three = guard(answer + ', {"name": "c", "quantity": |3')
    assert three.constraint() == Constraint(check_lists=True)
    assert three.overruns(b"},")  # the token that would close the third item and add a fourth
    assert three.overruns(b"}, {")
    assert not three.overruns(b"}]")
    assert not three.overruns(b"}")


def test_a_list_ends_where_it_starts_repeating_itself() -> None:
    bounds = Bounds(string=100, items=50)
    twice = guard('{"customer": "x", "items": [], "tags": ["text", "text', bounds)
    assert not twice.overruns(b'",')  # two of the same may be meant
    thrice = guard('{"customer": "x", "items": [], "tags": ["text", "text", "text', bounds)
    assert thrice.overruns(b'",')  # a third is a loop: closing it and going on is refused
    assert not thrice.overruns(b'"]')
    assert not thrice.overruns(b"s")  # "texts" is another item
    run = guard('{"customer": "x", "items": [], "tags": ["a", "b", "a", "b", "a", "b', bounds)
    assert run.overruns(b'",')
    fresh = guard('{"customer": "x", "items": [], "tags": ["flour", "eggs", "flour', bounds)
    assert not fresh.overruns(b'",')


def test_a_repeated_object_ends_its_list_but_repeated_numbers_do_not() -> None:
    bounds = Bounds(items=50)
    item = '{"name": "soda", "quantity": 1}'
    again = guard('{"customer": "x", "items": [' + item + ", " + item[:-1], bounds)
    assert again.overruns(b"},")  # the same object a second time
    assert not again.overruns(b"}]")

    class Prices(BaseModel):
        prices: list[float]

    same = guard('{"prices": [2.5, 2.5, 2.|5', bounds, Prices.model_json_schema())
    assert not same.overruns(b",")  # two items at one price are data, not a loop


def test_the_guard_follows_escapes_nesting_and_keys() -> None:
    found = guard('{"customer": "a \\" } b", "items": [{"name": "x}", "quantity": 1}], "tags": ["')
    assert found.state == "string"
    assert [c.kind for c in found.stack] == ["object", "array"]
    assert found.stack[0].key == "tags"
    assert found.stack[0].schemas[0]["properties"]["tags"]["maxItems"] == 3
    items = guard(
        '{"customer": "a", "items": [{"name": "x}", "quantity": 1}, {"name": "y", "quantity": 22}'
    )
    assert items.stack[-1].items == [
        b'{"name": "x}", "quantity": 1}',
        b'{"name": "y", "quantity": 22}',
    ]


def test_references_and_unions_are_followed() -> None:
    class Inner(BaseModel):
        text: str

    class Outer(BaseModel):
        inner: Inner | None = None
        many: list[Inner] | None = None

    schema = Outer.model_json_schema()
    deep = guard('{"inner": {"text": "0123456789', Bounds(string=10), schema)
    assert deep.constraint() == Constraint(require=QUOTE)  # Inner.text through $ref and anyOf
    listed = guard(
        '{"inner": null, "many": [{"text": "a"}, {"text": "b"}, {"text": "c"}',
        Bounds(items=3),
        schema,
    )
    assert listed.overruns(b", ")


def test_token_kinds() -> None:
    assert TOKEN_KINDS["comma"].match(b'",')
    assert TOKEN_KINDS["comma"].match(b"}, {")
    assert not TOKEN_KINDS["comma"].match(b"}]")
    assert TOKEN_KINDS["brace-closer"].match(b" }")
    assert TOKEN_KINDS["list-closer"].match(b"]")
    assert not TOKEN_KINDS["list-closer"].match(b"}")
    assert not TOKEN_KINDS["brace-closer"].match(b"x}")
    assert TOKEN_KINDS["quote"].match(b'"}')
