"""A meter of what the model calls inside a block used and cost: the eval runner reads one
per sample, so every sample's tokens and dollars are known without asking the task."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from tether.models.base import Wrapper, closing
from tether.types import Request, Response, ResponseEvent, StreamEvent


@dataclass
class Meter:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0  # calls whose model has no price: the cost above leaves them out
    models: set[str] = field(default_factory=set)
    prompts: set[str] = field(default_factory=set)  # "name@version" of prompt files used

    def add(self, model: str, request: Request, response: Response) -> None:
        self.calls += 1
        self.models.add(model)
        name = request.metadata.get("prompt.name")
        if name is not None:
            self.prompts.add(f"{name}@{request.metadata.get('prompt.version')}")
        self.input_tokens += response.usage.input_tokens
        self.output_tokens += response.usage.output_tokens
        if response.cost_usd is None:
            self.unpriced += 1
        else:
            self.cost_usd += response.cost_usd

    @property
    def cost(self) -> float | None:
        """The total, or None when some call could not be priced."""
        return None if self.unpriced else self.cost_usd


_active: ContextVar[Meter | None] = ContextVar("tether_meter", default=None)


@contextlib.contextmanager
def metering(meter: Meter | None = None) -> Iterator[Meter]:
    """Count the model calls made inside the block (tasks started inside it count too)."""
    meter = meter or Meter()
    token = _active.set(meter)
    try:
        yield meter
    finally:
        _active.reset(token)


class MeteredModel(Wrapper):
    async def request(self, request: Request) -> Response:
        response = await self.inner.request(request)
        if (meter := _active.get()) is not None:
            meter.add(self.id, request, response)
        return response

    async def request_stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        async with closing(self.inner.request_stream(request)) as stream:
            async for event in stream:
                if isinstance(event, ResponseEvent) and (meter := _active.get()) is not None:
                    meter.add(self.id, request, event.response)
                yield event
