"""Classification: per-sample correctness, and over the run accuracy, macro-F1, the confusion
matrix and the expected calibration error of the model's confidence.

The output is a label (a string) or anything with ``label`` and ``confidence`` attributes,
such as what ``tether.classify`` returns. Labels compare case- and space-insensitively.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.evals.dataset import Sample
from tether.evals.scorers.base import Outcome, Score, Scorer

CALIBRATION_BINS = 10


def _label(value: Any) -> str:
    return " ".join(str(value).lower().split())


def macro_f1(pairs: Sequence[tuple[str, str]]) -> float:
    """Macro-averaged F1 over every label that is expected or predicted."""
    labels = {e for e, _ in pairs} | {p for _, p in pairs}
    f1s = []
    for label in labels:
        tp = sum(1 for e, p in pairs if e == label and p == label)
        fp = sum(1 for e, p in pairs if e != label and p == label)
        fn = sum(1 for e, p in pairs if e == label and p != label)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(f1s) / len(f1s) if f1s else 0.0


def calibration_error(confidences: Sequence[float], correct: Sequence[bool]) -> float:
    """Expected calibration error: the gap between confidence and accuracy, averaged over
    ten equal-width confidence bins weighted by how many samples fall in each."""
    bins: list[list[tuple[float, bool]]] = [[] for _ in range(CALIBRATION_BINS)]
    for c, ok in zip(confidences, correct, strict=True):
        bins[min(int(c * CALIBRATION_BINS), CALIBRATION_BINS - 1)].append((c, ok))
    total = len(confidences)
    error = 0.0
    for members in bins:
        if members:
            mean_conf = sum(c for c, _ in members) / len(members)
            accuracy = sum(ok for _, ok in members) / len(members)
            error += len(members) / total * abs(mean_conf - accuracy)
    return error


class Classification(Scorer):
    name = "accuracy"

    def score(self, sample: Sample, outcome: Outcome) -> Score:
        output = outcome.output
        predicted = getattr(output, "label", output)
        confidence = getattr(output, "confidence", None)
        targets = [_label(t) for t in sample.targets]
        said = _label(predicted) if predicted is not None else ""
        ok = said in targets
        metadata: dict[str, Any] = {"predicted": said, "expected": targets[0] if targets else ""}
        if confidence is not None:
            metadata["confidence"] = float(confidence)
        verdict = "right" if ok else f"expected {metadata['expected']!r}"
        return Score(value=float(ok), explanation=f"said {said!r}: {verdict}", metadata=metadata)

    def aggregate(self, samples: Sequence[Sample], scores: Sequence[Score]) -> dict[str, Any]:
        pairs = [
            (s.metadata["expected"], s.metadata["predicted"])
            for s in scores
            if "expected" in s.metadata
        ]
        if not pairs:
            return {}
        confusion: dict[str, dict[str, int]] = {}
        for expected, predicted in pairs:
            row = confusion.setdefault(expected, {})
            row[predicted] = row.get(predicted, 0) + 1
        out: dict[str, Any] = {"macro_f1": macro_f1(pairs), "confusion": confusion}
        rated = [s for s in scores if "confidence" in s.metadata]
        if rated:
            out["calibration_error"] = calibration_error(
                [s.metadata["confidence"] for s in rated], [s.value == 1.0 for s in rated]
            )
        return out
