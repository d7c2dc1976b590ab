"""Blocking work on a dedicated thread, from async code: a call, or an iterator.

llama.cpp is synchronous and CPU-bound, so the local provider runs it on one thread per
loaded model. A call whose caller is cancelled is told to stop and waited for, so nothing
runs on for nobody; an iterator hands its items to the event loop through a bounded buffer,
so a consumer that lags makes it wait and one that stops stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from typing import Any, TypeVar

from tether._sync import End, wake

T = TypeVar("T")


async def call_in_thread(call: Callable[[threading.Event], T], thread: Executor) -> T:
    """Run ``call(stop)`` on ``thread``. If the caller is cancelled, ``stop`` is set, and the
    caller waits until the thread is free again: nothing runs on for nobody."""
    stop = threading.Event()
    worker = asyncio.get_running_loop().run_in_executor(thread, call, stop)
    try:
        return await asyncio.shield(worker)
    except asyncio.CancelledError:
        stop.set()
        with contextlib.suppress(Exception):
            await worker
        raise


class _Handoff:
    """Items from a worker thread to a consumer on the event loop, at most ``size`` waiting.

    The consumer awaits a future only when the deque is empty, and the worker wakes the loop
    only then; a worker ahead of its consumer blocks on ``room``. Each side writes only its
    own count (``sent``, ``taken``) and sets its flag before reading the other's, so neither
    can miss the other's wake-up: the GIL orders the two threads' steps.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.loop = loop
        self.size = size
        self.items: deque[Any] = deque()
        self.sent = self.taken = 0
        self.room = threading.Event()
        self.room.set()
        self.closed = False  # the consumer is gone: the worker stops
        self.waiter: asyncio.Future[None] | None = None  # the consumer waiting for an item
        self.woken: asyncio.Future[None] | None = None  # the last waiter the worker woke

    def send(self, item: Any) -> bool:
        """Hand ``item`` over once there is room (on the worker); False once the consumer
        has gone, and the worker should stop."""
        while self.sent - self.taken >= self.size and not self.closed:
            self.room.clear()
            if self.sent - self.taken >= self.size and not self.closed:
                self.room.wait()
        if self.closed:
            return False
        self.items.append(item)
        self.sent += 1
        waiter = self.waiter
        if waiter is not None and waiter is not self.woken:
            self.woken = waiter
            self.loop.call_soon_threadsafe(wake, waiter)
        return True

    async def take(self) -> Any:
        """The next item, waiting for it (on the loop)."""
        while not self.items:
            self.waiter = self.loop.create_future()
            if not self.items:
                await self.waiter
            self.waiter = None
        item = self.items.popleft()
        self.taken += 1
        if not self.room.is_set():
            self.room.set()
        return item

    def close(self) -> None:
        self.closed = True
        self.room.set()


BUFFER = 64  # chunks held for a consumer that lags; past that the generation waits


async def in_thread(
    make: Callable[[], Iterator[Any]], thread: Executor, *, buffer: int = BUFFER
) -> AsyncIterator[Any]:
    """Iterate a blocking iterator on ``thread``, handing items over as they come. At most
    ``buffer`` items wait: a consumer that lags makes the iterator wait, and one that stops
    stops it."""
    handoff = _Handoff(asyncio.get_running_loop(), buffer)

    def produce() -> None:
        try:
            iterator = make()
            try:
                for item in iterator:
                    if not handoff.send(item):
                        break
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:  # handed to the consumer, raised there
            handoff.send(End(exc))
        else:
            handoff.send(End())

    worker = asyncio.get_running_loop().run_in_executor(thread, produce)
    try:
        while True:
            item = await handoff.take()
            if type(item) is End:
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        handoff.close()
        await asyncio.shield(worker)
