import datetime as dt
import itertools

import pytest
from pydantic import BaseModel, Field

import tether
from tether.errors import OutputInvalid
from tether.structured import Partial, generate, stream
from tether.structured.output import output_type
from tether.structured.partial import partial_value
from tether.testing import ScriptedModel

PROMPT = "Receipt: ACME SDN BHD, 12/03/2018, TOTAL 45.60. Extract it."


class Receipt(BaseModel):
    company: str
    date: str
    total: float


class Address(BaseModel):
    street: str = Field(min_length=5)
    city: str


class Visit(BaseModel):
    who: str
    when: dt.date
    where: Address
    tags: list[str]


def partial(text: str) -> object:
    return partial_value(output_type(Visit), text)


def test_a_partial_object_holds_what_is_written_so_far_with_the_rest_none() -> None:
    assert partial("no json yet") is None
    first = partial('{"who": "Ma')
    assert isinstance(first, Partial[Visit])
    assert first.who == "Ma"  # the string in progress, as far as it has come
    assert (first.when, first.where, first.tags) == (None, None, None)
    later = partial('{"who": "Maria", "when": "2024-0')
    assert later.who == "Maria" and later.when is None  # half a date is left out
    nested = partial('{"who": "M", "when": "2024-03-01", "where": {"street": "Ma')
    assert nested.when == dt.date(2024, 3, 1)
    assert nested.where.street == "Ma"  # constraints (min_length) wait for the final object
    assert nested.where.city is None
    listed = partial('{"who": "M", "when": "2024-03-01", "where": {}, "tags": ["a", "b')
    assert listed.tags == ["a", "b"]


def test_partial_classes_make_every_field_optional_and_are_not_the_model() -> None:
    empty = Partial[Visit]()
    assert empty.model_dump() == {"who": None, "when": None, "where": None, "tags": None}
    assert Partial[Visit] is Partial[Visit]
    assert not issubclass(Partial[Visit], Visit)
    assert Partial[Visit].model_fields["where"].annotation == Partial[Address] | None


def test_partials_stream_as_the_answer_grows_then_the_same_object_as_generate() -> None:
    model = tether.model("local:smollm2")
    items = list(stream(model, PROMPT, Receipt, max_tokens=80, temperature=0))
    *partials, final = items
    assert isinstance(final, Receipt)
    assert final == generate(model, PROMPT, Receipt, max_tokens=80, temperature=0)
    assert partials and all(isinstance(p, Partial[Receipt]) for p in partials)
    assert all(not isinstance(p, Receipt) for p in partials)
    companies = [p.company for p in partials if p.company is not None]
    assert len(set(companies)) > 1  # the company field was seen growing
    assert all(b.startswith(a) for a, b in itertools.pairwise(companies))
    assert companies[-1] == final.company
    assert partials[0].total is None


def test_a_list_answer_streams_as_lists_of_partial_items() -> None:
    answer = '{"items": [{"company": "A", "date": "d", "total": 1}, {"company": "B", "total": 2, '
    model = ScriptedModel(answer + '"date": "e"}]}')
    *partials, final = list(stream(model, PROMPT, list[Receipt]))
    assert final == [
        Receipt(company="A", date="d", total=1),
        Receipt(company="B", date="e", total=2),
    ]
    assert all(isinstance(p, list) for p in partials)
    assert isinstance(partials[0][0], Partial[Receipt])
    assert [len(p) for p in partials][-1] == 2
    assert partials[-1][1].date in (None, "e")


def test_a_streamed_answer_that_does_not_validate_raises() -> None:
    model = ScriptedModel('{"company": "ACME", "date": "d", "total": "lots"}')
    with pytest.raises(OutputInvalid) as info:
        list(stream(model, PROMPT, Receipt))
    assert "total" in " ".join(info.value.errors)
    assert info.value.text.startswith('{"company"')


def test_an_annotated_answer_with_unhashable_metadata_streams_too() -> None:
    from typing import Annotated

    output = Annotated[list[str], {"note": "unhashable"}]
    *partials, final = list(stream(ScriptedModel('{"items": ["a", "b"]}'), PROMPT, output))
    assert final == ["a", "b"]
    assert partials[-1] == ["a", "b"]
