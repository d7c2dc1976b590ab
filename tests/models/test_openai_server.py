"""The ``openai`` provider for real, against llama-cpp-python's OpenAI-compatible server.

The server is declared as an endpoint in the test project's tether.toml and reached through
the registry (``llama:smollm2``), exactly as a user would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.models.base import Model
from tether.models.registry import model
from tether.types import (
    FinishEvent,
    ResponseEvent,
    StreamEvent,
    TextDelta,
    ToolCallPart,
    ToolSpec,
    UsageEvent,
)

PROMPT = "Name one colour."
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)


@pytest.fixture
def llama(project: Path, llama_server: str) -> Model:
    (project / "tether.toml").write_text(f'[endpoints.llama]\nbase_url = "{llama_server}"\n')
    return model("llama:smollm2")


async def test_generate(llama: Model) -> None:
    response = await llama.agenerate(PROMPT, temperature=0, max_tokens=8)

    assert response.text.strip()
    assert response.model == "llama:smollm2"
    assert response.finish_reason in ("stop", "length")
    assert response.provider_id and response.provider_id.startswith("chatcmpl-")
    usage = response.usage
    assert usage.estimated is False  # the server's own counts, not tether's estimate
    assert usage.input_tokens > 0
    assert 0 < usage.output_tokens <= 8
    assert response.latency_s > 0
    assert response.cost_usd is None  # an endpoint with no declared price is not guessed at


async def test_max_tokens_cuts_the_answer(llama: Model) -> None:
    response = await llama.agenerate(
        "Write a long story about a dragon.", temperature=0, max_tokens=4
    )
    assert response.finish_reason == "length"
    assert response.usage.output_tokens == 4


async def test_stream(llama: Model) -> None:
    events: list[StreamEvent] = [
        e async for e in llama.astream(PROMPT, temperature=0, max_tokens=8)
    ]

    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert deltas
    assert [e.type for e in events[-3:]] == ["usage", "finish", "response"]
    assert all(isinstance(e, TextDelta) for e in events[:-3])
    usage_event, finish, last = events[-3:]
    assert isinstance(usage_event, UsageEvent)
    assert isinstance(finish, FinishEvent)
    assert isinstance(last, ResponseEvent)
    response = last.response
    assert response.text == "".join(d.text for d in deltas)
    assert response.finish_reason == finish.finish_reason
    # llama.cpp's server sends no usage in streams: tether counts one token per delta
    assert usage_event.usage == response.usage
    assert response.usage.estimated is True
    assert response.usage.output_tokens == len(deltas)
    assert response.model == "llama:smollm2"


async def test_stream_and_generate_agree(llama: Model) -> None:
    plain = await llama.agenerate(PROMPT, temperature=0, seed=7, max_tokens=8)
    events = [e async for e in llama.astream(PROMPT, temperature=0, seed=7, max_tokens=8)]
    last = events[-1]
    assert isinstance(last, ResponseEvent)
    assert last.response.text == plain.text
    assert last.response.finish_reason == plain.finish_reason
    assert last.response.usage.output_tokens == plain.usage.output_tokens


async def test_forced_tool_call(llama: Model) -> None:
    response = await llama.agenerate(
        "What is the weather in Paris?",
        tools=[WEATHER],
        tool_choice="get_weather",
        temperature=0,
        max_tokens=48,
    )
    assert response.finish_reason == "tool_calls"
    (call,) = response.tool_calls
    assert isinstance(call, ToolCallPart)
    assert call.name == "get_weather"
    assert call.id
    arguments = call.args()
    assert isinstance(arguments, dict)
    assert isinstance(arguments["city"], str)


async def test_sync_generate_inside_a_running_loop(llama: Model) -> None:
    # an async test runs on an event loop: the sync twin must still work (as in Jupyter)
    response = llama.generate(PROMPT, temperature=0, max_tokens=8)
    assert response.text.strip()
    assert response.usage.input_tokens > 0
    streamed = list(llama.stream(PROMPT, temperature=0, max_tokens=8))
    last = streamed[-1]
    assert isinstance(last, ResponseEvent)
    assert last.response.text == response.text


async def test_sync_and_async_parity(llama: Model) -> None:
    asynchronous = await llama.agenerate(PROMPT, temperature=0, seed=42, max_tokens=12)
    synchronous = llama.generate(PROMPT, temperature=0, seed=42, max_tokens=12)
    assert synchronous.text == asynchronous.text
    assert synchronous.message == asynchronous.message
    assert synchronous.usage == asynchronous.usage
    assert synchronous.finish_reason == asynchronous.finish_reason
