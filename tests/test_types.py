import asyncio
import json
from pathlib import Path

import pytest

import tether
from tether.errors import ConfigError, OutputInvalid
from tether.models.accumulate import Accumulator
from tether.models.base import build_request
from tether.types import (
    DocumentPart,
    FinishEvent,
    ImagePart,
    Message,
    Params,
    Price,
    Request,
    Response,
    TextDelta,
    ToolCallDelta,
    ToolCallPart,
    ToolSpec,
    Usage,
    UsageEvent,
)


def test_messages_round_trip_through_json() -> None:
    message = Message(
        role="assistant",
        content=[
            {"type": "reasoning", "text": "hmm", "signature": "sig"},
            {"type": "text", "text": "Paris"},
            {"type": "tool_call", "id": "c1", "name": "f", "arguments": '{"a": 1}'},
        ],
    )
    again = Message.model_validate_json(message.model_dump_json())
    assert again == message
    assert again.text == "Paris"
    assert again.tool_calls[0].args() == {"a": 1}


def test_broken_tool_arguments_raise_output_invalid() -> None:
    call = ToolCallPart(id="c", name="f", arguments='{"a": ')
    with pytest.raises(OutputInvalid) as info:
        call.args()
    assert info.value.text == '{"a": '


def test_build_request_from_text_system_and_params() -> None:
    request = build_request("hi", system="be brief", temperature=0.1, max_tokens=5)
    assert [m.role for m in request.messages] == ["system", "user"]
    assert request.params.set_fields() == {"temperature": 0.1, "max_tokens": 5}


def test_unknown_parameter_is_rejected_with_valid_names() -> None:
    with pytest.raises(ConfigError) as info:
        build_request("hi", temprature=0.1)
    assert "unknown keyword 'temprature' (did you mean 'temperature'?)" in str(info.value)


def test_accumulator_merges_deltas_into_a_response() -> None:
    acc = Accumulator()
    for event in [
        TextDelta(text="Hel"),
        TextDelta(text="lo"),
        ToolCallDelta(index=0, id="c1", name="f"),
        ToolCallDelta(index=0, arguments='{"x":'),
        ToolCallDelta(index=0, arguments=" 2}"),
        UsageEvent(usage=Usage(input_tokens=3, output_tokens=4)),
        FinishEvent(finish_reason="tool_calls", provider_id="r1"),
    ]:
        acc.add(event)
    response = acc.response("m:x")
    assert response.text == "Hello"
    assert response.tool_calls[0].args() == {"x": 2}
    assert response.usage.output_tokens == 4
    assert (response.finish_reason, response.provider_id) == ("tool_calls", "r1")


def test_usage_adds_up() -> None:
    total = Usage(input_tokens=1, output_tokens=2, cached_tokens=1) + Usage(
        input_tokens=3, output_tokens=4, reasoning_tokens=2, estimated=True
    )
    assert (total.input_tokens, total.output_tokens, total.cached_tokens) == (4, 6, 1)
    assert total.reasoning_tokens == 2 and total.estimated


def test_public_surface_is_curated() -> None:
    for name in tether.__all__:
        assert getattr(tether, name) is not None
    assert "model" in tether.__all__
    assert tether.Response is Response and tether.Request is Request
    with pytest.raises(AttributeError):
        _ = tether.nothing_here


def test_every_lazy_export_is_listed_in_all() -> None:
    from tether import _EXPORTS

    assert sorted(tether.__all__) == sorted(_EXPORTS)


def test_text_between_other_parts_keeps_its_place() -> None:
    from tether.types import ReasoningDelta, TextPart, ToolCallPart

    acc = Accumulator()
    for event in [
        ReasoningDelta(index=0, text="think", signature="s"),
        TextDelta(text="Let me "),
        TextDelta(text="check."),
        ToolCallDelta(index=2, id="c1", name="f", arguments="{}"),
        TextDelta(text="Done."),
        UsageEvent(usage=Usage()),
        FinishEvent(finish_reason="stop"),
    ]:
        acc.add(event)
    parts = acc.response("m:x").message.content
    assert [type(p) for p in parts][1:] == [TextPart, ToolCallPart, TextPart]
    assert acc.response("m:x").text == "Let me check.Done."


def test_tool_specs_from_each_shape_store_as_before() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    openai_style = {"type": "function", "function": {"name": "find", "parameters": schema}}
    spec = ToolSpec.model_validate(openai_style)
    assert spec == ToolSpec(name="find", parameters=schema)
    # strict unset is left out of the stored form, so recorded requests keep their keys
    assert spec.model_dump() == {"name": "find", "description": "", "parameters": schema}
    assert ToolSpec(name="find", input_schema=schema, strict=False).model_dump()["strict"] is False


# -- the stored form stays as it was -------------------------------------------------------

OLD_PARAMS = {
    "temperature": None, "top_p": None, "max_tokens": 5, "stop": None, "seed": None,
    "tool_choice": None, "reasoning_budget": None, "logprobs": None,
}  # fmt: skip


def test_a_request_without_the_new_fields_stores_as_before() -> None:
    request = build_request(
        [Message.system("be brief"), Message.user("hi")], tools=[{"name": "f"}], max_tokens=5
    )
    assert request.model_dump(mode="json") == {
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        ],
        "tools": [
            {"name": "f", "description": "", "parameters": {"type": "object", "properties": {}}}
        ],
        "params": OLD_PARAMS,
        "metadata": {},
        "output": None,
    }


def test_an_output_schema_at_its_defaults_stores_as_before() -> None:
    from tether.types import Bounds, OutputSchema

    plain = OutputSchema(name="City", schema={"type": "object"})
    assert plain.model_dump(mode="json") == {"name": "City", "schema": {"type": "object"}}
    held = OutputSchema(name="City", schema={}, mode="grammar", strict=False, bounds=Bounds())
    assert set(held.model_dump(mode="json")) == {"name", "schema", "mode", "strict", "bounds"}


def test_a_cassette_recorded_before_the_new_fields_still_replays(tmp_path: Path) -> None:
    from tether.models.middleware.cassette import CassetteModel
    from tether.testing import ScriptedModel, replay

    old = {
        "interactions": [
            {
                "model": "scripted:test",
                "stream": False,
                "request": {
                    "messages": [
                        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                        {
                            "role": "assistant",
                            "content": [
                                {"type": "tool_call", "id": "c1", "name": "f", "arguments": "{}"},
                                {"type": "image", "url": "https://example.com/a.png",
                                 "media_type": "image/png"},
                            ],
                        },
                    ],
                    "tools": [{"name": "f", "description": "", "parameters": {}}],
                    "params": OLD_PARAMS,
                    "metadata": {},
                },
                "response": {
                    "message": {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
                    "finish_reason": "stop",
                    "usage": {"input_tokens": 1, "output_tokens": 1, "cached_tokens": 0,
                              "cache_write_tokens": 0, "reasoning_tokens": 0, "estimated": False},
                    "latency_s": 0.1,
                    "model": "scripted",
                },
            }
        ]
    }  # fmt: skip
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    messages = [
        Message.user("hi"),
        Message(
            role="assistant",
            content=[
                ToolCallPart(id="c1", name="f"),
                ImagePart(url="https://example.com/a.png"),
            ],
        ),
    ]
    request = Request(messages=messages, tools=[ToolSpec(name="f", parameters={})])
    request = request.model_copy(update={"params": Params(max_tokens=5)})
    with replay(path):
        answer = asyncio.run(CassetteModel(ScriptedModel()).request(request))
    assert answer.text == "ok" and answer.choices == [] and answer.usage.cache_write_1h_tokens == 0


def test_new_parts_round_trip_through_json() -> None:
    message = Message(
        role="user",
        content=[
            {
                "type": "text",
                "text": "Read this.",
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            },
            {"type": "document", "data": "JVBE", "filename": "a.pdf", "citations": True},
            {"type": "audio", "data": "UklGRg==", "format": "mp3"},
        ],
    )
    again = Message.model_validate_json(message.model_dump_json())
    assert again == message
    assert isinstance(again.content[1], DocumentPart) and again.content[1].source == "data"
    assert message.model_dump()["content"][1] == {
        "type": "document", "data": "JVBE", "media_type": "application/pdf",
        "filename": "a.pdf", "citations": True,
    }  # fmt: skip


def test_usage_adds_its_one_hour_writes_and_price_charges_them_apart() -> None:
    total = Usage(cache_write_tokens=10, cache_write_1h_tokens=4) + Usage(
        cache_write_tokens=5, cache_write_1h_tokens=5
    )
    assert (total.cache_write_tokens, total.cache_write_1h_tokens) == (15, 9)
    price = Price(input=1.0, output=2.0, cache_write=1.25, cache_write_1h=2.0)
    usage = Usage(input_tokens=1_000_000, cache_write_tokens=600_000, cache_write_1h_tokens=200_000)
    assert price.cost(usage) == pytest.approx(0.4 + 400_000 * 1.25 / 1e6 + 0.2 * 2.0)
    # without a one-hour price, those writes cost what the five-minute ones do
    assert Price(input=1.0, output=2.0, cache_write=1.25).cost(usage) == pytest.approx(
        0.4 + 0.6 * 1.25
    )


def test_reasoning_budget_takes_a_count_or_an_effort_word() -> None:
    from tether.models.reasoning import WORD_BUDGETS, budget_for, effort_for
    from tether.types import EFFORTS

    assert Params(reasoning_budget="high").reasoning_budget == "high"
    assert Params(reasoning_budget=2048).reasoning_budget == 2048
    with pytest.raises(ValueError, match="reasoning_budget"):
        Params(reasoning_budget="extreme")
    assert set(WORD_BUDGETS) == set(EFFORTS)
    assert [effort_for(n) for n in (0, 1, 2048, 2049, 8192, 8193)] == [
        "minimal", "low", "low", "medium", "medium", "high",
    ]  # fmt: skip
    assert budget_for("medium") == 8192 and budget_for(3000) == 3000 and budget_for("none") == 0


def test_tighter_bounds_never_loosen() -> None:
    from tether.types import Bounds

    assert Bounds(string=1000, items=100).tighter() == Bounds(string=250, items=50)
    assert Bounds(string=10, items=8).tighter() == Bounds(string=10, items=4)  # not up to 16
    assert Bounds(string=10, items=1).tighter() is None  # nothing left to tighten
    assert Bounds(string=None, items=None).tighter() is None
