"""Test doubles for your own tests: scripted and function models, and cassettes.

``ScriptedModel`` answers from a queue (text, Responses, tool calls, errors to raise);
``FunctionModel`` answers with a function of the Request. Both stream like real providers,
through the same accumulator, so code under test cannot tell them apart.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeAlias

from tether.models.accumulate import Accumulator
from tether.models.base import Model
from tether.models.middleware.cassette import Cassette, record, replay
from tether.types import (
    FinishEvent,
    Message,
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
    Usage,
    UsageEvent,
)

Answer: TypeAlias = str | Response | Sequence[ToolCallPart] | BaseException
AnswerFn: TypeAlias = Callable[[Request], "Answer | Awaitable[Answer]"]

_WORDS = re.compile(r"\S+\s*|\s+")


def _count(text: str) -> int:
    return len(text.split())


def to_response(
    answer: str | Response | Sequence[ToolCallPart], request: Request, model: str
) -> Response:
    """Turn a scripted answer into a Response with word-count usage (a stand-in for tokens)."""
    if isinstance(answer, Response):
        return answer.model_copy(update={"model": answer.model or model})
    prompt_words = sum(_count(m.text) for m in request.messages)
    if isinstance(answer, str):
        message = Message.assistant(answer)
        usage = Usage(input_tokens=prompt_words, output_tokens=_count(answer))
        return Response(message=message, usage=usage, model=model)
    calls = list(answer)
    usage = Usage(input_tokens=prompt_words, output_tokens=sum(_count(c.arguments) for c in calls))
    message = Message(role="assistant", content=list(calls))
    return Response(message=message, finish_reason="tool_calls", usage=usage, model=model)


def to_events(response: Response) -> list[StreamEvent]:
    """A Response as the events a provider would stream, part by part in order: word-sized
    text pieces, reasoning blocks, tool calls in two halves; then usage and finish."""
    events: list[StreamEvent] = []
    for index, part in enumerate(response.message.content):
        if isinstance(part, TextPart):
            events.extend(TextDelta(text=piece) for piece in _WORDS.findall(part.text))
        elif isinstance(part, ReasoningPart):
            events.append(
                ReasoningDelta(
                    index=index, text=part.text, signature=part.signature, redacted=part.redacted
                )
            )
        elif isinstance(part, ToolCallPart):
            half = len(part.arguments) // 2
            events.append(ToolCallDelta(index=index, id=part.id, name=part.name))
            events.append(ToolCallDelta(index=index, arguments=part.arguments[:half]))
            events.append(ToolCallDelta(index=index, arguments=part.arguments[half:]))
    events.append(UsageEvent(usage=response.usage))
    events.append(
        FinishEvent(finish_reason=response.finish_reason, provider_id=response.provider_id)
    )
    return events


class _TestModel(Model):
    def __init__(self, id: str) -> None:
        self.id = id
        self.requests: list[Request] = []

    async def _answer(self, request: Request) -> Response:
        raise NotImplementedError

    async def request(self, request: Request) -> Response:
        self.requests.append(request)
        return await self._answer(request)

    async def request_stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        response = await self._answer(request)
        acc = Accumulator()
        for event in to_events(response):
            acc.add(event)
            yield event
        yield ResponseEvent(response=acc.response(self.id))


class ScriptedModel(_TestModel):
    """Answers each call with the next item of its script; an exception item is raised.

    ``requests`` keeps every Request it received, for assertions.
    """

    def __init__(self, *script: Answer, id: str = "scripted:test") -> None:
        super().__init__(id)
        self.script = list(script)
        self.given = len(self.script)

    async def _answer(self, request: Request) -> Response:
        if not self.script:
            raise AssertionError(
                f"ScriptedModel was called {len(self.requests)} times but given "
                f"{self.given} answers; add more to its script"
            )
        answer = self.script.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return to_response(answer, request, self.id)


class FunctionModel(_TestModel):
    """Answers with ``fn(request)``, sync or async; the function may also raise."""

    def __init__(self, fn: AnswerFn, *, id: str = "function:test") -> None:
        super().__init__(id)
        self.fn = fn

    async def _answer(self, request: Request) -> Response:
        answer = self.fn(request)
        if inspect.isawaitable(answer):
            answer = await answer
        if isinstance(answer, BaseException):
            raise answer
        return to_response(answer, request, self.id)


__all__ = ["Cassette", "FunctionModel", "ScriptedModel", "record", "replay", "to_events"]
