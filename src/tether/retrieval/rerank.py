"""Rerankers: a second, slower look at the candidates a search found.

A reranker is any callable ``(query, hits) -> scores``, one score per hit, higher first;
``index.search(query, rerank=...)`` re-sorts its candidates by it. Two come ready-made:

- ``CrossEncoder``: a cross-encoder (query and passage read together) through
  sentence-transformers (``pip install 'tether[torch]'``), by default
  ``cross-encoder/ms-marco-MiniLM-L-6-v2``, fetched from the Hugging Face Hub on first use;
- ``LLMReranker``: any tether Model grades each of the first ``top`` candidates from 0 to 10
  as a structured answer (so a local model is held to a grammar and always answers a number).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from tether import _sync
from tether.errors import ConfigError, OutputInvalid
from tether.retrieval.types import Hit

if TYPE_CHECKING:
    from tether.models.base import Model

DEFAULT_CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L-6-v2"
# The score of a candidate the LLM reranker did not grade (past ``top``, or its grade failed):
# below every grade, so those keep their search order after the graded ones.
UNGRADED = -1.0


class CrossEncoder:
    """Scores (query, passage) pairs with a sentence-transformers CrossEncoder.

    ``model`` takes an already loaded CrossEncoder (anything with ``predict(pairs)``), for
    a model you load yourself; otherwise ``name`` is loaded on first use.
    """

    def __init__(
        self,
        name: str = DEFAULT_CROSS_ENCODER,
        *,
        batch_size: int = 32,
        max_length: int = 512,
        device: str | None = None,
        model: Any = None,
    ) -> None:
        self.name = name
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device
        self._model = model

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import (  # type: ignore[import-not-found]
                    CrossEncoder as Loaded,
                )
            except ImportError as exc:
                raise ConfigError(
                    "the cross-encoder reranker needs sentence-transformers: "
                    "pip install 'tether[torch]'"
                ) from exc
            self._model = Loaded(self.name, max_length=self.max_length, device=self.device)
        return self._model

    def __call__(self, query: str, hits: Sequence[Hit]) -> list[float]:
        if not hits:
            return []
        pairs = [(query, passage(hit)) for hit in hits]
        scores = self._load().predict(pairs, batch_size=self.batch_size)
        return [float(s) for s in scores]

    def __repr__(self) -> str:
        return f"CrossEncoder({self.name!r})"


class Grade(BaseModel):
    """How well a passage answers a query."""

    score: int = Field(ge=0, le=10, description="0: unrelated; 10: answers the query fully")


GRADER = (
    "You judge search results. Given a query and a passage, grade how well the passage "
    "answers the query, from 0 (unrelated) to 10 (answers it fully)."
)


class LLMReranker:
    """Any Model grades the first ``top`` candidates, ``concurrency`` at a time.

    ``failures`` counts the grades that could not be had (the model's answer did not parse
    after its attempts); those candidates keep their search order after the graded ones.
    """

    def __init__(self, model: Model | str, *, top: int = 20, concurrency: int = 4) -> None:
        from tether.models.registry import as_model

        self.model = as_model(model)
        self.top = top
        self.concurrency = concurrency
        self.failures = 0

    def __call__(self, query: str, hits: Sequence[Hit]) -> list[float]:
        return _sync.run(self.arerank(query, hits))

    async def arerank(self, query: str, hits: Sequence[Hit]) -> list[float]:
        gate = asyncio.Semaphore(self.concurrency)

        async def grade(hit: Hit) -> float:
            text = f"Query: {query}\n\nPassage:\n{passage(hit)}\n\nGrade the passage."
            async with gate:
                try:
                    graded = await self.model.agenerate(
                        text, output=Grade, system=GRADER, temperature=0.0
                    )
                except OutputInvalid:  # a provider outage raises: it is not a low grade
                    self.failures += 1
                    return UNGRADED
            return float(graded.score)

        head = list(hits[: self.top])
        grades = await asyncio.gather(*(grade(h) for h in head))
        return [*grades, *[UNGRADED] * (len(hits) - len(head))]

    def __repr__(self) -> str:
        return f"LLMReranker({self.model.id!r}, top={self.top})"


def passage(hit: Hit) -> str:
    """What a reranker reads of a hit: its heading path and its text."""
    return "\n".join([" > ".join(hit.headings), hit.text] if hit.headings else [hit.text])
