"""Sync twins of async code, safe to call inside a running event loop (Jupyter, async apps).

Sync calls run on one background event loop in a daemon thread. Running every sync call on
the same loop keeps provider connection pools alive between calls, and it works whether or
not the calling thread already runs a loop of its own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            _loop = asyncio.new_event_loop()
            _thread = threading.Thread(target=_loop.run_forever, name="tether-sync", daemon=True)
            _thread.start()
        return _loop


def _check_not_on_loop() -> None:
    if threading.current_thread() is _thread:
        raise RuntimeError(
            "a sync tether call was made from async code running on tether's own loop; "
            "await the async twin (agenerate/astream) instead"
        )


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code and return its result."""
    _check_not_on_loop()
    future = asyncio.run_coroutine_threadsafe(coro, background_loop())
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise


def iterate(stream: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator from sync code, one item at a time."""
    _check_not_on_loop()
    loop = background_loop()

    async def next_item() -> T:
        return await stream.__anext__()

    try:
        while True:
            future = asyncio.run_coroutine_threadsafe(next_item(), loop)
            try:
                item = future.result()
            except StopAsyncIteration:
                return
            except BaseException:
                future.cancel()
                raise
            yield item
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            asyncio.run_coroutine_threadsafe(aclose(), loop).result()
