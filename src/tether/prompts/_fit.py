"""The budget rules of context assembly: what to drop, in which order, and what to cut."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from tether.errors import ContextTooLong
from tether.prompts.tokens import Counter
from tether.types import Message

Kind = Literal["system", "instructions", "example", "chunk", "history", "question"]
MUST_KEEP = 100


@dataclass(frozen=True)
class Removed:
    """One part dropped whole or cut; ``tokens`` is how many tokens it gave up."""

    kind: Kind
    index: int
    tokens: int

    def __str__(self) -> str:
        return f"{self.kind}:{self.index}"


@dataclass
class Item:
    kind: Kind
    index: int
    priority: int
    text: str
    answer: str = ""  # an example's assistant turn
    message: Message | None = None  # a history turn, kept whole
    tokens: int = 0


def chunk_text(item: Item) -> str:
    return f"[{item.index + 1}] {item.text}\n\n"


def _drop_rank(item: Item) -> tuple[int, int]:
    # Lowest priority first; within a kind the oldest turn, the lowest-ranked chunk and the
    # last example go first.
    return item.priority, item.index if item.kind == "history" else -item.index


def fit(
    items: list[Item],
    budget: int,
    counter: Counter,
    too_long: Callable[[int], ContextTooLong],
) -> tuple[list[Item], list[Removed], list[Removed]]:
    """Keep ``items`` within ``budget``: returns the kept items, the dropped and the cut."""
    needed = sum(item.tokens for item in items if item.priority >= MUST_KEEP)
    if needed > budget:
        raise too_long(needed)
    kept = list(items)
    total = sum(item.tokens for item in kept)
    dropped: list[Removed] = []
    truncated: list[Removed] = []
    for item in sorted((i for i in items if i.priority < MUST_KEEP), key=_drop_rank):
        if total <= budget:
            break
        before = item.tokens
        last_chunk = item.kind == "chunk" and sum(1 for k in kept if k.kind == "chunk") == 1
        # The last passage standing is cut to fit rather than lost, if any of it fits.
        if last_chunk and _cut(item, before - (total - budget), counter):
            truncated.append(Removed("chunk", item.index, before - item.tokens))
            total -= before - item.tokens
            continue
        kept.remove(item)
        dropped.append(Removed(item.kind, item.index, before))
        total -= before
    return kept, dropped, truncated


def _cut(item: Item, limit: int, counter: Counter) -> bool:
    """Shorten ``item.text`` to the longest prefix costing at most ``limit`` tokens.

    Returns False when not even an empty passage fits, so the caller drops it instead.
    """
    text = item.text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits, found by bisection on characters
        middle = (low + high + 1) // 2
        item.text = text[:middle]
        if counter.count(chunk_text(item)) <= limit:
            low = middle
        else:
            high = middle - 1
    item.text = text[:low].rstrip()
    item.tokens = counter.count(chunk_text(item))
    return low > 0 and item.tokens <= limit
