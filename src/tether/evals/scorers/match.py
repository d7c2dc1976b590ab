"""Scorers that compare the output's text with what is expected: exact and normalised match,
inclusion, a regular expression, SQuAD's token F1, and numbers within a tolerance.

Where a sample has several acceptable answers (``expected`` a list), the best match counts.
Normalising follows SQuAD's evaluation script: lower case, punctuation and the articles
a/an/the dropped, whitespace collapsed, so "The Eiffel Tower." matches "eiffel tower".
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter

from tether.evals.dataset import Sample
from tether.evals.scorers.base import Outcome, Score, Scorer

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")


def normalize(text: str) -> str:
    """SQuAD's answer normalisation."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD's token F1 of two answers, after normalising; two empty answers agree."""
    said, wanted = normalize(prediction).split(), normalize(reference).split()
    if not said or not wanted:
        return float(said == wanted)
    common = sum((Counter(said) & Counter(wanted)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(said), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


def _refs(sample: Sample) -> list[str]:
    return [str(t) for t in sample.targets]


def _best(outcome: Outcome, sample: Sample, fn: object, name: str) -> Score:
    refs = _refs(sample)
    if not refs:
        return Score(value=0.0, explanation=f"{name}: the sample expects nothing to compare")
    scored = [(fn(outcome.text, ref), ref) for ref in refs]  # type: ignore[operator]
    value, ref = max(scored, key=lambda pair: pair[0])
    return Score(value=float(value), explanation=f"{name} {float(value):.2f} against {ref!r}")


class ExactMatch(Scorer):
    """1 when the output equals an expected answer: normalised (SQuAD-style) by default,
    character for character with ``normalized=False``."""

    def __init__(self, *, normalized: bool = True, name: str | None = None) -> None:
        self.normalized = normalized
        self.name = name or ("exact" if normalized else "exact_raw")

    def score(self, sample: Sample, outcome: Outcome) -> Score:
        same = (lambda a, b: normalize(a) == normalize(b)) if self.normalized else str.__eq__
        return _best(outcome, sample, lambda a, b: float(same(a.strip(), b.strip())), self.name)


class Includes(Scorer):
    """1 when an expected answer appears in the output (case-insensitive by default)."""

    def __init__(self, *, ignore_case: bool = True, name: str = "includes") -> None:
        self.ignore_case = ignore_case
        self.name = name

    def score(self, sample: Sample, outcome: Outcome) -> Score:
        def holds(text: str, ref: str) -> float:
            if self.ignore_case:
                return float(ref.lower() in text.lower())
            return float(ref in text)

        return _best(outcome, sample, holds, self.name)


class Regex(Scorer):
    """1 when the output matches ``pattern`` (searched anywhere; use ^...$ for all of it).
    The pattern may use ``{expected}``, replaced by each expected answer, escaped."""

    def __init__(self, pattern: str, *, flags: int = re.IGNORECASE, name: str = "regex") -> None:
        self.pattern = pattern
        self.flags = flags
        self.name = name
        if "{expected}" not in pattern:
            self._compiled = re.compile(pattern, flags)

    def score(self, sample: Sample, outcome: Outcome) -> Score:
        if "{expected}" not in self.pattern:
            found = self._compiled.search(outcome.text)
            said = "matched" if found else "no match"
            return Score.of(found is not None, f"/{self.pattern}/ {said}")
        return _best(
            outcome,
            sample,
            lambda text, ref: float(
                re.search(self.pattern.replace("{expected}", re.escape(ref)), text, self.flags)
                is not None
            ),
            self.name,
        )


class TokenF1(Scorer):
    """SQuAD's token F1 against the best of the expected answers."""

    name = "f1"

    def score(self, sample: Sample, outcome: Outcome) -> Score:
        return _best(outcome, sample, token_f1, "f1")


def first_number(text: str) -> float | None:
    found = _NUMBER.search(text)
    return float(found.group().replace(",", "")) if found else None


class Numeric(Scorer):
    """1 when the first number in the output is within ``tolerance`` of the expected one:
    absolute by default, relative (a fraction of the expected value) with ``relative=True``."""

    def __init__(
        self, *, tolerance: float = 0.0, relative: bool = False, name: str = "numeric"
    ) -> None:
        self.tolerance = tolerance
        self.relative = relative
        self.name = name

    def score(self, sample: Sample, outcome: Outcome) -> Score:
        said = outcome.output if isinstance(outcome.output, (int, float)) else None
        said = float(said) if said is not None else first_number(outcome.text)
        if said is None:
            return Score(value=0.0, explanation="no number in the output")
        best: tuple[float, float] | None = None
        for ref in sample.targets:
            wanted = float(ref) if isinstance(ref, (int, float)) else first_number(str(ref))
            if wanted is None:
                continue
            gap = abs(said - wanted)
            allowed = self.tolerance * abs(wanted) if self.relative else self.tolerance
            ok = gap <= allowed or math.isclose(said, wanted)
            if best is None or (ok, -gap) > (best[0] > 0, -best[1]):
                best = (float(ok), gap)
        if best is None:
            return Score(value=0.0, explanation="the sample expects no number")
        return Score(value=best[0], explanation=f"{said:g} is {best[1]:g} from the expected")
