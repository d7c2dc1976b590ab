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


class _Handoff:
    """Items from the background loop to one sync consumer, at most ``size`` waiting.

    The consumer blocks on a SimpleQueue. The loop side, which must never block, awaits a
    future when the queue is full, and the consumer resolves it as it takes an item. Each side
    writes only its own count (``sent``, ``taken``) and sets its flag before reading the
    other's, so neither can miss the other's wake-up: the GIL orders the two threads' steps.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.loop = loop
        self.size = size
        self.items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.sent = self.taken = 0
        self.waiter: asyncio.Future[None] | None = None  # the loop side waiting for room
        self.woken: asyncio.Future[None] | None = None  # the last waiter the consumer woke

    async def send(self, item: Any) -> None:
        """Hand ``item`` over once there is room (on the loop)."""
        while self.sent - self.taken >= self.size:
            self.waiter = self.loop.create_future()
            if self.sent - self.taken >= self.size:
                await self.waiter
            self.waiter = None
        self.items.put(item)
        self.sent += 1

    def take(self) -> Any:
        """The next item, waiting for it (on the consumer's thread)."""
        item = self.items.get()
        self.taken += 1
        waiter = self.waiter
        if waiter is not None and waiter is not self.woken:
            self.woken = waiter
            self.loop.call_soon_threadsafe(wake, waiter)
        return item


def wake(waiter: asyncio.Future[None]) -> None:
    """Resolve a hand-over's waiter (on its loop), unless it is already done or cancelled."""
    if not waiter.done():
        waiter.set_result(None)


class End:
    """The last item of a hand-over between threads: the stream finished, or raised ``error``."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


BUFFER = 64  # events held for a consumer that lags; more make the stream wait


def iterate(stream: AsyncIterator[T], *, buffer: int = BUFFER) -> Iterator[T]:
    """Iterate an async iterator from sync code.

    A pump task on the background loop hands items over through a thread-safe queue, so each
    item costs one queue hand-off rather than a task and a future. At most ``buffer`` items
    wait in it: a consumer that lags makes the stream wait instead of piling events up.
    """
    _check_not_on_loop()
    loop = background_loop()
    handoff = _Handoff(loop, buffer)
    started, finished = threading.Event(), threading.Event()

    async def pump() -> None:
        started.set()
        try:
            try:
                async for item in stream:
                    await handoff.send(item)
            finally:
                # Stopped while waiting for room, the stream is suspended at a yield: close it
                # now (its connection, its generation), not when it is collected.
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    await aclose()
        except BaseException as exc:  # handed to the consumer and raised there
            handoff.items.put(End(exc))
        else:
            handoff.items.put(End())
        finally:
            finished.set()

    future = asyncio.run_coroutine_threadsafe(pump(), loop)
    try:
        while True:
            item = handoff.take()
            if type(item) is End:
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        if not finished.is_set():
            # The consumer stopped early: cancel the stream where it runs, and wait until its
            # clean-up (closing a connection, stopping a generation) has happened.
            future.cancel()
            if started.is_set():  # a task cancelled before it starts runs no clean-up
                finished.wait()
