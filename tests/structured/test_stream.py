import pytest
from pydantic import BaseModel

import tether
from tether.errors import OutputInvalid
from tether.structured import generate, stream
from tether.structured.stream import complete_fields
from tether.testing import ScriptedModel

PROMPT = "Receipt: ACME SDN BHD, 12/03/2018, TOTAL 45.60. Extract it."


class Receipt(BaseModel):
    company: str
    date: str
    total: float


def test_only_fields_that_can_no_longer_change_count_as_complete() -> None:
    assert complete_fields('{"company": "AC') == {}
    assert complete_fields('{"company": "ACME", "total": 4') == {"company": "ACME"}
    assert complete_fields('{"company": "ACME", "total": 45.6}') == {
        "company": "ACME",
        "total": 45.6,
    }
    assert complete_fields("no json yet") == {}


def test_fields_stream_as_they_complete_then_the_same_object_as_generate() -> None:
    model = tether.model("local:smollm2")
    items = list(stream(model, PROMPT, Receipt, max_tokens=80, temperature=0))
    *partials, final = items
    assert isinstance(final, Receipt)
    assert final == generate(model, PROMPT, Receipt, max_tokens=80, temperature=0)
    assert partials and all(isinstance(p, dict) for p in partials)
    sizes = [len(p) for p in partials]
    assert sizes == sorted(set(sizes))  # each partial adds fields, never repeats one
    assert list(partials[0]) == ["company"]


def test_a_streamed_answer_that_does_not_validate_raises() -> None:
    model = ScriptedModel('{"company": "ACME", "date": "d", "total": "lots"}')
    with pytest.raises(OutputInvalid) as info:
        list(stream(model, PROMPT, Receipt))
    assert "total" in " ".join(info.value.errors)
    assert info.value.text.startswith('{"company"')
