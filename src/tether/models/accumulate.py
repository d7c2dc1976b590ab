"""Turns a stream of events into the Response a non-streaming call returns.

Every streamed call goes through this one accumulator, so streamed and plain calls cannot
disagree about text, tool calls, usage or finish reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tether.types import (
    FinishEvent,
    FinishReason,
    Message,
    Part,
    ReasoningDelta,
    ReasoningPart,
    Response,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
    UsageEvent,
)


@dataclass
class _ToolCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class Accumulator:
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    signature: str | None = None
    redacted: bool = False
    tool_calls: dict[int, _ToolCall] = field(default_factory=dict)
    usage: Usage | None = None
    finish_reason: FinishReason | None = None
    provider_id: str | None = None

    def add(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta):
            self.text.append(event.text)
        elif isinstance(event, ToolCallDelta):
            call = self.tool_calls.setdefault(event.index, _ToolCall())
            if event.id:
                call.id = event.id
            if event.name:
                call.name = event.name
            call.arguments.append(event.arguments)
        elif isinstance(event, ReasoningDelta):
            self.reasoning.append(event.text)
            if event.signature:
                self.signature = event.signature
            self.redacted = self.redacted or event.redacted
        elif isinstance(event, UsageEvent):
            self.usage = event.usage
        elif isinstance(event, FinishEvent):
            self.finish_reason = event.finish_reason
            self.provider_id = event.provider_id or self.provider_id

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None and self.usage is not None

    def response(self, model: str) -> Response:
        parts: list[Part] = []
        if self.reasoning or self.signature:
            reasoning = "".join(self.reasoning)
            parts.append(
                ReasoningPart(text=reasoning, signature=self.signature, redacted=self.redacted)
            )
        if self.text:
            parts.append(TextPart(text="".join(self.text)))
        for index in sorted(self.tool_calls):
            call = self.tool_calls[index]
            arguments = "".join(call.arguments) or "{}"
            parts.append(ToolCallPart(id=call.id, name=call.name, arguments=arguments))
        return Response(
            message=Message(role="assistant", content=parts),
            finish_reason=self.finish_reason or "stop",
            usage=self.usage or Usage(),
            model=model,
            provider_id=self.provider_id,
        )
