"""Structured outputs: grammar on the local model, repair on anything, and every failure."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx2
import pytest
from pydantic import BaseModel, Field

import tether
import tether.structured
from tether.errors import ConfigError, OutputInvalid, Refused, UnsupportedParameter
from tether.models.base import Capabilities, ProviderModel
from tether.models.openai import OpenAIProvider
from tether.structured import generate
from tether.testing import FunctionModel, ScriptedModel
from tether.types import Bounds, Message, Request, Response, Usage

RECEIPT = "ACME TRADING SDN BHD\n12/03/2018\nTEA 2.50\nCAKE 3.10\nTOTAL 5.60\nTHANK YOU"


class Receipt(BaseModel):
    company: str = Field(description="the shop's name as printed")
    date: str
    total: float


class Ticket(BaseModel):
    kind: Literal["bug", "question", "praise"]
    tags: list[str] = Field(max_length=2)  # a bound the grammar enforces
    urgent: bool | None = None


def test_grammar_makes_the_local_model_valid_by_construction() -> None:
    model = tether.model("local:smollm2")
    receipt = generate(
        model,
        f"Extract the receipt.\n{RECEIPT}",
        Receipt,
        strategy="grammar",
        max_tokens=60,
        temperature=0,
    )
    assert isinstance(receipt, Receipt)
    ticket = generate(
        model, "Classify: the app crashes on start!", Ticket, max_tokens=80, temperature=0
    )
    assert ticket.kind in ("bug", "question", "praise")


def test_repair_feeds_the_errors_back_until_the_answer_validates() -> None:
    model = ScriptedModel(
        "Sure! Here it is: not json at all",
        '```json\n{"company": "ACME", "date": "12/03/2018", "total": "lots"}\n```',
        'Fixed: {"company": "ACME", "date": "12/03/2018", "total": 5.6}',
    )
    receipt = generate(model, RECEIPT, Receipt, strategy="repair")
    assert receipt == Receipt(company="ACME", date="12/03/2018", total=5.6)
    first, second, third = model.requests
    assert "JSON schema" in first.messages[0].text and first.output is None
    assert "no JSON object" in second.messages[-1].text
    assert "total" in third.messages[-1].text  # the validation error named the field


def test_output_that_never_validates_raises_with_every_error_and_all_usage() -> None:
    model = ScriptedModel('{"company": 1}', "nope", '{"date": "x"}')
    with pytest.raises(OutputInvalid) as info:
        generate(model, RECEIPT, Receipt, strategy="repair", attempts=3)
    error = info.value
    assert [e.split(":")[0] for e in error.errors][:1] == ["attempt 1"]
    assert {e.split(":")[0] for e in error.errors} == {"attempt 1", "attempt 2", "attempt 3"}
    assert error.text == '{"date": "x"}'
    assert isinstance(error.usage, Usage)
    assert error.usage.output_tokens == sum(
        r.usage.output_tokens
        for r in [
            ScriptedModel(t).generate("q") for t in ('{"company": 1}', "nope", '{"date": "x"}')
        ]
    )


def test_an_answer_cut_by_max_tokens_keeps_its_partial_text_and_usage() -> None:
    cut = Response(
        message=Message.assistant('{"company": "ACME TRA'),
        finish_reason="length",
        usage=Usage(input_tokens=40, output_tokens=8),
    )
    with pytest.raises(OutputInvalid) as info:
        generate(ScriptedModel(cut), RECEIPT, Receipt)
    assert info.value.text == '{"company": "ACME TRA'
    assert info.value.usage == Usage(input_tokens=40, output_tokens=8)
    assert "max_tokens" in str(info.value)


class GrammarModel(ScriptedModel):
    """A scripted model that declares grammar-constrained decoding, as local models do."""

    def capabilities(self) -> Capabilities:
        return Capabilities(structured=frozenset({"grammar"}))


def test_a_cut_off_grammar_answer_is_tried_once_more_with_tighter_bounds() -> None:
    cut = Response(
        message=Message.assistant('{"company": "ACME TRA'),
        finish_reason="length",
        usage=Usage(input_tokens=40, output_tokens=8),
    )
    model = GrammarModel(cut, '{"company": "ACME", "date": "12/03/2018", "total": 5.6}')
    with pytest.warns(UserWarning, match="came with tighter bounds"):
        found = generate(model, RECEIPT, Receipt, bounds=Bounds(string=400, items=10))
    assert found.company == "ACME"
    first, second = (r.output for r in model.requests)
    assert first is not None and second is not None
    assert (first.mode, first.bounds) == ("grammar", Bounds(string=400, items=10))
    assert second.bounds == Bounds(string=100, items=5)
    again = GrammarModel(cut, cut)
    with pytest.raises(OutputInvalid) as info:
        generate(again, RECEIPT, Receipt)
    assert len(again.requests) == 2  # one more try, not more
    assert "tighter bounds" in info.value.errors[0]
    assert info.value.usage == Usage(input_tokens=80, output_tokens=16)


def test_real_truncation_on_the_local_model() -> None:
    with pytest.raises(OutputInvalid) as info:
        generate(tether.model("local:smollm2"), RECEIPT, Receipt, max_tokens=4)
    assert info.value.text  # the partial answer of the second, tighter try
    assert info.value.usage.output_tokens == 8  # type: ignore[union-attr]
    assert "tighter bounds" in info.value.errors[0]


def test_a_refusal_is_raised_as_refused() -> None:
    refusal = Response(
        message=Message.assistant("I can't help with that."), finish_reason="refusal"
    )
    with pytest.raises(Refused, match="can't help"):
        generate(ScriptedModel(refusal), RECEIPT, Receipt)


def test_auto_falls_back_to_repair_with_a_warning() -> None:
    def answer(request: Request) -> str | Exception:
        if request.output is not None:
            return UnsupportedParameter("no structured-output mode")
        return '{"company": "ACME", "date": "d", "total": 1}'

    model = FunctionModel(answer)
    with pytest.warns(UserWarning, match="strategy='repair'"):
        receipt = generate(model, RECEIPT, Receipt)
    assert receipt.total == 1
    assert [r.output is None for r in model.requests] == [False, True]


def test_native_on_a_model_without_it_is_a_clear_error(project: object) -> None:
    Path("tether.toml").write_text('[endpoints.box]\nbase_url = "http://127.0.0.1:9/v1"\n')
    with pytest.raises(UnsupportedParameter, match="json_schema = true"):
        generate(tether.model("box:any"), RECEIPT, Receipt, strategy="native")


def test_a_schema_the_grammar_cannot_express_names_the_construct() -> None:
    class Odd(BaseModel):
        code: str = Field(pattern="[A-Z]{3}")  # llama.cpp wants ^...$ anchors

    with pytest.raises(UnsupportedParameter, match='Pattern must start with "\\^"'):
        generate(tether.model("local:smollm2"), "x", Odd, strategy="grammar")


def test_auto_falls_back_to_repair_for_a_schema_the_grammar_cannot_express() -> None:
    class Odd(BaseModel):
        code: str = Field(pattern="[A-Z]{3}")

    # auto allows the fallback: the warning names the construct, then repair asks for JSON
    # (cut at 3 tokens here, which shows the repair call was made and answered)
    with (
        pytest.warns(UserWarning, match="Pattern must start with .* strategy=.repair."),
        pytest.raises(OutputInvalid, match="max_tokens") as info,
    ):
        generate(tether.model("local:smollm2"), "Give a code.", Odd, max_tokens=3)
    assert info.value.usage.output_tokens == 3  # type: ignore[union-attr]


def openai_answering(
    content: str, sent: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> ProviderModel:
    """An OpenAI model whose wire answers every request with ``content`` (a chat completion
    in OpenAI's documented shape), keeping each request body in ``sent``."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(json.loads(request.content))
        body = {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1,
            "model": "gpt-4.1-mini",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62},
        }  # fmt: skip
        return httpx2.Response(200, json=body)

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return ProviderModel(OpenAIProvider("gpt-4.1-mini", {"http_client": client}))


async def test_openai_native_sends_a_strict_json_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, Any]] = []
    answer = '{"kind": "bug", "tags": ["crash"], "urgent": null}'
    model = openai_answering(answer, sent, monkeypatch)
    ticket = await tether.structured.agenerate(model, "It crashes", Ticket, strategy="native")
    assert ticket == Ticket(kind="bug", tags=["crash"], urgent=None)
    response_format = sent[0]["response_format"]
    assert isinstance(response_format, dict)
    spec = response_format["json_schema"]
    assert response_format["type"] == "json_schema" and spec["strict"] is True
    assert spec["name"] == "Ticket"
    assert spec["schema"]["additionalProperties"] is False
    assert spec["schema"]["required"] == ["kind", "tags", "urgent"]  # optional fields too
    assert "default" not in json.dumps(spec["schema"])


def test_model_generate_with_output_gives_the_validated_object() -> None:
    model = ScriptedModel("not json", '{"company": "ACME", "date": "12/03/2018", "total": 5.6}')
    receipt = model.generate(RECEIPT, output=Receipt, strategy="repair", attempts=2)
    assert receipt == Receipt(company="ACME", date="12/03/2018", total=5.6)
    assert len(model.requests) == 2  # the first answer was sent back with its error
    plain = ScriptedModel("hello").generate("hi")
    assert isinstance(plain, Response) and plain.text == "hello"


async def test_model_agenerate_with_output_on_the_local_grammar() -> None:
    ticket = await tether.model("local:smollm2").agenerate(
        "Classify: the app crashes on start!", output=Ticket, max_tokens=80, temperature=0
    )
    assert isinstance(ticket, Ticket) and len(ticket.tags) <= 2


def test_strategy_without_output_says_to_pass_output() -> None:
    model = ScriptedModel("hello")
    with pytest.raises(ConfigError, match="pass output=YourModel"):
        model.generate("hi", strategy="repair")
    with pytest.raises(ConfigError, match="not to stream"):
        list(model.stream("hi", attempts=2))
    assert model.requests == []  # nothing was sent


def test_a_constraint_that_cannot_apply_to_the_answer_is_a_schema_error() -> None:
    class Loose(BaseModel):
        reference: int | str = Field(max_length=12)  # pydantic puts it on the whole union

    model = ScriptedModel('{"reference": 17}', '{"reference": "A-17"}')
    with pytest.raises(ConfigError, match="put it on the branch it is for"):
        generate(model, "x", Loose, strategy="repair")
    assert len(model.requests) == 1  # not retried: no answer can fix the schema


def test_output_must_be_a_type_pydantic_can_validate() -> None:
    model = ScriptedModel('{"a": 1}')
    for wrong in (3, Receipt(company="c", date="d", total=1), "Receipt"):
        with pytest.raises(ConfigError, match="not a type pydantic can validate"):
            model.generate("hi", output=wrong)
    assert model.requests == []
    assert model.generate("hi", output=dict[str, int]) == {"a": 1}


def test_stream_with_output_points_to_the_structured_stream() -> None:
    with pytest.raises(ConfigError, match=r"tether\.structured\.stream"):
        list(ScriptedModel("x").stream("hi", output=Receipt))


class Status(StrEnum):
    OPEN = "open"
    PAID = "paid"


class Item(BaseModel):
    name: str = Field(max_length=20)
    quantity: int = Field(ge=1, le=99)


class Customer(BaseModel):
    name: str = Field(max_length=30, description="the buyer's full name")
    email: str | None = Field(default=None, max_length=40)


class Order(BaseModel):
    customer: Customer
    items: list[Item] = Field(min_length=1, max_length=3)
    status: Status
    reference: int | Annotated[str, Field(max_length=12)]


ORDER = "Order for Ada Lovelace (ada@example.com): 2 tea, 1 cake. Paid in full. Ref A-17."


def test_grammar_fills_nested_models_lists_enums_unions_and_optional_fields() -> None:
    order = generate(
        tether.model("local:smollm2"),
        f"Extract the order.\n{ORDER}",
        Order,
        strategy="grammar",
        temperature=0,
    )
    # valid by construction: the grammar expressed the $defs, the enum, the bounded list and
    # both branches of the union, so validation passed on the first and only attempt
    assert isinstance(order, Order) and 1 <= len(order.items) <= 3


async def test_openai_strict_mode_closes_nested_objects_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[dict[str, Any]] = []
    answer = {
        "customer": {"name": "Ada Lovelace", "email": None},
        "items": [{"name": "tea", "quantity": 2}, {"name": "cake", "quantity": 1}],
        "status": "paid",
        "reference": "A-17",
    }
    model = openai_answering(json.dumps(answer), sent, monkeypatch)
    order = await model.agenerate(ORDER, output=Order, strategy="native")
    assert order.status is Status.PAID and order.items[1] == Item(name="cake", quantity=1)
    schema = sent[0]["response_format"]["json_schema"]["schema"]
    for name in ("Customer", "Item"):
        nested = schema["$defs"][name]
        assert nested["additionalProperties"] is False
        assert nested["required"] == list(nested["properties"])
    assert schema["$defs"]["Status"]["enum"] == ["open", "paid"]


def test_the_span_records_the_output_its_strategy_and_bounds(project: Path) -> None:
    import sqlite3

    from tether.tracing import semconv
    from tether.tracing.setup import flush

    class City(BaseModel):
        name: str

    text = "Oslo is the capital of Norway."
    tether.extract(text, City, model="local:smollm2", temperature=0, max_tokens=30)
    assert flush()
    db = sqlite3.connect(project / ".tether" / "tether.db")
    (attributes,) = db.execute("SELECT attributes FROM spans").fetchone()
    attrs = json.loads(attributes)
    assert attrs[semconv.OUTPUT_TYPE] == "json"
    assert attrs[semconv.OUTPUT_NAME] == "City"
    assert attrs[semconv.OUTPUT_MODE] == "grammar"
    # extraction bounds strings by the text it reads (at least 64), lists by its words
    assert attrs[semconv.OUTPUT_BOUNDS] == "string<=64 items<=8 runaway"
