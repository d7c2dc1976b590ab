"""The openai adapter against recorded wire fixtures built from OpenAI's documented payloads.

Each test answers the SDK from a readable fixture under fixtures/openai through an
``httpx2.MockTransport`` and checks both directions: what the adapter sent (the request
JSON) and what it made of the answer (text, tool calls, usage, cost, errors).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx2
import openai
import openai._exceptions
import pytest

from tether.errors import (
    AuthError,
    BadRequest,
    ConfigError,
    ContextTooLong,
    MalformedResponse,
    ProviderError,
    RateLimited,
    Timeout,
    Unavailable,
    UnsupportedParameter,
)
from tether.models.base import ProviderModel
from tether.models.middleware.fallback import Fallback
from tether.models.middleware.retry import Retry
from tether.models.openai import OpenAIProvider, failures, map_error
from tether.types import (
    FinishEvent,
    ImagePart,
    Message,
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

FIXTURES = Path(__file__).parent / "fixtures" / "openai"
API_KEY = "sk-test-wire-0123456789abcdef"
OFFICIAL_URL = "https://api.openai.com/v1/chat/completions"
GATEWAY = "http://gateway.test/v1"
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a location",
    parameters={
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
)
# gpt-4.1-mini in pricing.toml, USD per million tokens
INPUT, CACHED, OUTPUT = 0.40, 0.10, 1.60


def recorded(name: str) -> httpx2.Response:
    """A recorded JSON answer: status, headers and a JSON (or, when malformed, text) body."""
    data = json.loads((FIXTURES / name).read_text("utf-8"))
    body = json.dumps(data["json"]).encode() if "json" in data else data["text"].encode()
    return httpx2.Response(data["status"], headers=data["headers"], content=body)


def streamed(name: str) -> httpx2.Response:
    """A recorded server-sent event stream, sent exactly as stored."""
    body = (FIXTURES / name).read_bytes()
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)


class Wire:
    """Answers each request with the next queued response and keeps what the adapter sent."""

    def __init__(self, *answers: httpx2.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx2.Request] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        assert request.method == "POST"
        assert request.url.path.endswith("/chat/completions")
        assert self.answers, f"unexpected extra request: {request.content!r}"
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    @property
    def sent(self) -> dict[str, Any]:
        """The JSON body of the one request made."""
        assert len(self.requests) == 1, f"{len(self.requests)} requests were made"
        body: dict[str, Any] = json.loads(self.requests[0].content)
        return body


ModelFactory = Callable[..., ProviderModel]


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    return API_KEY


@pytest.fixture
async def openai_model() -> AsyncIterator[ModelFactory]:
    """Builds a ProviderModel whose SDK client talks to a Wire instead of the network."""
    clients: list[httpx2.AsyncClient] = []

    def build(wire: Wire, name: str = "gpt-4.1-mini", **options: Any) -> ProviderModel:
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(wire.handle))
        clients.append(client)
        return ProviderModel(OpenAIProvider(name, {"http_client": client, **options}))

    yield build
    for client in clients:
        await client.aclose()


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


def final(events: list[StreamEvent]) -> Response:
    last = events[-1]
    assert isinstance(last, ResponseEvent), f"the stream ended with {last!r}"
    assert sum(isinstance(e, ResponseEvent) for e in events) == 1
    return last.response


# -- what the adapter sends ------------------------------------------------------------------


async def test_plain_completion(openai_model: ModelFactory) -> None:
    wire = Wire(recorded("completion_text.json"))
    response = await openai_model(wire).agenerate("Say hello", max_tokens=50)

    request = wire.requests[0]
    assert str(request.url) == OFFICIAL_URL
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert wire.sent == {
        "model": "gpt-4.1-mini",
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_completion_tokens": 50,
    }
    assert response.text == "Hello! How can I assist you today?"
    assert response.message == Message.assistant("Hello! How can I assist you today?")
    assert response.finish_reason == "stop"
    assert response.tool_calls == []
    assert response.usage == Usage(input_tokens=19, output_tokens=10)
    assert response.cost_usd == pytest.approx((19 * INPUT + 10 * OUTPUT) / 1e6, rel=1e-12)
    assert response.cost_usd == pytest.approx(0.0000236, rel=1e-12)
    assert response.model == "openai:gpt-4.1-mini"
    assert response.provider_id == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
    assert response.latency_s > 0


async def test_sampling_params_are_sent_as_given(openai_model: ModelFactory) -> None:
    wire = Wire(recorded("completion_text.json"))
    await openai_model(wire).agenerate(
        "Say hello", system="Be brief.", temperature=0.3, top_p=0.9, seed=42, stop=["\n"]
    )
    assert wire.sent == {
        "model": "gpt-4.1-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ],
        "temperature": 0.3,
        "top_p": 0.9,
        "seed": 42,
        "stop": ["\n"],
    }


async def test_compatible_endpoint_gets_max_tokens(
    openai_model: ModelFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a compatible server needs no OpenAI key, and knows max_tokens, not max_completion_tokens
    monkeypatch.delenv("OPENAI_API_KEY")
    wire = Wire(recorded("completion_text.json"))
    model = openai_model(wire, "smollm2", base_url=GATEWAY)
    response = await model.agenerate("Say hello", max_tokens=16)

    assert str(wire.requests[0].url) == f"{GATEWAY}/chat/completions"
    assert wire.sent["max_tokens"] == 16
    assert "max_completion_tokens" not in wire.sent
    assert wire.sent["model"] == "smollm2"
    assert response.text == "Hello! How can I assist you today?"


async def test_named_tool_choice_and_tool_calls(openai_model: ModelFactory) -> None:
    wire = Wire(recorded("completion_tool_calls.json"))
    response = await openai_model(wire).agenerate(
        "Weather in Paris and Bogotá?", tools=[WEATHER], tool_choice="get_weather"
    )

    assert wire.sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a location",
                "parameters": WEATHER.parameters,
            },
        }
    ]
    assert wire.sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert response.finish_reason == "tool_calls"
    assert response.text == ""
    assert response.tool_calls == [
        ToolCallPart(
            id="call_DdmO9pD3xa9XTPNJ32zg2hcA",
            name="get_weather",
            arguments='{"location":"Paris, France"}',
        ),
        ToolCallPart(
            id="call_ABkq5V6FnIzPjt4tNGHKmaqF",
            name="get_weather",
            arguments='{"location":"Bogotá, Colombia"}',
        ),
    ]
    assert [c.args() for c in response.tool_calls] == [
        {"location": "Paris, France"},
        {"location": "Bogotá, Colombia"},
    ]
    assert response.usage == Usage(input_tokens=82, output_tokens=47)
    assert response.cost_usd == pytest.approx((82 * INPUT + 47 * OUTPUT) / 1e6, rel=1e-12)


WEATHER_SCHEMA = WEATHER.parameters


@pytest.mark.parametrize(
    ("tool", "strict"),
    [
        (WEATHER.model_dump(), None),
        ({"type": "function", "function": {"name": "get_weather",
          "description": WEATHER.description, "parameters": WEATHER_SCHEMA, "strict": True}}, True),
        ({"type": "function", "name": "get_weather", "description": WEATHER.description,
          "parameters": WEATHER_SCHEMA, "strict": False}, False),
        ({"name": "get_weather", "description": WEATHER.description,
          "input_schema": WEATHER_SCHEMA}, None),
    ],
    ids=["tether", "chat completions", "responses", "anthropic"],
)  # fmt: skip
async def test_each_providers_tool_shape_is_sent_as_a_function(
    openai_model: ModelFactory, tool: dict[str, Any], strict: bool | None
) -> None:
    wire = Wire(recorded("completion_tool_calls.json"))
    response = await openai_model(wire).agenerate("Weather?", tools=[tool])
    function = {"name": "get_weather", "description": WEATHER.description}
    function["parameters"] = WEATHER_SCHEMA  # never lost, whatever the shape it came in
    if strict is not None:
        function["strict"] = strict
    assert wire.sent["tools"] == [{"type": "function", "function": function}]
    assert response.tool_calls[0].name == "get_weather"


@pytest.mark.parametrize(
    "tool",
    [
        {"name": "get_weather", "input_schema": WEATHER_SCHEMA, "input_examples": [{}]},
        {"type": "web_search_20250305", "name": "web_search"},
        {"type": "function", "function": {"name": "f"}, "strict": True},
        {"name": "f", "parameters": {}, "input_schema": {}},
        {"description": "no name"},
    ],
)
async def test_a_tool_of_no_known_shape_is_refused_before_sending(
    openai_model: ModelFactory, tool: dict[str, Any]
) -> None:
    wire = Wire()
    with pytest.raises(
        ConfigError, match=r"or Anthropic's \{name, description, input_schema"
    ) as caught:
        await openai_model(wire).agenerate("Weather?", tools=[tool])
    assert str(sorted(tool)) in str(caught.value)
    assert wire.requests == []


async def test_a_tool_with_a_wrong_value_is_a_config_error(openai_model: ModelFactory) -> None:
    tools = [WEATHER, {"name": "f", "parameters": "none"}]
    with pytest.raises(ConfigError, match=r"tools\[1\]: parameters: input should be a valid dict"):
        await openai_model(Wire()).agenerate("hi", tools=tools)


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
async def test_plain_tool_choices_are_sent_as_strings(
    openai_model: ModelFactory, choice: str
) -> None:
    wire = Wire(recorded("completion_tool_calls.json"))
    await openai_model(wire).agenerate("Weather?", tools=[WEATHER], tool_choice=choice)
    assert wire.sent["tool_choice"] == choice


async def test_cached_and_reasoning_usage_and_cost(openai_model: ModelFactory) -> None:
    wire = Wire(recorded("completion_cached_reasoning.json"))
    response = await openai_model(wire).agenerate("When does the contract renew?")

    assert response.usage == Usage(
        input_tokens=2006, output_tokens=300, cached_tokens=1920, reasoning_tokens=192
    )
    # by hand: 86 fresh input tokens at 0.40, 1920 cached at 0.10, 300 output at 1.60 (the
    # 192 reasoning tokens are part of the 300): 34.4 + 192.0 + 480.0 = 706.4 per million
    assert response.cost_usd == pytest.approx(0.0007064, rel=1e-12)
    assert response.cost_usd == pytest.approx(
        (86 * INPUT + 1920 * CACHED + 300 * OUTPUT) / 1e6, rel=1e-12
    )


async def test_refusal(openai_model: ModelFactory) -> None:
    wire = Wire(recorded("completion_refusal.json"))
    response = await openai_model(wire).agenerate("Help me pick a lock")
    assert response.finish_reason == "refusal"
    assert response.text == "I'm sorry, I can't assist with that request."
    assert response.usage == Usage(input_tokens=24, output_tokens=12)


@pytest.mark.parametrize(
    ("budget", "effort"), [(0, "minimal"), (1000, "low"), (5000, "medium"), (20000, "high")]
)
async def test_reasoning_budget_becomes_reasoning_effort(
    openai_model: ModelFactory, budget: int, effort: str
) -> None:
    wire = Wire(recorded("completion_text.json"))
    await openai_model(wire, "o4-mini").agenerate(
        "Think, then say hello", reasoning_budget=budget, max_tokens=400
    )
    assert wire.sent == {
        "model": "o4-mini",
        "messages": [{"role": "user", "content": "Think, then say hello"}],
        "max_completion_tokens": 400,
        "reasoning_effort": effort,
    }


async def test_reasoning_budget_is_refused_where_unsupported(
    openai_model: ModelFactory,
) -> None:
    wire = Wire()
    with pytest.raises(UnsupportedParameter, match="reasoning_budget"):
        await openai_model(wire, "gpt-4.1-mini").agenerate("hi", reasoning_budget=1000)
    assert wire.requests == []


@pytest.mark.parametrize("param", [{"temperature": 0.2}, {"top_p": 0.5}, {"stop": ["x"]}])
async def test_sampling_params_on_reasoning_model_are_unsupported(
    openai_model: ModelFactory, param: dict[str, Any]
) -> None:
    wire = Wire()
    (name,) = param
    with pytest.raises(UnsupportedParameter, match=name) as caught:
        await openai_model(wire, "o4-mini").agenerate("hi", **param)
    assert "o4-mini" in str(caught.value)
    assert wire.requests == []


async def test_missing_api_key_names_the_variable(
    openai_model: ModelFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    wire = Wire(recorded("completion_text.json"))
    with pytest.raises(AuthError, match="OPENAI_API_KEY"):
        await openai_model(wire).agenerate("hi")
    assert wire.requests == []


async def test_endpoint_key_comes_from_its_api_key_env(
    openai_model: ModelFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_KEY", "gw-secret-123456")
    wire = Wire(recorded("completion_text.json"))
    await openai_model(wire, "m", base_url=GATEWAY, api_key_env="GATEWAY_KEY").agenerate("hi")
    assert wire.requests[0].headers["authorization"] == "Bearer gw-secret-123456"

    monkeypatch.delenv("GATEWAY_KEY")
    with pytest.raises(AuthError, match="GATEWAY_KEY"):
        await openai_model(Wire(), "m", base_url=GATEWAY, api_key_env="GATEWAY_KEY").agenerate("hi")


async def test_tool_results_and_images_on_the_wire(openai_model: ModelFactory) -> None:
    conversation = [
        Message.system("You are terse."),
        Message(
            role="user",
            content=[
                TextPart(text="What is in these images?"),
                ImagePart(url="https://example.com/cat.png"),
                ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
            ],
        ),
        Message(
            role="assistant",
            content=[
                TextPart(text="Let me look that up."),
                ToolCallPart(id="call_1", name="lookup", arguments='{"q":"cat"}'),
                ToolCallPart(id="call_2", name="lookup", arguments='{"q":"dog"}'),
            ],
        ),
        Message(
            role="tool",
            content=[
                *Message.tool_result("call_1", "a cat").content,
                *Message.tool_result("call_2", "no dog found", is_error=True).content,
            ],
        ),
    ]
    wire = Wire(recorded("completion_text.json"))
    await openai_model(wire).agenerate(conversation)

    assert wire.sent["messages"] == [
        {"role": "system", "content": "You are terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these images?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me look that up.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q":"cat"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"q":"dog"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
        {"role": "tool", "tool_call_id": "call_2", "content": "no dog found"},
    ]


async def test_images_are_refused_by_an_endpoint_without_vision(
    openai_model: ModelFactory,
) -> None:
    wire = Wire()
    message = Message(role="user", content=[ImagePart(url="https://example.com/cat.png")])
    with pytest.raises(UnsupportedParameter, match="images"):
        await openai_model(wire, "smollm2", base_url=GATEWAY).agenerate(message)
    assert wire.requests == []


# -- streams ---------------------------------------------------------------------------------


async def test_stream_accumulates_to_the_plain_response(openai_model: ModelFactory) -> None:
    wire = Wire(streamed("stream_text.sse"))
    events = await collect(openai_model(wire).astream("Say hello", max_tokens=50))

    assert wire.sent == {
        "model": "gpt-4.1-mini",
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_completion_tokens": 50,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == ["Hello", "!", " How", " can", " I", " assist", " you", " today", "?"]
    assert [e.type for e in events[-3:]] == ["usage", "finish", "response"]
    usage_event, finish_event = events[-3], events[-2]
    assert isinstance(usage_event, UsageEvent)
    assert usage_event.usage == Usage(input_tokens=19, output_tokens=10)
    assert isinstance(finish_event, FinishEvent)
    assert finish_event.finish_reason == "stop"

    plain = await openai_model(Wire(recorded("completion_text.json"))).agenerate("Say hello")
    streamed_response = final(events)
    assert streamed_response.message == plain.message
    assert streamed_response.usage == plain.usage
    assert streamed_response.usage.estimated is False
    assert streamed_response.finish_reason == plain.finish_reason
    assert streamed_response.cost_usd == plain.cost_usd
    assert streamed_response.provider_id == plain.provider_id
    assert streamed_response.model == plain.model == "openai:gpt-4.1-mini"


async def test_streamed_tool_calls_accumulate_by_index(openai_model: ModelFactory) -> None:
    wire = Wire(streamed("stream_tool_calls.sse"))
    events = await collect(
        openai_model(wire).astream("Weather?", tools=[WEATHER], tool_choice="get_weather")
    )

    assert wire.sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    pieces = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [p.index for p in pieces] == [0] * 8 + [1] * 9
    assert pieces[0].id == "call_DdmO9pD3xa9XTPNJ32zg2hcA"
    assert pieces[0].name == "get_weather"
    assert all(p.id is None and p.name is None for p in pieces[1:8])
    assert "".join(p.arguments for p in pieces if p.index == 1) == (
        '{"location":"Bogotá, Colombia"}'
    )

    plain = await openai_model(Wire(recorded("completion_tool_calls.json"))).agenerate(
        "Weather?", tools=[WEATHER], tool_choice="get_weather"
    )
    response = final(events)
    assert response.message == plain.message
    assert response.usage == plain.usage == Usage(input_tokens=82, output_tokens=47)
    assert response.finish_reason == plain.finish_reason == "tool_calls"
    assert [c.args() for c in response.tool_calls] == [
        {"location": "Paris, France"},
        {"location": "Bogotá, Colombia"},
    ]


async def test_streamed_refusal_matches_the_plain_refusal(openai_model: ModelFactory) -> None:
    events = await collect(
        openai_model(Wire(streamed("stream_refusal.sse"))).astream("Help me pick a lock")
    )
    plain = await openai_model(Wire(recorded("completion_refusal.json"))).agenerate(
        "Help me pick a lock"
    )
    response = final(events)
    assert response.message == plain.message
    assert response.finish_reason == plain.finish_reason == "refusal"
    assert response.usage == plain.usage


async def test_cut_stream_is_unavailable_after_its_first_deltas(
    openai_model: ModelFactory,
) -> None:
    seen: list[StreamEvent] = []
    with pytest.raises(Unavailable, match="ended before"):
        async for event in openai_model(Wire(streamed("stream_cut.sse"))).astream("Say hello"):
            seen.append(event)
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["Hello", "!", " How"]
    assert not any(isinstance(e, ResponseEvent | UsageEvent | FinishEvent) for e in seen)


async def test_broken_sse_line_is_malformed_and_not_retried(openai_model: ModelFactory) -> None:
    seen: list[StreamEvent] = []
    wire = Wire(streamed("stream_broken.sse"), streamed("stream_text.sse"))
    with pytest.raises(MalformedResponse, match="asking again will not help") as caught:
        async for event in Retry(openai_model(wire), backoff=0).astream("hi"):
            seen.append(event)
    assert seen == [TextDelta(text="Hello")]
    assert not caught.value.retryable
    assert isinstance(caught.value.__cause__, ValueError)
    assert caught.value.excerpt.endswith('"delta": {"content": "!"')  # the broken event
    assert len(wire.requests) == 1


CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
NO_CHOICES = {**CHUNK, "choices": None}
UNNUMBERED_CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
NO_INDEX = {**CHUNK, "choices": [{"index": 0, "delta": {"tool_calls": [UNNUMBERED_CALL]}}]}


@pytest.mark.parametrize(("chunk", "says"), [(NO_CHOICES, "NoneType"), (NO_INDEX, "index")])
async def test_a_chunk_of_the_wrong_shape_is_malformed(
    openai_model: ModelFactory, chunk: dict[str, Any], says: str
) -> None:
    sse = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n"
    reply = httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=sse)
    with pytest.raises(MalformedResponse, match=says) as caught:
        await collect(openai_model(Wire(reply)).astream("Weather?"))
    assert (caught.value.model, caught.value.provider) == ("openai:gpt-4.1-mini", "openai")
    assert caught.value.excerpt.startswith('{"id": "chatcmpl-1"')


# -- errors ----------------------------------------------------------------------------------

ERRORS = [
    ("error_429_retry_after.json", RateLimited, 429, 7.0),
    ("error_429_retry_after_ms.json", RateLimited, 429, 1.5),
    ("error_401.json", AuthError, 401, None),
    ("error_400_context_length.json", ContextTooLong, 400, None),
    ("error_400_invalid_value.json", BadRequest, 400, None),
    ("error_404_model_not_found.json", BadRequest, 404, None),
    ("error_500.json", Unavailable, 500, None),
    ("error_503.json", Unavailable, 503, None),
]


@pytest.mark.parametrize("stream", [False, True], ids=["call", "stream"])
@pytest.mark.parametrize(("fixture", "expected", "status", "wait"), ERRORS)
async def test_error_mapping(
    openai_model: ModelFactory,
    fixture: str,
    expected: type[ProviderError],
    status: int,
    wait: float | None,
    stream: bool,
) -> None:
    wire = Wire(recorded(fixture))
    model = openai_model(wire)
    with pytest.raises(ProviderError) as caught:
        if stream:
            await collect(model.astream("hi"))
        else:
            await model.agenerate("hi")
    error = caught.value
    assert type(error) is expected
    assert error.status == status
    assert error.retry_after == wait
    assert error.model == "openai:gpt-4.1-mini"
    assert error.provider == "openai"
    assert error.retryable is (expected in (RateLimited, Unavailable))
    assert isinstance(error.__cause__, openai.APIStatusError)
    # the provider's own explanation reaches the user
    provider_message = json.loads((FIXTURES / fixture).read_text("utf-8"))["json"]["error"]
    assert provider_message["message"] in str(error)
    assert len(wire.requests) == 1  # the SDK's own retries are off: tether's middleware retries


async def test_malformed_json_body_is_not_retried(openai_model: ModelFactory) -> None:
    wire = Wire(recorded("malformed.json"), recorded("completion_text.json"))
    with pytest.raises(MalformedResponse, match="tether could not read") as caught:
        await Retry(openai_model(wire), backoff=0).agenerate("hi")
    assert isinstance(caught.value.__cause__, ValueError)
    assert caught.value.excerpt.startswith('{"id": "chatcmpl-C5Malformed')
    assert "OpenAI-compatible" in str(caught.value)
    assert len(wire.requests) == 1  # the same body would come back: no second call is paid for


NO_LOGPROB = {"message": {"content": "hi"}, "logprobs": {"content": [{"token": "hi"}]}}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"id": "chatcmpl-1", "object": "chat.completion", "choices": []}, "no choices"),
        ({"id": "chatcmpl-1", "choices": [NO_LOGPROB]}, "TokenLogprob\nlogprob"),
    ],
)
async def test_a_body_of_the_wrong_shape_is_malformed(
    openai_model: ModelFactory, body: dict[str, Any], says: str
) -> None:
    with pytest.raises(MalformedResponse, match=says) as caught:
        await openai_model(Wire(httpx2.Response(200, json=body))).agenerate("hi")
    assert caught.value.excerpt.startswith('{"id": "chatcmpl-1"')


async def test_a_body_that_is_not_json_is_malformed(openai_model: ModelFactory) -> None:
    page = httpx2.Response(200, headers={"content-type": "text/html"}, text="<html>login</html>")
    with pytest.raises(MalformedResponse) as caught:
        await openai_model(Wire(page)).agenerate("hi")
    assert caught.value.excerpt == "<html>login</html>"


async def test_a_failure_in_tethers_own_code_is_not_a_provider_error(
    openai_model: ModelFactory,
) -> None:
    # a sync client where the SDK wants an async one: its TypeError surfaces as itself, not
    # as an outage to retry and hand to the fallback
    model = ProviderModel(OpenAIProvider("gpt-4.1-mini", {"http_client": httpx2.Client()}))
    backup = Wire(recorded("completion_text.json"))
    guarded = Fallback([Retry(model, backoff=0), openai_model(backup)])
    with pytest.raises(TypeError, match="http_client"):
        await guarded.agenerate("hi")
    with pytest.raises(TypeError, match="http_client"):
        await collect(guarded.astream("hi"))
    assert backup.requests == []


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (httpx2.ReadTimeout("timed out"), Timeout),
        (httpx2.ConnectTimeout("timed out"), Timeout),
        (httpx2.ConnectError("connection refused"), Unavailable),
        (httpx2.RemoteProtocolError("server disconnected"), Unavailable),
    ],
)
async def test_transport_failures(
    openai_model: ModelFactory, failure: Exception, expected: type[ProviderError]
) -> None:
    with pytest.raises(ProviderError) as caught:
        await openai_model(Wire(failure)).agenerate("hi")
    assert type(caught.value) is expected
    assert caught.value.retryable


# -- every SDK exception is mapped -----------------------------------------------------------

REQUEST = httpx2.Request("POST", OFFICIAL_URL)
BODY = {"message": "boom", "type": "server_error", "param": None, "code": None}


def _status_of(cls: type[BaseException]) -> int:
    status = getattr(cls, "status_code", None)
    return status if isinstance(status, int) else 500


def build(cls: type[BaseException]) -> BaseException:
    """An instance of an SDK exception, through its constructor when the arguments are known."""
    response = httpx2.Response(_status_of(cls), request=REQUEST, json={"error": BODY})
    known: dict[str, Any] = {
        "message": "boom",
        "request": REQUEST,
        "response": response,
        "body": BODY,
        "unsent_messages": [],
    }
    try:
        signature = inspect.signature(cls.__init__)
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for name, param in list(signature.parameters.items())[1:]:
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if name not in known:
                if param.default is param.empty:
                    raise TypeError(f"no value for {name}")
                continue
            if param.kind == param.KEYWORD_ONLY:
                kwargs[name] = known[name]
            else:
                args.append(known[name])
        return cls(*args, **kwargs)
    except TypeError:
        error = cls.__new__(cls)
        BaseException.__init__(error, "boom")
        for name in ("message", "request", "response", "body"):
            setattr(error, name, known[name])
        error.status_code = response.status_code  # type: ignore[attr-defined]
        return error


def sdk_exceptions() -> list[type[BaseException]]:
    import openai._exceptions

    found: dict[str, type[BaseException]] = {}
    for namespace in (vars(openai), vars(openai._exceptions)):
        for value in list(namespace.values()):
            if isinstance(value, type) and issubclass(value, openai.OpenAIError):
                found[value.__qualname__] = value
    for base in (httpx2.TimeoutException, httpx2.TransportError):
        found[base.__qualname__] = base
        for value in list(vars(httpx2).values()):
            if isinstance(value, type) and issubclass(value, base):
                found[value.__qualname__] = value
    return [found[name] for name in sorted(found)]


def test_the_walk_finds_the_sdk_exceptions() -> None:
    names = {cls.__name__ for cls in sdk_exceptions()}
    assert {
        "OpenAIError", "APIError", "APIStatusError", "APIConnectionError", "APITimeoutError",
        "RateLimitError", "AuthenticationError", "BadRequestError", "NotFoundError",
        "InternalServerError", "APIResponseValidationError", "ReadTimeout", "ConnectError",
        "RemoteProtocolError",
    } <= names  # fmt: skip


@pytest.mark.parametrize("cls", sdk_exceptions(), ids=lambda cls: cls.__name__)
def test_every_sdk_exception_is_mapped(cls: type[BaseException]) -> None:
    error = build(cls)
    assert isinstance(error, cls)
    assert isinstance(error, failures()), f"{cls.__name__} would not reach map_error"
    mapped = map_error(error, "openai:gpt-4.1-mini")  # type: ignore[arg-type]
    assert isinstance(mapped, ProviderError), f"{cls.__name__} -> {type(mapped).__name__}"
    assert type(mapped) is not ProviderError, (
        f"{cls.__module__}.{cls.__qualname__} falls through to the bare ProviderError: map it "
        "in tether.models.openai.map_error"
    )
    assert mapped.model == "openai:gpt-4.1-mini"
    assert str(mapped)


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        (openai.APITimeoutError, Timeout),
        (openai.APIConnectionError, Unavailable),
        (openai.RateLimitError, RateLimited),
        (openai.AuthenticationError, AuthError),
        (openai.PermissionDeniedError, AuthError),
        (openai._exceptions.SubjectTokenProviderError, AuthError),
        (openai.BadRequestError, BadRequest),
        (openai.NotFoundError, BadRequest),
        (openai.ConflictError, BadRequest),
        (openai.UnprocessableEntityError, BadRequest),
        (openai.InternalServerError, Unavailable),
        (openai.APIResponseValidationError, MalformedResponse),
        (openai.APIError, Unavailable),  # an error event mid-stream
        (openai.LengthFinishReasonError, BadRequest),
        (httpx2.ReadTimeout, Timeout),
        (httpx2.ConnectError, Unavailable),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_sdk_exceptions_map_to_the_specific_error(
    cls: type[BaseException], expected: type[ProviderError]
) -> None:
    mapped = map_error(build(cls), "openai:gpt-4.1-mini")  # type: ignore[arg-type]
    assert type(mapped) is expected


def test_a_compatible_server_is_not_priced_as_openai() -> None:
    official = ProviderModel(OpenAIProvider("gpt-4.1-mini"))
    elsewhere = ProviderModel(OpenAIProvider("gpt-4.1-mini", {"base_url": "http://127.0.0.1:9/v1"}))
    assert official._price is not None
    assert elsewhere._price is None


# -- log-probabilities -------------------------------------------------------------------------


async def test_logprobs_are_asked_for_and_read_back(openai_model: ModelFactory) -> None:
    wire = Wire(recorded("completion_logprobs.json"))
    response = await openai_model(wire).agenerate("Classify: refund please", logprobs=2)
    assert wire.sent["logprobs"] is True
    assert wire.sent["top_logprobs"] == 2
    assert response.logprobs is not None
    assert "".join(t.token for t in response.logprobs) == response.text
    assert (response.logprobs[3].token, response.logprobs[3].logprob) == ("ref", -0.2231)
    assert response.logprobs[3].top == [("ref", -0.2231), ("card", -1.6094)]


async def test_an_answer_without_logprobs_gives_none(openai_model: ModelFactory) -> None:
    wire = Wire(recorded("completion_text.json"))
    response = await openai_model(wire).agenerate("Say hello", logprobs=0)
    assert wire.sent["logprobs"] is True and "top_logprobs" not in wire.sent
    assert response.logprobs is None  # the answer carried none ("logprobs": null)


async def test_logprobs_are_refused_for_reasoning_models_and_streams(
    openai_model: ModelFactory,
) -> None:
    with pytest.raises(UnsupportedParameter, match="reasoning models return no logprobs"):
        await openai_model(Wire(), name="o3-mini").agenerate("Hi", logprobs=1)
    with pytest.raises(UnsupportedParameter, match="use generate"):
        await collect(openai_model(Wire()).astream("Hi", logprobs=1))


async def test_classify_takes_its_confidence_from_the_label_tokens(
    openai_model: ModelFactory,
) -> None:
    import math

    from tether.structured import aclassify

    wire = Wire(recorded("completion_logprobs.json"))
    result = await aclassify("refund please", ["card_lost", "refund"], model=openai_model(wire))
    assert wire.sent["logprobs"] is True
    assert wire.sent["response_format"]["type"] == "json_schema"
    assert result.label == "refund"
    assert result.source == "logprobs"
    # "ref" and "und" spell the label, '","' closes it; the self-reported 0.9 is not used
    assert result.confidence == pytest.approx(math.exp(-0.2231 - 0.0002 - 0.00003))


async def test_structured_output_streams_partial_objects_then_the_object(
    openai_model: ModelFactory,
) -> None:
    from pydantic import BaseModel

    from tether.structured import Partial, astream

    class Receipt(BaseModel):
        company: str
        date: str
        total: float

    wire = Wire(streamed("stream_output.sse"))
    items = [item async for item in astream(openai_model(wire), "Extract it", Receipt)]
    *partials, final = items
    assert final == Receipt(company="ACME SDN BHD", date="12/03/2018", total=45.6)
    assert all(isinstance(p, Partial[Receipt]) for p in partials)
    companies = [p.company for p in partials]
    assert companies[:5] == ["", "AC", "ACME", "ACME SDN", "ACME SDN BHD"]  # it grows
    assert (partials[0].date, partials[0].total) == (None, None)
    assert partials[-1].model_dump() == final.model_dump()
    assert wire.sent["stream"] is True
    spec = wire.sent["response_format"]["json_schema"]
    assert spec["strict"] is True and spec["schema"]["additionalProperties"] is False


# -- strict schemas ----------------------------------------------------------------------------


def answer_with(content: str) -> httpx2.Response:
    """The recorded plain completion, with ``content`` as the assistant's text."""
    data = json.loads((FIXTURES / "completion_text.json").read_text("utf-8"))
    data["json"]["choices"][0]["message"]["content"] = content
    return httpx2.Response(data["status"], headers=data["headers"], json=data["json"])


async def test_strict_schema_keeps_fields_named_like_keywords(openai_model: ModelFactory) -> None:
    from typing import Literal

    from pydantic import BaseModel, Field

    class Setting(BaseModel):
        default: str = "on"  # a field named like the keyword, with a default of its own
        required: bool
        type: Literal["flag", "value"]
        properties: list[str] = Field(default_factory=list, examples=[["default"]])

    class Config(BaseModel):
        name: str
        setting: Setting
        default: Setting | None = None

    answer = {
        "name": "beta",
        "setting": {"default": "off", "required": True, "type": "flag", "properties": ["a"]},
        "default": None,
    }
    wire = Wire(answer_with(json.dumps(answer)))
    config = await openai_model(wire).agenerate("Configure", output=Config, strategy="native")

    assert config == Config.model_validate(answer)
    spec = wire.sent["response_format"]["json_schema"]
    assert spec["strict"] is True
    assert spec["schema"] == {
        "$defs": {
            "Setting": {
                "properties": {
                    "default": {"type": "string", "title": "Default"},
                    "required": {"title": "Required", "type": "boolean"},
                    "type": {"enum": ["flag", "value"], "title": "Type", "type": "string"},
                    "properties": {
                        "type": "array",
                        "items": {"type": "string"},
                        "examples": [["default"]],  # data, not a schema: kept as it is
                        "title": "Properties",
                    },
                },
                "required": ["default", "required", "type", "properties"],
                "title": "Setting",
                "type": "object",
                "additionalProperties": False,
            }
        },
        "properties": {
            "name": {"title": "Name", "type": "string"},
            "setting": {"$ref": "#/$defs/Setting"},
            "default": {"anyOf": [{"$ref": "#/$defs/Setting"}, {"type": "null"}]},
        },
        "required": ["name", "setting", "default"],
        "title": "Config",
        "type": "object",
        "additionalProperties": False,
    }
