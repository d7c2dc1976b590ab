import pytest

import tether
from tether.errors import ConfigError, OutputInvalid
from tether.models.accumulate import Accumulator
from tether.models.base import build_request
from tether.types import (
    FinishEvent,
    Message,
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
