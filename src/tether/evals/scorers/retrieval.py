"""Retrieval: how well a ranked list of ids finds the relevant ones.

The output is a ranked list: ids, or search hits (their ``source`` is the id), or an
``Answer`` from ``tether.ask`` (its hits). ``expected`` is a list of relevant ids, or a dict
of id -> graded relevance for nDCG. The value is the named metric; the others are in the
metadata, and the run's means of all of them come out of ``aggregate``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from tether.evals.dataset import Sample
from tether.evals.scorers.base import Outcome, Score, Scorer

Metric = Literal["recall", "mrr", "ndcg"]


def ranked_ids(output: Any) -> list[str]:
    items = getattr(output, "hits", output)
    if items is None:
        return []
    ids = []
    for item in items:
        ids.append(str(getattr(item, "source", item)))
    return list(dict.fromkeys(ids))  # a document found by several chunks counts once


def relevance_of(expected: Any) -> dict[str, float]:
    if isinstance(expected, dict):
        return {str(k): float(v) for k, v in expected.items() if float(v) > 0}
    if isinstance(expected, (list, tuple, set)):
        return {str(k): 1.0 for k in expected}
    return {str(expected): 1.0} if expected is not None else {}


def recall_at(ranked: Sequence[str], relevant: dict[str, float], k: int) -> float:
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def mrr(ranked: Sequence[str], relevant: dict[str, float]) -> float:
    return next((1 / (i + 1) for i, d in enumerate(ranked) if d in relevant), 0.0)


def ndcg_at(ranked: Sequence[str], relevant: dict[str, float], k: int) -> float:
    gain = sum(relevant.get(d, 0.0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    best = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return gain / best if best else 0.0


class Retrieval(Scorer):
    """recall@k (default), MRR or nDCG@k of the output's ranking."""

    def __init__(self, metric: Metric = "recall", *, k: int = 10) -> None:
        self.metric = metric
        self.k = k
        self.name = "mrr" if metric == "mrr" else f"{metric}@{k}"

    def score(self, sample: Sample, outcome: Outcome) -> Score:
        ranked = ranked_ids(outcome.output)
        relevant = relevance_of(sample.expected)
        if not relevant:
            return Score(value=0.0, explanation="the sample names no relevant ids")
        metrics = {
            f"recall@{self.k}": recall_at(ranked, relevant, self.k),
            "mrr": mrr(ranked, relevant),
            f"ndcg@{self.k}": ndcg_at(ranked, relevant, self.k),
        }
        value = metrics[self.name]
        found = len(set(ranked[: self.k]) & set(relevant))
        return Score(
            value=value,
            explanation=f"{found} of {len(relevant)} relevant in the top {self.k}",
            metadata=metrics,
        )

    def aggregate(self, samples: Sequence[Sample], scores: Sequence[Score]) -> dict[str, Any]:
        rated = [s for s in scores if s.metadata]
        if not rated:
            return {}
        return {
            key: sum(s.metadata[key] for s in rated) / len(rated)
            for key in rated[0].metadata
            if key != self.name
        }
