"""Combining ranked lists and diversifying them: reciprocal rank fusion, weighted score
fusion and maximal marginal relevance. Pure functions over (chunk id, score) lists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

Ranked = list[tuple[int, float]]
Fusion = Literal["rrf", "weighted"]


def rrf(lists: Mapping[str, Ranked], weights: Mapping[str, float], k: int = 60) -> Ranked:
    """Reciprocal rank fusion: each list adds ``weight / (k + rank)`` for every id it ranks.
    Scores on different scales never meet, only ranks do."""
    fused: dict[int, float] = {}
    for name, ranked in lists.items():
        weight = weights.get(name, 1.0)
        for rank, (chunk_id, _) in enumerate(ranked, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def weighted(lists: Mapping[str, Ranked], weights: Mapping[str, float]) -> Ranked:
    """Weighted score fusion: each list's scores scaled to 0..1 (min-max over the list),
    then summed with its weight; an id a list did not return gets 0 from it."""
    fused: dict[int, float] = {}
    for name, ranked in lists.items():
        if not ranked:
            continue
        scores = [score for _, score in ranked]
        low, high = min(scores), max(scores)
        span = high - low
        weight = weights.get(name, 1.0)
        for chunk_id, score in ranked:
            scaled = (score - low) / span if span > 0 else 1.0
            fused[chunk_id] = fused.get(chunk_id, 0.0) + weight * scaled
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def fuse(
    lists: Mapping[str, Ranked], fusion: Fusion, weights: Mapping[str, float], rrf_k: int = 60
) -> Ranked:
    return rrf(lists, weights, rrf_k) if fusion == "rrf" else weighted(lists, weights)


def mmr(
    query: npt.NDArray[np.float32],
    candidates: Sequence[int],
    vectors: npt.NDArray[np.float32],
    k: int,
    diversity: float = 0.3,
) -> list[int]:
    """Maximal marginal relevance: pick ``k`` of the candidates, each time the one most
    similar to the query and least similar to those already picked. ``diversity`` 0 keeps
    the relevance order; 1 picks for spread alone."""
    import numpy as np

    if not candidates:
        return []
    relevance = vectors @ query
    similarity = vectors @ vectors.T
    chosen: list[int] = []
    left = list(range(len(candidates)))
    while left and len(chosen) < k:
        redundancy = similarity[np.ix_(left, chosen)].max(axis=1) if chosen else np.zeros(len(left))
        scores = (1 - diversity) * relevance[left] - diversity * redundancy
        best = left[int(np.argmax(scores))]
        chosen.append(best)
        left.remove(best)
    return [candidates[i] for i in chosen]
