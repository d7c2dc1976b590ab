"""Sync twins of async code, safe to call inside a running event loop (Jupyter, async apps).

Sync calls run on one background event loop in a daemon thread. Running every sync call on
the same loop keeps provider connection pools alive between calls, and it works whether or
not the calling thread already runs a loop of its own.
"""

from __future__ import annotations

import asyncio
import queue
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
    try:
        _check_not_on_loop()
    except RuntimeError:
        coro.close()  # it will never run; closing it spares a "never awaited" warning
        raise
    future = asyncio.run_coroutine_threadsafe(coro, background_loop())
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise


def iterate(stream: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator from sync code.

    A pump task on the background loop hands items over through a thread-safe queue, so each
    item costs one queue hand-off rather than a task and a future.
    """
    _check_not_on_loop()
    loop = background_loop()
    items: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
    started, finished = threading.Event(), threading.Event()

    async def pump() -> None:
        started.set()
        try:
            async for item in stream:
                items.put((True, item))
        except BaseException as exc:  # handed to the consumer and raised there
            items.put((False, exc))
        else:
            items.put((False, None))
        finally:
            finished.set()

    future = asyncio.run_coroutine_threadsafe(pump(), loop)
    try:
        while True:
            ok, value = items.get()
            if ok:
                yield value
            elif value is None:
                return
            else:
                raise value
    finally:
        if not finished.is_set():
            # The consumer stopped early: cancel the stream where it runs, and wait until its
            # clean-up (closing a connection, stopping a generation) has happened.
            future.cancel()
            if started.is_set():  # a task cancelled before it starts runs no clean-up
                finished.wait()
