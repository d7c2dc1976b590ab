"""A cache of model calls in the project database, for eval runs and anything else that asks
the same question twice: an unchanged call is answered from it, costs nothing and adds no
trace.

It is off unless a block turns it on (``with caching(CallCache(path)):``); the eval runner
does for every run. Calls are found by the same key a cassette uses (the model and the
whole request, redacted), plus a ``salt``: the runner salts each epoch, so five epochs of a
sampled call are five calls, and a re-run of the same five finds all of them. Streams are
cached as their final response and replayed as the events a provider would send for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from pathlib import Path

from tether.models.base import Wrapper, closing
from tether.models.middleware.cassette import call_key
from tether.store.db import connect, transaction
from tether.types import Request, Response, ResponseEvent, StreamEvent


class CallCache:
    """Responses by call key, in the table ``call_cache`` of the project database."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = connect(self.db_path)
        return self._db

    def get(self, key: str) -> Response | None:
        with self._lock:
            row = (
                self._conn()
                .execute("SELECT response FROM call_cache WHERE key = ?", (key,))
                .fetchone()
            )
            if row is None:
                self.misses += 1
                return None
            self.hits += 1
        return Response.model_validate_json(row[0])

    def put(self, key: str, model: str, response: Response) -> None:
        with self._lock, transaction(self._conn()) as db:
            db.execute(
                "INSERT OR REPLACE INTO call_cache (key, model, response, created_ns) "
                "VALUES (?,?,?,?)",
                (key, model, response.model_dump_json(), time.time_ns()),
            )

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


_active: ContextVar[tuple[CallCache, str] | None] = ContextVar("tether_call_cache", default=None)


@contextlib.contextmanager
def caching(cache: CallCache, *, salt: str = "") -> Iterator[CallCache]:
    """Answer the model calls made inside the block from ``cache`` where it can."""
    token = _active.set((cache, salt))
    try:
        yield cache
    finally:
        _active.reset(token)


def _key(model: str, request: Request, salt: str) -> str:
    base = call_key(model, request, stream=False)  # a stream and a call answer alike
    return hashlib.sha256(f"{base}\x00{salt}".encode()).hexdigest()


def _hit(response: Response) -> Response:
    """A cached answer as the caller gets it: free and instant."""
    return response.model_copy(update={"cost_usd": 0.0, "latency_s": 0.0}, deep=True)


class CachedModel(Wrapper):
    async def request(self, request: Request) -> Response:
        active = _active.get()
        if active is None:
            return await self.inner.request(request)
        cache, salt = active
        key = _key(self.id, request, salt)
        if (found := cache.get(key)) is not None:
            return _hit(found)
        response = await self.inner.request(request)
        cache.put(key, self.id, response)
        return response

    async def request_stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        active = _active.get()
        if active is None:
            async with closing(self.inner.request_stream(request)) as stream:
                async for event in stream:
                    yield event
            return
        cache, salt = active
        key = _key(self.id, request, salt)
        if (found := cache.get(key)) is not None:
            from tether.testing import to_events

            response = _hit(found)
            for event in to_events(response):  # text, reasoning and tool calls, part by part
                yield event
            yield ResponseEvent(response=response)
            return
        async with closing(self.inner.request_stream(request)) as stream:
            async for event in stream:
                if isinstance(event, ResponseEvent):
                    cache.put(key, self.id, event.response)
                yield event
