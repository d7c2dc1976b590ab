"""Per-model rate limits: inside a ``limiting({...})`` block, calls to a listed model are
spaced so that no more than its requests per minute reach the provider.

The eval runner opens the block around a run (``Suite(rate_limits=...)``, ``run(...,
rate_limits=...)``, ``tether eval run --rate-limit MODEL=RPM``), so every sample shares one
budget per model however many run at once. Only real calls wait: a call answered from the
call cache or a cassette never reaches this layer. Calls are spaced evenly (one every
60 / rpm seconds), the simplest schedule that never bursts past a provider's limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextvars import ContextVar

from tether.errors import ConfigError
from tether.models.base import Model, Wrapper, closing
from tether.types import Request, Response, StreamEvent

ANY = "*"  # a limit for every model not named on its own


class RateLimiter:
    """At most ``per_minute`` starts a minute, evenly spaced, shared across threads."""

    def __init__(self, per_minute: float) -> None:
        if not per_minute > 0:
            raise ConfigError(f"a rate limit is requests per minute, above 0, not {per_minute}")
        self.per_minute = per_minute
        self.interval = 60.0 / per_minute
        self._next = 0.0
        self._lock = threading.Lock()

    async def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


Limits = Mapping[str, RateLimiter]
_active: ContextVar[Limits | None] = ContextVar("tether_rate_limits", default=None)


def limiters(per_minute: Mapping[str, float]) -> dict[str, RateLimiter]:
    """A limiter a model id (or ``*``), from requests per minute."""
    return {model: RateLimiter(rpm) for model, rpm in per_minute.items()}


@contextlib.contextmanager
def limiting(limits: Limits) -> Iterator[None]:
    token = _active.set(limits)
    try:
        yield
    finally:
        _active.reset(token)


class RateLimited(Wrapper):
    """Waits for its model's limiter, where one is active, before each call."""

    def __init__(self, inner: Model, *, alias: str | None = None) -> None:
        super().__init__(inner)
        self.names = [n for n in (alias, inner.id) if n]

    async def _wait(self) -> None:
        limits = _active.get()
        if not limits:
            return
        for name in (*self.names, ANY):
            if name in limits:
                await limits[name].wait()
                return

    async def request(self, request: Request) -> Response:
        await self._wait()
        return await self.inner.request(request)

    async def request_stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        await self._wait()
        async with closing(self.inner.request_stream(request)) as stream:
            async for event in stream:
                yield event
