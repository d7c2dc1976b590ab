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
class _Piece:
    """One part being assembled from deltas."""

    kind: str  # "text" | "reasoning" | "tool_call"
    chunks: list[str] = field(default_factory=list)
    id: str = ""
    name: str = ""
    signature: str | None = None
    redacted: bool = False

    def part(self) -> Part:
        joined = "".join(self.chunks)
        if self.kind == "text":
            return TextPart(text=joined)
        if self.kind == "reasoning":
            return ReasoningPart(text=joined, signature=self.signature, redacted=self.redacted)
        return ToolCallPart(id=self.id, name=self.name, arguments=joined or "{}")


@dataclass
class Accumulator:
    """Parts come out in the order they first appeared: each reasoning block and each tool
    call (told apart by ``index``) as its own part, and each run of text between them as one,
    as a provider's plain response lists its blocks."""

    pieces: dict[tuple[str, int], _Piece] = field(default_factory=dict)
    usage: Usage | None = None
    finish_reason: FinishReason | None = None
    provider_id: str | None = None

    def _piece(self, kind: str, index: int) -> _Piece:
        piece = self.pieces.get((kind, index))
        if piece is None:  # not setdefault: that would build a throwaway piece per delta
            piece = self.pieces[kind, index] = _Piece(kind)
        return piece

    def add(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta):
            last = next(reversed(self.pieces.values()), None)
            if last is None or last.kind != "text":
                last = self._piece("text", len(self.pieces))
            last.chunks.append(event.text)
        elif isinstance(event, ToolCallDelta):
            call = self._piece("tool_call", event.index)
            call.id = event.id or call.id
            call.name = event.name or call.name
            call.chunks.append(event.arguments)
        elif isinstance(event, ReasoningDelta):
            block = self._piece("reasoning", event.index)
            block.chunks.append(event.text)
            block.signature = event.signature or block.signature
            block.redacted = block.redacted or event.redacted
        elif isinstance(event, UsageEvent):
            self.usage = event.usage
        elif isinstance(event, FinishEvent):
            self.finish_reason = event.finish_reason
            self.provider_id = event.provider_id or self.provider_id

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None and self.usage is not None

    def response(self, model: str) -> Response:
        parts = [piece.part() for piece in self.pieces.values()]
        return Response(
            message=Message(role="assistant", content=parts),
            finish_reason=self.finish_reason or "stop",
            usage=self.usage or Usage(),
            model=model,
            provider_id=self.provider_id,
        )
