"""LLM-as-judge: a model grades outputs, with the biases judges are known for measured.

- ``RubricJudge(model, rubric)``: pointwise, a grade on a 1-5 scale with its reasons, as a
  structured answer (a local model is held to a grammar); with ``reference=True`` the
  sample's expected answer is shown as the reference to grade against.
- ``PairwiseJudge(model, criteria)``: the output against the sample's reference (or its
  ``metadata["baseline"]``), asked in both orders; a win or a loss counts only when both
  orders agree, anything else is a tie, and disagreements are the position-bias rate.
- ``Panel([judges], how="mean" | "median" | "majority")``: several judges, one score.
- RAG judges: ``Faithfulness``, ``AnswerRelevance``, ``ContextPrecision``, ``ContextRecall``.

Every judge reports over the run: its length bias (the correlation of its score with the
output's length), and, where samples carry a human ``label``, its agreement and Cohen's
kappa with the humans, with a warning below 0.6. A judge answer that does not parse is an
error score for that sample, never a crashed run.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from tether.errors import OutputInvalid
from tether.evals.dataset import Sample
from tether.evals.scorers.base import Outcome, Score, Scorer

if TYPE_CHECKING:
    from tether.models.base import Model

KAPPA_WARNING = 0.6


class Grade(BaseModel):
    reasons: str = Field(description="what is right and wrong in the answer, briefly")
    grade: int = Field(ge=1, le=5, description="1: fails the rubric entirely; 5: meets it fully")


class Preference(BaseModel):
    reasons: str = Field(description="how the two answers differ on the criteria, briefly")
    better: Literal["A", "B", "tie"]


class Judgement(BaseModel):
    reasons: str
    verdict: bool


def _model(model: Model | str) -> Model:
    from tether.models.registry import as_model

    return as_model(model)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else Outcome(output=value).text


def _question(sample: Sample) -> str:
    value = sample.input
    if isinstance(value, dict):
        return str(value.get("question") or value.get("input") or value)
    return str(value)


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    return float(statistics.correlation(xs, ys))


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Agreement of two raters beyond what chance would give (1 perfect, 0 chance)."""
    n = len(a)
    if n == 0:
        return 0.0
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    labels = set(a) | set(b)
    expected = sum((list(a).count(k) / n) * (list(b).count(k) / n) for k in labels)
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def _as_label(value: Any) -> Any:
    """A human label as the judge's pass/fail: booleans, pass/fail words, or a 1-5 grade."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value >= 0.5 if value <= 1 else value >= 3
    text = str(value).strip().lower()
    if text in ("pass", "good", "yes", "true", "correct", "1"):
        return True
    if text in ("fail", "bad", "no", "false", "wrong", "0"):
        return False
    return text


class Judge(Scorer):
    """What every judge shares: the run-level bias and calibration report."""

    def aggregate(self, samples: Sequence[Sample], scores: Sequence[Score]) -> dict[str, Any]:
        rated = [s for s in scores if s.error is None and "length" in s.metadata]
        out: dict[str, Any] = {}
        bias = pearson([s.metadata["length"] for s in rated], [s.value for s in rated])
        if bias is not None:
            out["length_bias"] = bias
        labelled = [
            (s.value >= 0.5, _as_label(sample.label))
            for sample, s in zip(samples, scores, strict=False)
            if sample.label is not None and s.error is None
        ]
        if labelled:
            judge, human = zip(*labelled, strict=True)
            out["human_agreement"] = sum(j == h for j, h in labelled) / len(labelled)
            kappa = cohen_kappa(judge, human)
            out["kappa"] = kappa
            if kappa < KAPPA_WARNING:
                out["warning"] = (
                    f"the judge agrees with the human labels little beyond chance (kappa "
                    f"{kappa:.2f} < {KAPPA_WARNING}): check its rubric before trusting it"
                )
        return out


class RubricJudge(Judge):
    def __init__(
        self,
        model: Model | str,
        rubric: str,
        *,
        reference: bool = False,
        name: str = "judge",
    ) -> None:
        self.model = _model(model)
        self.rubric = rubric
        self.reference = reference
        self.name = name

    async def score(self, sample: Sample, outcome: Outcome) -> Score:
        parts = [f"Rubric:\n{self.rubric}", f"Question:\n{_question(sample)}"]
        if self.reference and sample.targets:
            parts.append(f"Reference answer:\n{_text(sample.targets[0])}")
        parts.append(f"Answer to grade:\n{outcome.text}")
        prompt = "\n\n".join(parts) + "\n\nGrade the answer against the rubric, from 1 to 5."
        try:
            verdict = await self.model.agenerate(
                prompt,
                output=Grade,
                system="You are a strict, fair grader.",
                temperature=0.0,
            )
        except OutputInvalid as exc:
            return Score(value=0.0, error=f"the judge's answer did not parse: {exc}")
        return Score(
            value=(verdict.grade - 1) / 4,
            explanation=f"{verdict.grade}/5: {verdict.reasons}",
            metadata={"grade": verdict.grade, "length": len(outcome.text)},
        )


class PairwiseJudge(Judge):
    """1 for a win over the other answer, 0 for a loss, 0.5 for a tie (both orders asked)."""

    def __init__(self, model: Model | str, criteria: str, *, name: str = "pairwise") -> None:
        self.model = _model(model)
        self.criteria = criteria
        self.name = name

    async def _prefer(self, question: str, first: str, second: str) -> str:
        prompt = (
            f"Criteria:\n{self.criteria}\n\nQuestion:\n{question}\n\n"
            f"Answer A:\n{first}\n\nAnswer B:\n{second}\n\n"
            "Which answer is better on the criteria: A, B, or tie?"
        )
        preference = await self.model.agenerate(
            prompt, output=Preference, system="You are an impartial judge.", temperature=0.0
        )
        return preference.better

    async def score(self, sample: Sample, outcome: Outcome) -> Score:
        other = sample.metadata.get("baseline", sample.targets[0] if sample.targets else None)
        if other is None:
            return Score(value=0.0, error="no reference or metadata['baseline'] to compare with")
        mine, theirs = outcome.text, _text(other)
        question = _question(sample)
        try:
            first, second = await asyncio.gather(
                self._prefer(question, mine, theirs), self._prefer(question, theirs, mine)
            )
        except OutputInvalid as exc:
            return Score(value=0.0, error=f"the judge's answer did not parse: {exc}")
        # In the second order the output is B: map both to "mine" / "theirs" / "tie".
        said = [
            {"A": "mine", "B": "theirs"}.get(first, "tie"),
            {"A": "theirs", "B": "mine"}.get(second, "tie"),
        ]
        consistent = said[0] == said[1]
        value = {"mine": 1.0, "theirs": 0.0}.get(said[0], 0.5) if consistent else 0.5
        words = {1.0: "win", 0.0: "loss", 0.5: "tie"}[value]
        return Score(
            value=value,
            explanation=f"{words} (output first: {said[0]}, output second: {said[1]})",
            metadata={
                "orders": said,
                "consistent": consistent,
                "length": len(mine),
                "length_gap": len(mine) - len(theirs),
            },
        )

    def aggregate(self, samples: Sequence[Sample], scores: Sequence[Score]) -> dict[str, Any]:
        out = super().aggregate(samples, scores)
        rated = [s for s in scores if "consistent" in s.metadata]
        if rated:
            out["position_bias"] = sum(not s.metadata["consistent"] for s in rated) / len(rated)
            out["win_rate"] = sum(s.value == 1.0 for s in rated) / len(rated)
            gap = pearson([s.metadata["length_gap"] for s in rated], [s.value for s in rated])
            if gap is not None:
                out["length_bias"] = gap
        return out


class Panel(Judge):
    """Several judges' scores for the same sample, combined."""

    def __init__(
        self,
        judges: Sequence[Scorer],
        *,
        how: Literal["mean", "median", "majority"] = "mean",
        name: str = "panel",
    ) -> None:
        if not judges:
            raise ValueError("a panel needs at least one judge")
        self.judges = list(judges)
        self.how = how
        self.name = name

    async def score(self, sample: Sample, outcome: Outcome) -> Score:
        scores = await asyncio.gather(*(j.ascore(sample, outcome) for j in self.judges))
        good = [s for s in scores if s.error is None]
        if not good:
            return Score(value=0.0, error="; ".join(s.error or "" for s in scores))
        values = [s.value for s in good]
        if self.how == "median":
            value = float(statistics.median(values))
        elif self.how == "majority":
            value = float(sum(v >= 0.5 for v in values) > len(values) / 2)
        else:
            value = sum(values) / len(values)
        spread = max(values) - min(values)
        return Score(
            value=value,
            explanation=f"{self.how} of {len(good)} judges (spread {spread:.2f})",
            metadata={
                "judges": {j.name: s.value for j, s in zip(self.judges, scores, strict=True)},
                "spread": spread,
                "length": len(outcome.text),
            },
        )


class _YesNo(Judge):
    """A judge that asks one yes/no question per sample (the RAG judges)."""

    question: str = ""

    def __init__(self, model: Model | str) -> None:
        self.model = _model(model)

    def context(self, sample: Sample, outcome: Outcome) -> str:
        hits = getattr(outcome.output, "hits", None)
        if hits is None and isinstance(outcome.output, dict):
            hits = outcome.output.get("hits")
        if hits:
            return "\n\n".join(
                str(h.get("text") if isinstance(h, dict) else getattr(h, "text", h)) for h in hits
            )
        if isinstance(sample.input, dict) and "context" in sample.input:
            return str(sample.input["context"])
        return ""

    def answer(self, outcome: Outcome) -> str:
        text = getattr(outcome.output, "text", None)
        if text is None and isinstance(outcome.output, dict):
            text = outcome.output.get("text")
        return str(text) if text is not None else outcome.text

    def prompt(self, sample: Sample, outcome: Outcome) -> str:
        raise NotImplementedError

    async def score(self, sample: Sample, outcome: Outcome) -> Score:
        try:
            judged = await self.model.agenerate(
                self.prompt(sample, outcome),
                output=Judgement,
                system="You check retrieval-augmented answers carefully.",
                temperature=0.0,
            )
        except OutputInvalid as exc:
            return Score(value=0.0, error=f"the judge's answer did not parse: {exc}")
        return Score(
            value=float(judged.verdict),
            explanation=judged.reasons,
            metadata={"length": len(self.answer(outcome))},
        )


class Faithfulness(_YesNo):
    """Is every claim of the answer supported by the retrieved context?"""

    name = "faithfulness"

    def prompt(self, sample: Sample, outcome: Outcome) -> str:
        return (
            f"Context:\n{self.context(sample, outcome)}\n\nAnswer:\n{self.answer(outcome)}\n\n"
            "Is every claim in the answer supported by the context? verdict true if so."
        )


class AnswerRelevance(_YesNo):
    """Does the answer address the question asked?"""

    name = "answer_relevance"

    def prompt(self, sample: Sample, outcome: Outcome) -> str:
        return (
            f"Question:\n{_question(sample)}\n\nAnswer:\n{self.answer(outcome)}\n\n"
            "Does the answer address the question (whether or not it is correct)?"
        )


class ContextPrecision(_YesNo):
    """Is the retrieved context relevant to the question?"""

    name = "context_precision"

    def prompt(self, sample: Sample, outcome: Outcome) -> str:
        return (
            f"Question:\n{_question(sample)}\n\nRetrieved context:\n"
            f"{self.context(sample, outcome)}\n\n"
            "Is the retrieved context relevant to answering the question?"
        )


class ContextRecall(_YesNo):
    """Does the retrieved context hold what the reference answer needs?"""

    name = "context_recall"

    def prompt(self, sample: Sample, outcome: Outcome) -> str:
        reference = _text(sample.targets[0]) if sample.targets else ""
        return (
            f"Reference answer:\n{reference}\n\nRetrieved context:\n"
            f"{self.context(sample, outcome)}\n\n"
            "Does the context hold the information the reference answer states?"
        )
