"""Scorers: each turns (sample, outcome) into a Score with a value and an explanation."""

from tether.evals.scorers.base import FunctionScorer, Outcome, Score, Scorer, scorer
from tether.evals.scorers.classification import Classification
from tether.evals.scorers.match import ExactMatch, Includes, Numeric, Regex, TokenF1
from tether.evals.scorers.retrieval import Retrieval
from tether.evals.scorers.similarity import EmbeddingSimilarity, RougeL
from tether.evals.scorers.structured import FieldMatch, JsonValid
from tether.evals.scorers.usage import Cost, Latency

__all__ = [
    "Classification",
    "Cost",
    "EmbeddingSimilarity",
    "ExactMatch",
    "FieldMatch",
    "FunctionScorer",
    "Includes",
    "JsonValid",
    "Latency",
    "Numeric",
    "Outcome",
    "Regex",
    "Retrieval",
    "RougeL",
    "Score",
    "Scorer",
    "TokenF1",
    "scorer",
]
