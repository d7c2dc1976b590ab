"""The sync twins: results, errors, early exits, a bounded buffer, and calls from inside a
running loop."""

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tether import _sync


async def numbers(count: int, closed: list[bool], fail_at: int | None = None) -> AsyncIterator[int]:
    try:
        for number in range(count):
            if number == fail_at:
                raise ValueError("broken at 3")
            await asyncio.sleep(0)
            yield number
    finally:
        closed.append(True)


def test_iterate_yields_everything_in_order() -> None:
    closed: list[bool] = []
    assert list(_sync.iterate(numbers(100, closed))) == list(range(100))
    assert closed == [True]


def test_iterate_raises_the_stream_error_after_the_items_before_it() -> None:
    seen: list[int] = []
    with pytest.raises(ValueError, match="broken at 3"):
        for number in _sync.iterate(numbers(10, [], fail_at=3)):
            seen.append(number)
    assert seen == [0, 1, 2]


def test_stopping_early_closes_the_stream_where_it_runs() -> None:
    closed: list[bool] = []
    for number in _sync.iterate(numbers(10**6, closed)):
        if number == 5:
            break
    assert closed == [True]


async def test_sync_calls_work_inside_a_running_loop() -> None:
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    assert _sync.run(double(21)) == 42
    assert list(_sync.iterate(numbers(3, []))) == [0, 1, 2]


def test_a_sync_call_from_tethers_own_loop_is_refused_not_deadlocked() -> None:
    async def nested() -> int:
        return _sync.run(asyncio.sleep(0, 1))

    with pytest.raises(RuntimeError, match="await the async twin"):
        _sync.run(nested())


async def counted(produced: list[int], closed: list[bool]) -> AsyncIterator[int]:
    try:
        for number in range(10**6):
            produced.append(number)
            yield number
    finally:
        closed.append(True)


def test_a_slow_consumer_makes_the_stream_wait_instead_of_piling_events_up() -> None:
    produced: list[int] = []
    events = _sync.iterate(counted(produced, []), buffer=4)
    assert next(events) == 0
    time.sleep(0.2)  # a consumer busy elsewhere: the stream could run far ahead
    # the buffer, and the one item the pump holds while it waits for room
    assert len(produced) <= 1 + 4 + 1
    assert [next(events) for _ in range(100)] == list(range(1, 101))
    events.close()


def test_stopping_while_the_stream_waits_for_room_closes_it_at_once() -> None:
    closed: list[bool] = []
    stream = counted([], closed)  # held here, so only iterate can close it
    for number in _sync.iterate(stream, buffer=2):
        time.sleep(0.1)  # the stream fills the buffer and waits
        if number == 3:
            break
    assert closed == [True]


def test_a_buffer_of_one_still_hands_over_everything_in_order() -> None:
    assert list(_sync.iterate(numbers(50, []), buffer=1)) == list(range(50))
