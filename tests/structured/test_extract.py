"""tether.extract: the extraction prompt around the text, and which model it goes to."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field

import tether
from tether.errors import ModelNotFound
from tether.testing import ScriptedModel

RECEIPT = "ACME TRADING SDN BHD\n12/03/2018\nTEA 2.50\nCAKE 3.10\nTOTAL 5.60\nTHANK YOU"


class Receipt(BaseModel):
    company: str = Field(description="the shop's name as printed")
    date: str
    total: float


def test_extract_writes_the_prompt_around_the_text() -> None:
    model = ScriptedModel('{"company": "ACME", "date": "12/03/2018", "total": 5.6}')
    receipt = tether.extract(RECEIPT, Receipt, model=model, strategy="repair")
    assert receipt.company == "ACME"
    asked = model.requests[0].messages[-1].text
    assert asked.startswith("Extract the Receipt from the text below: company, date, total.")
    assert asked.endswith(RECEIPT)
    assert "shop's name as printed" in model.requests[0].messages[0].text  # field guidance

    own = ScriptedModel('{"company": "ACME", "date": "d", "total": 1}')
    tether.extract(RECEIPT, Receipt, model=own, instructions="Read this till.", strategy="repair")
    assert own.requests[0].messages[-1].text.startswith("Read this till.\n\nText:\n")


def test_a_list_answer_asks_for_every_item_and_its_fields() -> None:
    model = ScriptedModel('{"items": [{"company": "ACME", "date": "d", "total": 1}]}')
    found = tether.extract(RECEIPT, list[Receipt], model=model, strategy="repair")
    assert found == [Receipt(company="ACME", date="d", total=1)]
    asked = model.requests[0].messages[-1].text
    assert asked.startswith("Extract every Receipt from the text below: company, date, total.")


def test_extraction_bounds_follow_the_text() -> None:
    from tether.structured.extract import extraction_bounds
    from tether.types import Bounds

    short = extraction_bounds("Maria is 34.", Bounds())
    assert (short.string, short.items) == (64, 8)  # room for a short text
    long = extraction_bounds("word " * 400, Bounds())
    assert (long.string, long.items) == (1000, 100)  # never above the configured bounds
    assert extraction_bounds("x" * 300, Bounds(string=None)).string is None  # lifted stays lifted


def test_extract_takes_a_model_id_or_the_configured_default(project: Path) -> None:
    receipt = tether.extract(RECEIPT, Receipt, model="local:smollm2", max_tokens=60, temperature=0)
    assert isinstance(receipt, Receipt)
    (project / "tether.toml").write_text('default_model = "nope:model"\n')
    with pytest.raises(ModelNotFound, match="'nope:model'"):  # the default, before any call
        tether.extract(RECEIPT, Receipt)
