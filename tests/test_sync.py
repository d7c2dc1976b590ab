"""The sync twins: results, errors, early exits, and calls from inside a running loop."""

import asyncio
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
