"""Latency and cost as scores, so they get means, intervals and gates like quality does."""

from __future__ import annotations

from tether.evals.dataset import Sample
from tether.evals.scorers.base import Outcome, Score, Scorer


class Latency(Scorer):
    """The task's wall time for the sample, in seconds."""

    name = "latency_s"

    def score(self, sample: Sample, outcome: Outcome) -> Score:
        return Score(value=outcome.latency_s, explanation=f"{outcome.latency_s:.3f} s")


class Cost(Scorer):
    """What the sample's model calls cost, in USD; an unpriced call is an error score, not
    a silent zero."""

    name = "cost_usd"

    def score(self, sample: Sample, outcome: Outcome) -> Score:
        if outcome.cost_usd is None:
            return Score(value=0.0, error="a model call had no price; add it to pricing")
        return Score(value=outcome.cost_usd, explanation=f"${outcome.cost_usd:.6f}")
