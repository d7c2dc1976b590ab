"""Retries with exponential backoff and full jitter, honouring the provider's Retry-After.

Only errors marked retryable (rate limits, timeouts, unavailability) are tried again; an
answer tether cannot read (MalformedResponse) would come back the same, so it is not. A
stream is retried only until its first event: after that the caller has seen output, and a
second attempt would repeat it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable

from tether.errors import ProviderError
from tether.models.base import Model, Wrapper, closing
from tether.types import Request, Response, StreamEvent

Sleep = Callable[[float], Awaitable[None]]


class Retry(Wrapper):
    def __init__(
        self,
        inner: Model,
        *,
        retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(inner)
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep

    def delay(self, attempt: int, error: ProviderError) -> float | None:
        """Seconds to wait before the next attempt, or None when waiting cannot help."""
        if not error.retryable or attempt >= self.retries:
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.max_backoff else None
        return random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))

    async def request(self, request: Request) -> Response:
        attempt = 0
        while True:
            try:
                return await self.inner.request(request)
            except ProviderError as error:
                wait = self.delay(attempt, error)
                if wait is None:
                    raise
                attempt += 1
                await self.sleep(wait)

    async def request_stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        attempt = 0
        while True:
            started = False
            try:
                async with closing(self.inner.request_stream(request)) as events:
                    async for event in events:
                        started = True
                        yield event
                return
            except ProviderError as error:
                wait = None if started else self.delay(attempt, error)
                if wait is None:
                    raise
                attempt += 1
                await self.sleep(wait)
