"""The Anthropic adapter against wire fixtures built from Anthropic's documented payloads.

A fake Messages endpoint (an ``httpx2.MockTransport`` handler) checks the body the adapter
sent, then plays a recorded reply: JSON bodies and SSE streams from fixtures/anthropic/.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Literal

import anthropic
import httpx2
import pytest
from pydantic import BaseModel

import tether.structured
from tether import errors
from tether.models.anthropic import (
    AnthropicProvider,
    build_params,
    failures,
    finish_reason,
    map_error,
    to_response,
)
from tether.models.base import Model, ProviderModel
from tether.models.http import retry_after
from tether.models.middleware.fallback import Fallback
from tether.models.middleware.retry import Retry
from tether.types import (
    FinishEvent,
    ImagePart,
    Message,
    OutputSchema,
    Params,
    ReasoningDelta,
    ReasoningPart,
    Request,
    Response,
    ResponseEvent,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    ToolSpec,
    Usage,
    UsageEvent,
)

# The SDK warns that claude-sonnet-4-5 is deprecated; the pricing table still lists it.
pytestmark = pytest.mark.filterwarnings("ignore:The model 'claude-sonnet-4-5':DeprecationWarning")

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
MODEL = "claude-sonnet-4-5"
BASE_URL = "https://api.anthropic.test"
KEY = "sk-ant-test-key"
WEATHER = ToolSpec(
    name="get_weather",
    description="Get the current weather in a given location",
    parameters={
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["location"],
    },
)

Reply = httpx2.Response | Exception
Check = Callable[[dict[str, Any]], None]


def json_reply(name: str, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    body = (FIXTURES / name).read_bytes()
    return httpx2.Response(
        status, content=body, headers={"content-type": "application/json", **(headers or {})}
    )


def sse_reply(name: str) -> Reply:
    body = (FIXTURES / name).read_bytes()
    return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})


class FakeAnthropic:
    """A fake Messages endpoint: checks each request, then plays the next queued reply."""

    def __init__(self, replies: list[Reply], check: Check | None) -> None:
        self.replies = replies
        self.check = check
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.headers: list[httpx2.Headers] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        assert request.url.path in ("/v1/messages", "/v1/messages/count_tokens")
        self.paths.append(request.url.path)
        self.headers.append(request.headers)
        sent_key = request.headers.get("x-api-key") or request.headers.get("authorization")
        assert sent_key in (KEY, f"Bearer {KEY}")
        body = json.loads(request.content)
        self.bodies.append(body)
        if self.check is not None:
            self.check(body)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def provider(self, name: str = MODEL, **options: Any) -> AnthropicProvider:
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(self))
        options = {"http_client": client, "base_url": BASE_URL, **options}
        return AnthropicProvider(name, options)

    def model(self, name: str = MODEL, **options: Any) -> ProviderModel:
        return ProviderModel(self.provider(name, **options))


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("TETHER_HOME", str(tmp_path / ".tether"))  # no stray secrets file


@pytest.fixture
def fake() -> Iterator[Callable[..., FakeAnthropic]]:
    """Make fake endpoints; fail the test when one keeps a reply nobody asked for."""
    made: list[FakeAnthropic] = []

    def make(*replies: Reply, check: Check | None = None) -> FakeAnthropic:
        made.append(FakeAnthropic(list(replies), check))
        return made[-1]

    yield make
    for endpoint in made:
        assert not endpoint.replies, f"unplayed replies: {endpoint.replies}"


async def collect(stream: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in stream]


def final(events: list[StreamEvent]) -> Any:
    last = events[-1]
    assert isinstance(last, ResponseEvent)
    return last.response


def comparable(response: Any) -> dict[str, Any]:
    return response.model_dump(exclude={"latency_s"})  # type: ignore[no-any-return]


# -- plain calls and request mapping -----------------------------------------------------


async def test_plain_text(fake: Callable[..., FakeAnthropic]) -> None:
    def check(body: dict[str, Any]) -> None:
        assert body == {
            "model": MODEL,
            "max_tokens": 4096,  # Anthropic requires it; tether's default
            "system": "Be brief.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
        }

    model = fake(json_reply("message_text.json"), check=check).model()
    response = await model.agenerate("Hello", system="Be brief.")
    assert response.text == "Hello! How can I help you today?"
    assert response.finish_reason == "stop"
    assert response.usage == Usage(input_tokens=12, output_tokens=10)
    assert response.provider_id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert response.model == "anthropic:claude-sonnet-4-5"
    assert response.cost_usd == pytest.approx((12 * 3.0 + 10 * 15.0) / 1e6, rel=1e-12)


async def test_conversation_maps_to_anthropic_turns(fake: Callable[..., FakeAnthropic]) -> None:
    messages = [
        Message.system("You are a weather bot."),
        Message.system("Answer in one line."),
        Message.user("Weather in SF?"),
        Message(
            role="user",
            content=[
                ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
                ImagePart(url="https://example.com/sky.jpg"),
                ImagePart(url="data:image/jpeg;base64,/9j/4AAQ"),
            ],
        ),
        Message(
            role="assistant",
            content=[
                ReasoningPart(text="The user wants weather.", signature="sig-1"),
                ReasoningPart(text="", signature="redacted-blob", redacted=True),
                ReasoningPart(text="unsigned reasoning from another provider"),
                TextPart(text="Checking."),
                ToolCallPart(id="toolu_1", name="get_weather", arguments='{"location": "SF"}'),
            ],
        ),
        Message.tool_result("toolu_1", "15 degrees, fog"),
        Message.user("And tomorrow?"),
    ]
    expected = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in SF?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/sky.jpg"}},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "The user wants weather.", "signature": "sig-1"},
                {"type": "redacted_thinking", "data": "redacted-blob"},
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"location": "SF"},
                },
            ],
        },
        {
            "role": "user",  # the tool result travels in a user turn, merged with the next one
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "15 degrees, fog"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]

    def check(body: dict[str, Any]) -> None:
        assert body["system"] == "You are a weather bot.\n\nAnswer in one line."
        assert body["messages"] == expected
        assert body["stop_sequences"] == ["\n\nHuman:"]
        assert body["max_tokens"] == 300
        assert "temperature" not in body

    model = fake(json_reply("message_text.json"), check=check).model()
    params = Params(stop=["\n\nHuman:"], max_tokens=300)
    await model.request(Request(messages=messages, params=params))


async def test_forced_tool_call(fake: Callable[..., FakeAnthropic]) -> None:
    def check(body: dict[str, Any]) -> None:
        assert body["tools"] == [
            {
                "name": "get_weather",
                "description": "Get the current weather in a given location",
                "input_schema": WEATHER.parameters,
            }
        ]
        assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}

    model = fake(json_reply("message_tool_use.json"), check=check).model()
    response = await model.agenerate("Weather in SF?", tools=[WEATHER], tool_choice="get_weather")
    assert response.finish_reason == "tool_calls"
    assert response.text == "I'll check the current weather in San Francisco for you."
    [call] = response.tool_calls
    assert call.id == "toolu_01A09q90qw90lq917835lq9"
    assert call.name == "get_weather"
    assert call.args() == {"location": "San Francisco, CA", "unit": "celsius"}


@pytest.mark.parametrize(
    ("tool", "strict"),
    [
        ({"name": "get_weather", "description": WEATHER.description,
          "input_schema": WEATHER.parameters, "strict": True}, True),
        ({"type": "function", "function": {"name": "get_weather",
          "description": WEATHER.description, "parameters": WEATHER.parameters}}, None),
        ({"type": "function", "name": "get_weather", "description": WEATHER.description,
          "parameters": WEATHER.parameters, "strict": False}, False),
        (WEATHER.model_dump(), None),
    ],
    ids=["anthropic", "chat completions", "responses", "tether"],
)  # fmt: skip
async def test_each_providers_tool_shape_reaches_anthropic_with_its_schema(
    fake: Callable[..., FakeAnthropic], tool: dict[str, Any], strict: bool | None
) -> None:
    expected: dict[str, Any] = {
        "name": "get_weather",
        "description": WEATHER.description,
        "input_schema": WEATHER.parameters,
    }
    if strict is not None:
        expected["strict"] = strict

    def check(body: dict[str, Any]) -> None:
        assert body["tools"] == [expected]

    model = fake(json_reply("message_tool_use.json"), check=check).model()
    response = await model.agenerate("Weather in SF?", tools=[tool])
    assert response.tool_calls[0].name == "get_weather"


async def test_an_unknown_tool_shape_is_refused_naming_the_shapes(
    fake: Callable[..., FakeAnthropic],
) -> None:
    server_tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
    with pytest.raises(errors.ConfigError, match="a tool must be tether's") as caught:
        await fake().model().agenerate("hi", tools=[server_tool])
    assert "['max_uses', 'name', 'type']" in str(caught.value)


@pytest.mark.parametrize(
    ("choice", "wire"),
    [("auto", {"type": "auto"}), ("none", {"type": "none"}), ("required", {"type": "any"})],
)
async def test_tool_choice_mapping(
    fake: Callable[..., FakeAnthropic], choice: str, wire: dict[str, str]
) -> None:
    def check(body: dict[str, Any]) -> None:
        assert body["tool_choice"] == wire

    model = fake(json_reply("message_tool_use.json"), check=check).model()
    await model.agenerate("Weather in SF?", tools=[WEATHER], tool_choice=choice)


def test_tool_results_lead_their_user_turn() -> None:
    messages = [
        Message(role="assistant", content=[ToolCallPart(id="toolu_1", name="get_weather")]),
        Message.user("Here is what the tool said:"),
        Message.tool_result("toolu_1", "no such city", is_error=True),
    ]
    wire = build_params(Request(messages=messages), MODEL)["messages"]
    assert wire[1] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_1",
                "content": "no such city",
                "is_error": True,
            },
            {"type": "text", "text": "Here is what the tool said:"},
        ],
    }


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "refusal"),
        (None, "stop"),
    ],
)
def test_finish_reasons(stop_reason: str | None, expected: str) -> None:
    assert finish_reason(stop_reason) == expected


async def test_max_tokens_stop_reason_is_length(fake: Callable[..., FakeAnthropic]) -> None:
    model = fake(json_reply("message_max_tokens.json")).model()
    response = await model.agenerate("List primes", max_tokens=8)
    assert response.finish_reason == "length"


# -- thinking ------------------------------------------------------------------------------


async def test_thinking(fake: Callable[..., FakeAnthropic]) -> None:
    def check(body: dict[str, Any]) -> None:
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
        assert body["max_tokens"] == 2048 + 4096  # room for the answer after the budget

    model = fake(json_reply("message_thinking.json"), check=check).model()
    response = await model.agenerate("What is 27 * 453?", reasoning_budget=2048)
    reasoning, text = response.message.content
    assert isinstance(reasoning, ReasoningPart)
    assert reasoning.text.startswith("Let me solve this step by step")
    assert reasoning.signature == "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds..."
    assert text == TextPart(text="27 * 453 = 12,231")
    assert response.usage.reasoning_tokens == 150
    assert response.usage.output_tokens == 210


async def test_streamed_thinking_matches_plain(fake: Callable[..., FakeAnthropic]) -> None:
    def check(body: dict[str, Any]) -> None:
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
        assert body["max_tokens"] == 2000

    endpoint = fake(
        json_reply("message_thinking.json"), sse_reply("stream_thinking.sse"), check=check
    )
    model = endpoint.model()
    plain = await model.agenerate("What is 27 * 453?", reasoning_budget=1024, max_tokens=2000)
    events = await collect(
        model.astream("What is 27 * 453?", reasoning_budget=1024, max_tokens=2000)
    )
    assert endpoint.bodies[1]["stream"] is True
    assert any(isinstance(e, ReasoningDelta) and e.signature for e in events)
    assert comparable(final(events)) == comparable(plain)


async def test_interleaved_thinking_blocks_stream_into_the_same_parts(
    fake: Callable[..., FakeAnthropic],
) -> None:
    endpoint = fake(json_reply("message_interleaved.json"), sse_reply("stream_interleaved.sse"))
    model = endpoint.model()
    plain = await model.agenerate("Weather in Paris?", reasoning_budget=1024, max_tokens=2000)
    streamed = final(
        await collect(model.astream("Weather in Paris?", reasoning_budget=1024, max_tokens=2000))
    )
    assert comparable(streamed) == comparable(plain)
    kinds = [(p.type, getattr(p, "signature", None)) for p in streamed.message.content]
    assert kinds == [
        ("reasoning", "sig-first"),
        ("reasoning", "EmwKAhgBEgy3va3pzix/LafPsn4a"),
        ("tool_call", None),
        ("reasoning", "sig-second"),
        ("text", None),
    ]
    # replayed to Anthropic on the next turn, each block goes back as it came
    blocks = build_params(Request(messages=[Message.user("q"), streamed.message]), "m")
    sent = blocks["messages"][1]["content"]
    assert [b["type"] for b in sent] == [
        "thinking", "redacted_thinking", "tool_use", "thinking", "text",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"reasoning_budget": 500}, "minimum thinking budget of 1024"),
        ({"reasoning_budget": 2048, "max_tokens": 2048}, "set max_tokens above 2048"),
    ],
)
async def test_thinking_rules_raise_unsupported(
    fake: Callable[..., FakeAnthropic], params: dict[str, Any], says: str
) -> None:
    model = fake().model()
    with pytest.raises(errors.UnsupportedParameter, match=says):
        await model.agenerate("hi", **params)


def test_thinking_cannot_force_a_tool() -> None:
    params = Params(reasoning_budget=2048, tool_choice="get_weather")
    request = Request(messages=[Message.user("hi")], tools=[WEATHER], params=params)
    with pytest.raises(errors.UnsupportedParameter, match="cannot force a tool"):
        build_params(request, MODEL)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"seed": 7}, "'seed'; Anthropic's Messages API has no seed parameter"),
        # anthropic-version 2026-10-21 answers 400 to sampling parameters, even at defaults
        ({"temperature": 1.0}, "'temperature'; Anthropic API version 2026-10-21"),
        ({"top_p": 0.9}, "'top_p'; Anthropic API version 2026-10-21"),
    ],
)
async def test_unsupported_parameters(
    fake: Callable[..., FakeAnthropic], params: dict[str, Any], says: str
) -> None:
    model = fake().model()
    with pytest.raises(errors.UnsupportedParameter, match=says):
        await model.agenerate("hi", **params)


# -- structured output (forced tool use) ---------------------------------------------------


class WeatherReport(BaseModel):
    location: str
    unit: Literal["celsius", "fahrenheit"]
    temperature: float


REPORT = OutputSchema(name="WeatherReport", schema=WeatherReport.model_json_schema())
REPORT_JSON = '{"location": "San José, CA", "unit": "celsius", "temperature": 18.5}'
OUTPUT_TOOL = {
    "name": "WeatherReport",
    "description": "Give the answer as this tool's input.",
    "input_schema": WeatherReport.model_json_schema(),
}


def report_request(**params: Any) -> Request:
    return Request(messages=[Message.user("Weather in San José?")], output=REPORT, **params)


async def test_output_is_a_forced_tool(fake: Callable[..., FakeAnthropic]) -> None:
    def check(body: dict[str, Any]) -> None:
        assert body["tools"] == [OUTPUT_TOOL]
        assert body["tool_choice"] == {"type": "tool", "name": "WeatherReport"}
        assert "thinking" not in body and "output_config" not in body

    model = fake(json_reply("message_output.json"), check=check).model(structured_output="tool")
    response = await model.request(report_request())
    assert response.text == REPORT_JSON  # the JSON, as OpenAI's and local models give it
    assert response.message.content == [TextPart(text=REPORT_JSON)]
    assert response.tool_calls == []
    assert response.finish_reason == "stop"
    assert response.usage == Usage(input_tokens=531, output_tokens=64)


async def test_streamed_output_matches_plain(fake: Callable[..., FakeAnthropic]) -> None:
    endpoint = fake(json_reply("message_output.json"), sse_reply("stream_output.sse"))
    model = endpoint.model(structured_output="tool")
    plain = await model.request(report_request())
    events = await collect(model.request_stream(report_request()))
    pieces = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(pieces) > 2  # the input_json_delta pieces, as they came
    assert "".join(pieces) == REPORT_JSON
    assert not any(isinstance(e, ToolCallDelta) for e in events)
    assert [e.finish_reason for e in events if isinstance(e, FinishEvent)] == ["stop"]
    assert comparable(final(events)) == comparable(plain)


@pytest.mark.parametrize(
    ("reply", "stream"),
    [(json_reply("message_output.json"), False), (sse_reply("stream_output.sse"), True)],
)
async def test_structured_generate_through_the_adapter(
    fake: Callable[..., FakeAnthropic], reply: Reply, stream: bool
) -> None:
    def check(body: dict[str, Any]) -> None:
        assert body["tools"] == [OUTPUT_TOOL]
        assert body["tool_choice"] == {"type": "tool", "name": "WeatherReport"}
        assert body.get("stream", False) is stream

    provider_model = fake(reply, check=check).model(structured_output="tool")
    model = Streamed(provider_model) if stream else provider_model
    report = await tether.structured.agenerate(
        model, "Weather in San José?", WeatherReport, strategy="native"
    )
    assert report == WeatherReport(location="San José, CA", unit="celsius", temperature=18.5)


class Streamed(Model):
    """Answers plain requests through the stream, as the accumulated Response."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner
        self.id = inner.id

    async def request(self, request: Request) -> Response:
        response: Response = final(await collect(self.inner.request_stream(request)))
        return response

    def request_stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        return self.inner.request_stream(request)


async def test_output_keeps_other_tools_as_tool_calls(fake: Callable[..., FakeAnthropic]) -> None:
    def check(body: dict[str, Any]) -> None:
        weather = {
            "name": "get_weather",
            "description": WEATHER.description,
            "input_schema": WEATHER.parameters,
        }
        assert body["tools"] == [weather, OUTPUT_TOOL]
        assert body["tool_choice"] == {"type": "tool", "name": "WeatherReport"}

    model = fake(json_reply("message_tool_use.json"), check=check).model(structured_output="tool")
    response = await model.request(report_request(tools=[WEATHER]))
    [call] = response.tool_calls  # get_weather is not the output tool: it stays a call
    assert call.name == "get_weather"
    assert response.finish_reason == "tool_calls"


def test_output_tool_response_mapping() -> None:
    body = json.loads((FIXTURES / "message_tool_use.json").read_text())
    message = anthropic.types.Message.model_validate(body)
    as_output = to_response(message, "anthropic:x", output="get_weather")
    assert as_output.text == (
        "I'll check the current weather in San Francisco for you."
        '{"location": "San Francisco, CA", "unit": "celsius"}'
    )
    assert as_output.tool_calls == [] and as_output.finish_reason == "stop"
    as_call = to_response(message, "anthropic:x")
    assert len(as_call.tool_calls) == 1 and as_call.finish_reason == "tool_calls"


async def test_output_with_thinking_is_unsupported_as_a_forced_tool(
    fake: Callable[..., FakeAnthropic],
) -> None:
    request = report_request(params=Params(reasoning_budget=2048))
    with pytest.raises(errors.UnsupportedParameter, match="cannot force a tool while thinking"):
        build_params(request, MODEL, {"structured_output": "tool"})
    model = fake().model(structured_output="tool")  # nothing is sent
    with pytest.raises(errors.UnsupportedParameter, match="strategy='repair'"):
        await tether.structured.agenerate(
            model, "hi", WeatherReport, strategy="native", reasoning_budget=2048
        )


async def test_auto_strategy_with_thinking_falls_back_to_repair(
    fake: Callable[..., FakeAnthropic],
) -> None:
    def check(body: dict[str, Any]) -> None:
        assert "tools" not in body and "tool_choice" not in body
        assert "JSON schema" in body["system"]
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}

    model = fake(json_reply("message_thinking.json"), check=check).model(structured_output="tool")
    with (
        pytest.warns(
            UserWarning,
            match="cannot force a tool while thinking.*falling back to strategy='repair'",
        ),
        pytest.raises(errors.OutputInvalid),  # the recorded reply is no WeatherReport
    ):
        await tether.structured.agenerate(
            model, "hi", WeatherReport, attempts=1, reasoning_budget=2048
        )


def test_output_name_clashing_with_a_tool_is_unsupported() -> None:
    output = OutputSchema(name="get_weather", schema=WeatherReport.model_json_schema())
    request = Request(messages=[Message.user("hi")], tools=[WEATHER], output=output)
    with pytest.raises(errors.UnsupportedParameter, match="rename one"):
        build_params(request, MODEL, {"structured_output": "tool"})


@pytest.mark.parametrize(
    ("options", "native"),
    [
        ({}, True),
        ({"json_schema": False}, False),
        ({"tools": False}, True),  # output_config.format needs no tools
        ({"tools": False, "structured_output": "tool"}, False),
    ],
)
async def test_json_schema_capability(
    fake: Callable[..., FakeAnthropic], options: dict[str, Any], native: bool
) -> None:
    assert ("native" in AnthropicProvider(MODEL, options).capabilities().structured) is native
    if not native:
        model = fake().model(**options)
        with pytest.raises(errors.UnsupportedParameter, match="strategy='repair'"):
            await model.request(report_request())


# -- usage and cost ------------------------------------------------------------------------


async def test_cache_usage_and_cost(fake: Callable[..., FakeAnthropic]) -> None:
    model = fake(json_reply("message_cached.json")).model()
    response = await model.agenerate("When does the contract renew?")
    assert response.usage == Usage(
        input_tokens=100 + 20000 + 1000,
        output_tokens=500,
        cached_tokens=20000,
        cache_write_tokens=1000,
    )
    # claude-sonnet-4-5: input 3, cached 0.30, cache write 3.75, output 15 USD per million
    expected = (100 * 3.0 + 20000 * 0.30 + 1000 * 3.75 + 500 * 15.0) / 1e6
    assert expected == pytest.approx(0.01755, rel=1e-12)
    assert response.cost_usd == pytest.approx(0.01755, rel=1e-12)


# -- streaming -----------------------------------------------------------------------------


async def test_stream_text_with_ping_and_cache_usage(fake: Callable[..., FakeAnthropic]) -> None:
    def check(body: dict[str, Any]) -> None:
        assert body["stream"] is True
        assert body["max_tokens"] == 4096

    model = fake(sse_reply("stream_text.sse"), check=check).model()
    events = await collect(model.astream("Hello"))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello", "! How can I help?"]
    [usage] = [e for e in events if isinstance(e, UsageEvent)]
    assert usage.usage == Usage(
        input_tokens=25 + 2000 + 1000, output_tokens=15, cached_tokens=2000, cache_write_tokens=1000
    )
    [finish] = [e for e in events if isinstance(e, FinishEvent)]
    assert finish.finish_reason == "stop"
    assert finish.provider_id == "msg_01StreamText000001"
    response = final(events)
    assert response.text == "Hello! How can I help?"
    expected = (25 * 3.0 + 2000 * 0.30 + 1000 * 3.75 + 15 * 15.0) / 1e6
    assert response.cost_usd == pytest.approx(expected, rel=1e-12)


async def test_streamed_tool_call_matches_plain(fake: Callable[..., FakeAnthropic]) -> None:
    endpoint = fake(json_reply("message_tool_use.json"), sse_reply("stream_tool_use.sse"))
    model = endpoint.model()
    plain = await model.agenerate("Weather in SF?", tools=[WEATHER], tool_choice="auto")
    events = await collect(model.astream("Weather in SF?", tools=[WEATHER], tool_choice="auto"))
    pieces = [e for e in events if isinstance(e, ToolCallDelta)]
    assert {p.index for p in pieces} == {1}  # the content block index
    assert pieces[0].id == "toolu_01A09q90qw90lq917835lq9"
    assert pieces[0].name == "get_weather"
    assert len(pieces) > 2
    assert comparable(final(events)) == comparable(plain)


async def test_server_and_mcp_tool_blocks_stream_as_the_plain_call_reads_them(
    fake: Callable[..., FakeAnthropic],
) -> None:
    # web search and an MCP server run at Anthropic: their blocks stream input JSON too, but
    # only the tool_use block is a call for the caller to make
    endpoint = fake(json_reply("message_server_tools.json"), sse_reply("stream_server_tools.sse"))
    model = endpoint.model()
    plain = await model.agenerate("When was Claude Shannon born?", tools=[WEATHER])
    events = await collect(model.astream("When was Claude Shannon born?", tools=[WEATHER]))
    pieces = [e for e in events if isinstance(e, ToolCallDelta)]
    assert {p.index for p in pieces} == {8}  # the tool_use block; not 1 (web search) or 6 (MCP)
    streamed = final(events)
    assert comparable(streamed) == comparable(plain)
    assert streamed.message.content == [
        TextPart(
            text="I'll search for when Claude Shannon was born.Based on the search results, "
            "Claude Shannon was born on April 30, 1916, in Petoskey, Michigan. Let me ask the "
            "echo server, then check the weather there."
        ),
        ToolCallPart(
            id="toolu_01A09q90qw90lq917835lq9",
            name="get_weather",
            arguments='{"location": "Petoskey, MI"}',
        ),
    ]
    assert streamed.finish_reason == "tool_calls"


def test_sync_twins(fake: Callable[..., FakeAnthropic]) -> None:
    model = fake(json_reply("message_text.json"), sse_reply("stream_text.sse")).model()
    assert model.generate("hi").text == "Hello! How can I help you today?"
    events = list(model.stream("hi"))
    assert final(events).text == "Hello! How can I help?"


async def test_stream_cut_before_message_stop(fake: Callable[..., FakeAnthropic]) -> None:
    model = fake(sse_reply("stream_cut.sse")).model()
    with pytest.raises(errors.Unavailable, match="ended before the provider finished") as caught:
        await collect(model.astream("hi"))
    assert caught.value.retryable


async def test_error_event_mid_stream(fake: Callable[..., FakeAnthropic]) -> None:
    model = fake(sse_reply("stream_error.sse")).model()
    with pytest.raises(errors.Unavailable, match="Overloaded") as caught:
        await collect(model.astream("hi"))
    assert caught.value.provider == "anthropic"
    assert caught.value.model == "anthropic:claude-sonnet-4-5"
    assert isinstance(caught.value.__cause__, anthropic.APIStatusError)


class DroppedStream(httpx2.AsyncByteStream):
    """Sends the start of a stream, then loses the connection."""

    def __init__(self, head: bytes) -> None:
        self.head = head

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        raise httpx2.ReadError("connection reset by peer")


async def test_connection_dropped_mid_stream(fake: Callable[..., FakeAnthropic]) -> None:
    head = (FIXTURES / "stream_cut.sse").read_bytes()
    reply = httpx2.Response(
        200, headers={"content-type": "text/event-stream"}, stream=DroppedStream(head)
    )
    model = fake(reply).model()
    with pytest.raises(errors.Unavailable) as caught:
        await collect(model.astream("hi"))
    assert isinstance(caught.value.__cause__, httpx2.ReadError)


# -- errors over the wire ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "fixture", "headers", "expected", "retry"),
    [
        (429, "error_rate_limit.json", {"retry-after": "17"}, errors.RateLimited, 17.0),
        (529, "error_overloaded.json", {}, errors.Unavailable, None),
        (500, "error_api.json", {}, errors.Unavailable, None),
        (401, "error_authentication.json", {}, errors.AuthError, None),
        (403, "error_permission.json", {}, errors.AuthError, None),
        (400, "error_prompt_too_long.json", {}, errors.ContextTooLong, None),
        (400, "error_invalid_request.json", {}, errors.BadRequest, None),
        (404, "error_not_found.json", {}, errors.BadRequest, None),
    ],
)
async def test_http_errors(
    fake: Callable[..., FakeAnthropic],
    status: int,
    fixture: str,
    headers: dict[str, str],
    expected: type[errors.ProviderError],
    retry: float | None,
) -> None:
    model = fake(json_reply(fixture, status, headers), json_reply(fixture, status, headers))
    for call in (model.model().agenerate, lambda p: collect(model.model().astream(p))):
        with pytest.raises(expected) as caught:
            await call("hi")
        error = caught.value
        assert type(error) is expected
        assert (error.status, error.retry_after) == (status, retry)
        assert (error.model, error.provider) == ("anthropic:claude-sonnet-4-5", "anthropic")
        assert isinstance(error.__cause__, anthropic.APIStatusError)


async def test_error_messages_say_what_to_do(fake: Callable[..., FakeAnthropic]) -> None:
    model = fake(
        json_reply("error_authentication.json", 401),
        json_reply("error_not_found.json", 404),
        json_reply("error_prompt_too_long.json", 400),
    ).model()
    with pytest.raises(errors.AuthError, match="ANTHROPIC_API_KEY"):
        await model.agenerate("hi")
    with pytest.raises(errors.BadRequest, match="does not know the model 'claude-sonnet-4-5'"):
        await model.agenerate("hi")
    with pytest.raises(errors.ContextTooLong, match=r"215000 tokens > 200000.*shorten the prompt"):
        await model.agenerate("hi")


async def test_missing_api_key(
    fake: Callable[..., FakeAnthropic], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    model = fake().model()
    with pytest.raises(errors.AuthError, match="ANTHROPIC_API_KEY") as caught:
        await model.agenerate("hi")
    assert caught.value.provider == "anthropic"
    with pytest.raises(errors.AuthError, match="ANTHROPIC_API_KEY"):
        await collect(model.astream("hi"))


async def test_api_key_env_option(
    fake: Callable[..., FakeAnthropic], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.setenv("WORK_CLAUDE_KEY", KEY)
    model = fake(json_reply("message_text.json")).model(api_key_env="WORK_CLAUDE_KEY")
    assert (await model.agenerate("hi")).text


async def test_malformed_json_body_is_not_retried(fake: Callable[..., FakeAnthropic]) -> None:
    model = Retry(fake(json_reply("malformed.json")).model(), backoff=0)  # one reply only
    with pytest.raises(errors.MalformedResponse, match="asking again will not help") as caught:
        await model.agenerate("hi")
    assert not caught.value.retryable
    assert caught.value.excerpt.startswith('{"id": "msg_01Broken"')
    assert isinstance(caught.value.__cause__, json.JSONDecodeError)


async def test_non_json_body(fake: Callable[..., FakeAnthropic]) -> None:
    # The SDK hands back a plain str when the body is not JSON.
    reply = httpx2.Response(
        200, content=b"<html>gateway</html>", headers={"content-type": "text/html"}
    )
    model = fake(reply).model()
    with pytest.raises(errors.MalformedResponse, match="expected a Message, got str") as caught:
        await model.agenerate("hi")
    assert caught.value.excerpt == "<html>gateway</html>"
    assert caught.value.provider == "anthropic"


async def test_a_stream_event_of_the_wrong_shape_is_malformed(
    fake: Callable[..., FakeAnthropic],
) -> None:
    # message_start without its message: the SDK builds the event unvalidated
    sse = 'event: message_start\ndata: {"type": "message_start"}\n\n'
    reply = httpx2.Response(
        200, content=sse.encode(), headers={"content-type": "text/event-stream"}
    )
    with pytest.raises(errors.MalformedResponse, match="AttributeError") as caught:
        await collect(fake(reply).model().astream("hi"))
    assert caught.value.excerpt == '{"message": null, "type": "message_start"}'  # as the SDK saw it


async def test_a_failure_in_tethers_own_code_is_not_a_provider_error(
    fake: Callable[..., FakeAnthropic],
) -> None:
    # a sync client where the SDK wants an async one: its TypeError surfaces as itself, not
    # as an outage to retry and hand to the fallback
    broken = ProviderModel(AnthropicProvider(MODEL, {"http_client": httpx2.Client()}))
    backup = fake()  # never asked
    guarded = Fallback([Retry(broken, backoff=0), backup.model()])
    with pytest.raises(TypeError, match="http_client"):
        await guarded.agenerate("hi")
    with pytest.raises(TypeError, match="http_client"):
        await collect(guarded.astream("hi"))
    assert backup.bodies == []


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (httpx2.ReadTimeout("timed out"), errors.Timeout),
        (httpx2.ConnectError("connection refused"), errors.Unavailable),
    ],
)
async def test_transport_errors(
    fake: Callable[..., FakeAnthropic], raised: Exception, expected: type[errors.ProviderError]
) -> None:
    model = fake(raised).model()
    with pytest.raises(expected) as caught:
        await model.agenerate("hi")
    assert caught.value.retryable


async def test_a_long_call_the_sdk_refuses_unless_streamed_is_streamed(
    fake: Callable[..., FakeAnthropic],
) -> None:
    # The SDK raises a bare ValueError before sending a call this long; tether streams it.
    endpoint = fake(sse_reply("stream_text.sse"), check=lambda body: body["stream"])
    response = await endpoint.model().agenerate("hi", max_tokens=64000)
    assert response.text


def test_a_value_error_the_sdk_raises_before_sending_is_a_bad_request() -> None:
    refused = map_error(ValueError("Streaming is required for operations..."), "anthropic:x")
    assert type(refused) is errors.BadRequest and "stream the call" in str(refused)
    other = map_error(ValueError("unexpected keyword"), "anthropic:x")
    assert type(other) is errors.BadRequest and "provider options" in str(other)


def test_retry_after_forms() -> None:
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"retry-after-ms": "1500", "retry-after": "3"}) == 1.5
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    seconds = retry_after({"retry-after": later})
    assert seconds is not None
    assert 25 <= seconds <= 30


# -- every SDK exception is mapped ---------------------------------------------------------


def sdk_exception_classes() -> list[type[anthropic.AnthropicError]]:
    return sorted(
        {
            value
            for value in vars(anthropic).values()
            if inspect.isclass(value) and issubclass(value, anthropic.AnthropicError)
        },
        key=lambda cls: cls.__name__,
    )


def build(cls: type[anthropic.AnthropicError]) -> anthropic.AnthropicError:
    """An instance of any SDK exception, from a minimal request and response."""
    request = httpx2.Request("POST", f"{BASE_URL}/v1/messages")
    code = getattr(cls, "status_code", None)
    if not isinstance(code, int):
        code = 500 if issubclass(cls, anthropic.InternalServerError) else 418
    response = httpx2.Response(code, request=request, headers={"retry-after": "2"})
    if issubclass(cls, anthropic.APIStatusError):
        return cls("boom", response=response, body=None)
    if issubclass(cls, anthropic.APIResponseValidationError):
        return cls(response, None)
    if issubclass(cls, anthropic.APITimeoutError):
        return cls(request)
    if issubclass(cls, anthropic.APIConnectionError):
        return cls(request=request)
    if issubclass(cls, anthropic.APIError):
        return cls("boom", request, body=None)
    try:
        return cls("boom")
    except TypeError:
        return cls.__new__(cls)


def test_sdk_exception_list_is_complete() -> None:
    names = {cls.__name__ for cls in sdk_exception_classes()}
    assert {"RateLimitError", "OverloadedError", "CredentialsError", "APITimeoutError"} <= names
    assert len(names) > 40


@pytest.mark.parametrize("cls", sdk_exception_classes(), ids=lambda cls: cls.__name__)
def test_every_sdk_exception_is_mapped(cls: type[anthropic.AnthropicError]) -> None:
    raised = build(cls)
    assert isinstance(raised, failures()), f"{cls.__name__} would not reach map_error"
    error = map_error(raised, "anthropic:claude-sonnet-4-5")
    assert isinstance(error, errors.ProviderError)
    assert type(error) is not errors.ProviderError, f"{cls.__name__} is not mapped"
    assert error.provider == "anthropic"
    assert error.model == "anthropic:claude-sonnet-4-5"
    assert str(error).startswith("anthropic:claude-sonnet-4-5: ")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("RateLimitError", errors.RateLimited),
        ("RampLimitExceededError", errors.RateLimited),
        ("ContractSpendLimitReachedError", errors.AuthError),
        ("OverloadedError", errors.Unavailable),
        ("InternalServerError", errors.Unavailable),
        ("ServiceUnavailableError", errors.Unavailable),
        ("GatewayTimeoutError", errors.Unavailable),
        ("APITimeoutError", errors.Timeout),
        ("RequestTimeoutError", errors.Timeout),
        ("APIConnectionError", errors.Unavailable),
        ("AuthenticationError", errors.AuthError),
        ("PermissionDeniedError", errors.AuthError),
        ("PaymentRequiredError", errors.AuthError),
        ("CredentialsError", errors.AuthError),
        ("BadRequestError", errors.BadRequest),
        ("NotFoundError", errors.BadRequest),
        ("ConflictError", errors.BadRequest),
        ("UnprocessableEntityError", errors.BadRequest),
        ("APIResponseValidationError", errors.MalformedResponse),
        ("APIError", errors.MalformedResponse),
    ],
)
def test_sdk_exception_mapping(name: str, expected: type[errors.ProviderError]) -> None:
    exc = build(getattr(anthropic, name))
    error = map_error(exc, "anthropic:claude-sonnet-4-5")
    assert type(error) is expected
    if isinstance(exc, anthropic.RateLimitError) and expected is errors.RateLimited:
        assert error.retry_after == 2.0


def test_unreadable_bodies_map_to_malformed_response() -> None:
    assert type(map_error(json.JSONDecodeError("x", "{", 1), "anthropic:x")) is (
        errors.MalformedResponse
    )
    assert map_error(json.JSONDecodeError("Expecting value", "{", 1), "anthropic:x").excerpt == "{"


def test_tether_errors_pass_through() -> None:
    original = errors.RateLimited("slow down", retry_after=1.0)
    assert map_error(original, "anthropic:x") is original


# -- the module itself ---------------------------------------------------------------------


def test_import_does_not_load_the_sdk() -> None:
    code = "import sys, tether.models.anthropic; assert 'anthropic' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_one_client_per_event_loop() -> None:
    provider = AnthropicProvider(MODEL, {"base_url": BASE_URL})

    async def client_pair() -> tuple[object, object]:
        return provider._client(), provider._client()

    first, again = asyncio.run(client_pair())
    other, _ = asyncio.run(client_pair())
    assert first is again
    assert first is not other


def test_capabilities() -> None:
    caps = AnthropicProvider(MODEL).capabilities()
    assert "seed" not in caps.params
    assert caps.reasoning and caps.vision and caps.tools
    assert caps.context_window == 200_000
    wide = AnthropicProvider(MODEL, {"context_window": 1_000_000})
    assert wide.capabilities().context_window == 1_000_000


# -- the token count endpoint ----------------------------------------------------------------


async def test_count_tokens_sends_the_prompt_to_the_count_endpoint(
    fake: Callable[..., FakeAnthropic],
) -> None:
    endpoint = fake(json_reply("count_tokens.json"))
    messages = [Message.system("Be brief."), Message.user("Hi"), Message.user("Still there?")]
    assert await endpoint.provider().count_tokens(messages) == 2095
    assert endpoint.paths == ["/v1/messages/count_tokens"]
    assert endpoint.bodies == [
        {
            "model": MODEL,
            "system": "Be brief.",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Hi"},
                        {"type": "text", "text": "Still there?"},
                    ],
                }
            ],
        }
    ]


async def test_count_tokens_errors_are_mapped(fake: Callable[..., FakeAnthropic]) -> None:
    endpoint = fake(json_reply("error_rate_limit.json", 429, {"retry-after": "3"}))
    with pytest.raises(errors.RateLimited):
        await endpoint.provider().count_tokens([Message.user("Hi")])


def test_context_for_an_anthropic_model_is_checked_by_the_count_endpoint(
    fake: Callable[..., FakeAnthropic],
) -> None:
    from tether.prompts.context import Context
    from tether.prompts.tokens import EndpointCounter, counter_for

    assert isinstance(counter_for(f"anthropic:{MODEL}"), EndpointCounter)
    small = httpx2.Response(200, json={"input_tokens": 41})
    endpoint = fake(small)
    ctx = Context(100, model=f"anthropic:{MODEL}", counter=EndpointCounter(endpoint.provider()))
    assembly = ctx.system("Be brief.").question("Where is the lighthouse?").build()
    assert assembly.tokens == 41  # the provider's own count, not the estimate
    assert endpoint.paths == ["/v1/messages/count_tokens"]


def test_a_failing_count_endpoint_leaves_the_estimate_with_a_warning(
    fake: Callable[..., FakeAnthropic],
) -> None:
    from tether.prompts.context import Context
    from tether.prompts.tokens import EndpointCounter

    endpoint = fake(json_reply("error_overloaded.json", 529))
    ctx = Context(100, model=f"anthropic:{MODEL}", counter=EndpointCounter(endpoint.provider()))
    ctx.system("Be brief.").question("Where is the lighthouse?")
    with pytest.warns(UserWarning, match="count endpoint failed"):
        assembly = ctx.build()
    assert 0 < assembly.tokens < 100


async def test_logprobs_are_unsupported(fake: Callable[..., FakeAnthropic]) -> None:
    with pytest.raises(errors.UnsupportedParameter, match="logprobs"):
        await fake().model().agenerate("Hi", logprobs=1)


async def test_the_count_endpoint_works_from_async_code(fake: Callable[..., FakeAnthropic]) -> None:
    from tether.prompts.context import Context
    from tether.prompts.tokens import EndpointCounter

    endpoint = fake(httpx2.Response(200, json={"input_tokens": 17}))
    ctx = Context(100, model=f"anthropic:{MODEL}", counter=EndpointCounter(endpoint.provider()))
    assert ctx.system("Be brief.").question("Hi?").build().tokens == 17  # on the caller's loop


async def test_classify_through_the_forced_tool_reports_its_own_confidence(
    fake: Callable[..., FakeAnthropic],
) -> None:
    from tether.structured import aclassify

    body = json.loads((FIXTURES / "message_output.json").read_text())
    body["content"][0]["name"] = "Classification"
    body["content"][0]["input"] = {"label": "refund", "confidence": 0.72}

    def check(sent: dict[str, Any]) -> None:
        assert sent["tool_choice"] == {"type": "tool", "name": "Classification"}
        labels = sent["tools"][0]["input_schema"]["properties"]["label"]["enum"]
        assert labels == ["card_lost", "refund"]

    endpoint = fake(httpx2.Response(200, json=body), check=check)
    model = endpoint.model(structured_output="tool")
    result = await aclassify("money back please", ["card_lost", "refund"], model=model)
    assert (result.label, result.confidence, result.source) == ("refund", 0.72, "self-reported")
