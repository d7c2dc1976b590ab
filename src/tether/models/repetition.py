"""Telling when an answer has started repeating itself.

A small model that loses its way often loops: the same sentence, word or list item again
and again until the token limit. Such an answer is over in all but name, so the local
provider ends it early. The test is the same wherever it is made (tokens of a chat answer,
characters of a JSON string): does the end of the sequence repeat one unit several times?
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def periodic_tail(items: Sequence[T], max_period: int) -> tuple[int, int]:
    """The unit the end of ``items`` repeats over the longest stretch, as (period, length of
    the repeating tail); (0, 0) when no unit of at most ``max_period`` items repeats at
    least twice in full.

    ``abcxyzxyzxyz`` gives (3, 9): ``xyz`` three times. The tail may end part-way through a
    unit: ``xyzxyzxy`` gives (3, 8). Among units, the longest tail wins (the shorter unit on
    a tie), so a doubled last letter does not hide a repeated sentence."""
    size = len(items)
    best = (0, 0)
    for period in range(1, min(max_period, size // 2) + 1):
        run = 0
        while run < size - period and items[size - 1 - run] == items[size - 1 - run - period]:
            run += 1
        if run >= period and run + period > best[1]:  # the unit appears twice in full
            best = (period, run + period)
    return best


def is_looping(items: Sequence[T], *, max_period: int, min_repeats: int, min_length: int) -> bool:
    """Whether the end of ``items`` is one unit said ``min_repeats`` times or more, over at
    least ``min_length`` items."""
    period, length = periodic_tail(items, max_period)
    return period > 0 and length >= max(min_length, period * min_repeats)
