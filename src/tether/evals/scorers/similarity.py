"""Similarity to a reference: ROUGE-L (Google's ``rouge-score`` package, the one the
summarisation literature reports) and embedding cosine similarity (any tether embedder,
the embedded MiniLM by default)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tether.evals.dataset import Sample
from tether.evals.scorers.base import Outcome, Score, Scorer

if TYPE_CHECKING:
    from tether.models.embeddings import Embedder


class RougeL(Scorer):
    """ROUGE-L F-measure against the best reference, with Porter stemming."""

    name = "rouge_l"

    def __init__(self) -> None:
        self._scorer: Any = None

    def score(self, sample: Sample, outcome: Outcome) -> Score:
        if self._scorer is None:
            try:
                from rouge_score import rouge_scorer  # type: ignore[import-untyped]
            except ImportError as exc:
                raise ImportError("ROUGE-L needs rouge-score: pip install 'tether[evals]'") from exc
            self._scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
        refs = [str(t) for t in sample.targets]
        if not refs:
            return Score(value=0.0, explanation="the sample has no reference")
        best = max(self._scorer.score(ref, outcome.text)["rougeL"].fmeasure for ref in refs)
        return Score(value=float(best), explanation=f"ROUGE-L F {best:.3f}")


class EmbeddingSimilarity(Scorer):
    """Cosine similarity of the output's embedding and the closest reference's."""

    name = "similarity"

    def __init__(self, embedder: str | Embedder = "local:minilm") -> None:
        self._given = embedder
        self._embedder: Embedder | None = None

    def _embed(self) -> Embedder:
        if self._embedder is None:
            from tether.models.embeddings import Embedder
            from tether.models.embeddings import embedder as make

            given = self._given
            self._embedder = given if isinstance(given, Embedder) else make(given)
        return self._embedder

    async def score(self, sample: Sample, outcome: Outcome) -> Score:
        refs = [str(t) for t in sample.targets]
        if not refs:
            return Score(value=0.0, explanation="the sample has no reference")
        vectors = await self._embed().aembed([outcome.text or " ", *refs])
        best = float(max(vectors[1:] @ vectors[0]))
        return Score(value=best, explanation=f"cosine {best:.3f} to the closest reference")
