"""Evaluation: datasets, scorers and the statistics that say whether a change helped.

``load_dataset(path)`` or ``Dataset.from_list(rows)`` give the samples (versioned by
content); scorers in ``tether.evals.scorers`` turn each output into a Score with an
explanation; ``tether.evals.stats`` puts 95% intervals on every metric and compares two
runs sample by sample.
"""

from tether.evals.dataset import Dataset, Fields, Sample, load_dataset
from tether.evals.scorers import (
    Classification,
    Cost,
    EmbeddingSimilarity,
    ExactMatch,
    FieldMatch,
    Includes,
    JsonValid,
    Latency,
    Numeric,
    Outcome,
    Regex,
    Retrieval,
    RougeL,
    Score,
    Scorer,
    TokenF1,
    scorer,
)
from tether.evals.stats import Comparison, Estimate, compare, estimate

__all__ = [
    "Classification",
    "Comparison",
    "Cost",
    "Dataset",
    "EmbeddingSimilarity",
    "Estimate",
    "ExactMatch",
    "FieldMatch",
    "Fields",
    "Includes",
    "JsonValid",
    "Latency",
    "Numeric",
    "Outcome",
    "Regex",
    "Retrieval",
    "RougeL",
    "Sample",
    "Score",
    "Scorer",
    "TokenF1",
    "compare",
    "estimate",
    "load_dataset",
    "scorer",
]
