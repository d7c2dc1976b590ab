"""A time limit per attempt: the whole call, or the wait for each streamed event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from tether.errors import Timeout
from tether.models.base import Model, Wrapper, closing
from tether.types import Request, Response, StreamEvent


class TimeoutModel(Wrapper):
    def __init__(self, inner: Model, seconds: float) -> None:
        super().__init__(inner)
        self.seconds = seconds

    def _error(self) -> Timeout:
        return Timeout(
            f"{self.id} gave no answer within {self.seconds:g} s; raise `timeout` for this "
            "model in tether.toml, or let retries/fallbacks take over",
            model=self.id,
        )

    async def request(self, request: Request) -> Response:
        try:
            async with asyncio.timeout(self.seconds):
                return await self.inner.request(request)
        except TimeoutError as exc:
            raise self._error() from exc

    async def request_stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """For streams the limit is on silence: the wait for each next event."""
        async with closing(self.inner.request_stream(request)) as events:
            while True:
                try:
                    async with asyncio.timeout(self.seconds):
                        event = await anext(events)
                except StopAsyncIteration:
                    return
                except TimeoutError as exc:
                    raise self._error() from exc
                yield event
