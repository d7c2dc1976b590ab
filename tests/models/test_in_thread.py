"""in_thread: a blocking iterator on the model's thread, handed to the loop through a bounded
buffer (order, errors, a lagging consumer, a consumer that stops), and the local stream that
reads the model through it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tether.models.base import build_request
from tether.models.local import LocalProvider
from tether.models.threads import in_thread


def counting(produced: list[int], closed: list[bool], fail_at: int | None = None) -> Iterator[int]:
    try:
        for number in range(10**6):
            if number == fail_at:
                raise ValueError(f"broken at {number}")
            produced.append(number)
            yield number
    finally:
        closed.append(True)


async def test_everything_arrives_in_order_through_a_buffer_of_one() -> None:
    with ThreadPoolExecutor(1) as thread:
        got = [n async for n in in_thread(lambda: iter(range(300)), thread, buffer=1)]
    assert got == list(range(300))


async def test_the_error_is_raised_after_the_items_before_it() -> None:
    seen: list[int] = []
    with ThreadPoolExecutor(1) as thread, pytest.raises(ValueError, match="broken at 3"):
        async for number in in_thread(lambda: counting([], [], fail_at=3), thread):
            seen.append(number)
    assert seen == [0, 1, 2]


async def test_a_slow_consumer_makes_the_thread_wait_instead_of_piling_items_up() -> None:
    produced: list[int] = []
    with ThreadPoolExecutor(1) as thread:
        items = in_thread(lambda: counting(produced, []), thread, buffer=4)
        assert await anext(items) == 0
        await asyncio.sleep(0.2)  # the thread could run far ahead meanwhile
        # the buffer, and the one item the thread holds while it waits for room
        assert len(produced) <= 1 + 4 + 1
        assert [await anext(items) for _ in range(100)] == list(range(1, 101))
        await items.aclose()


async def test_a_consumer_that_stops_frees_a_thread_waiting_for_room() -> None:
    closed: list[bool] = []
    with ThreadPoolExecutor(1) as thread:
        items = in_thread(lambda: counting([], closed), thread, buffer=2)
        assert await anext(items) == 0
        await asyncio.sleep(0.1)  # the thread fills the buffer and waits
        started = time.perf_counter()
        await items.aclose()
        assert closed == [True]  # the iterator was closed on its thread
        assert thread.submit(lambda: "free").result(timeout=1) == "free"
        assert time.perf_counter() - started < 1


async def test_a_consumer_cancelled_while_it_waits_stops_the_thread() -> None:
    closed: list[bool] = []

    def slow() -> Iterator[int]:
        try:
            for number in range(10**6):
                time.sleep(0.05)
                yield number
        finally:
            closed.append(True)

    with ThreadPoolExecutor(1) as thread:
        items = in_thread(slow, thread)
        waiting = asyncio.ensure_future(anext(items))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert closed == [True]  # stopped before its next item, on its own thread
        assert thread.submit(lambda: "free").result(timeout=1) == "free"


async def test_closing_a_local_stream_stops_its_generation_before_it_returns() -> None:
    provider = LocalProvider("smollm2")
    # at temperature 0 this prompt runs to max_tokens: seconds if nothing stops it
    request = build_request("Tell a long tale.", max_tokens=1000, temperature=0)
    stream = provider.stream(request)
    assert (await anext(stream)).type == "text"
    await stream.aclose()
    # the model's thread is free now, with nothing left for the loop to finish: blocking
    # the loop here would stall a clean-up left to a later task
    assert provider.model().thread.submit(lambda: "free").result(timeout=2) == "free"
    assert provider.model().llama.last_completion_tokens < 100


def test_a_reader_may_call_the_same_model_while_it_reads_a_stream() -> None:
    import threading

    import tether

    model = tether.model("local:smollm2")
    seen: list[str] = []

    def read() -> None:
        for number, _event in enumerate(
            model.stream("Tell a long story about a dog.", max_tokens=300, temperature=0)
        ):
            if number == 3:  # the stream's generation must not hold the model's thread
                seen.append(model.generate("Hi", max_tokens=3, temperature=0).text)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=120)
    assert not reader.is_alive(), "the nested call waited forever for the model's thread"
    assert seen and seen[0]
