"""Grounded answers: retrieve, answer from the sources, then check every sentence.

The model answers from numbered sources and cites them as ``[n]``. Each sentence is then
checked against what it cites (tether.retrieval.support): supported when enough of its
content words are in the cited span (lexical) or its embedding is close enough (semantic).
An uncited sentence that a retrieved chunk supports gets that citation; one that nothing
supports is dropped (or kept and flagged). The answer abstains, "the documents do not say",
when the evidence retrieved is too weak to answer from, when the model says so, or when no
sentence survives the check. Thresholds are settings and go on the answer's span.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tether import _sync
from tether.retrieval.support import best_span, lexical_support, numbers, sentences, stems
from tether.retrieval.types import Citation, Hit
from tether.tracing import spans as trace

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from tether.models.base import Model
    from tether.retrieval.indexes import Index, Mode, Reranker, Rewriter

ABSTAIN = "The documents do not say."
SYSTEM = (
    "Answer the question using only the numbered sources. Write one to three short "
    "sentences. End each sentence with the number of the source it comes from, like [1]. "
    f"If the sources do not answer the question, reply exactly: {ABSTAIN}"
)
# Words of the prompt a small model echoes ("Question: ...", "The answer is:").
PROMPT_WORDS = stems("question answer sources source documents")
CITE = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")


class Grounding(BaseModel):
    """When evidence is strong enough to answer from, and a sentence supported."""

    model_config = ConfigDict(extra="forbid")

    #: Abstain unless some retrieved chunk is at least this close to the question (the
    #: larger of its lexical coverage of the question and its cosine similarity).
    min_relevance: float = Field(default=0.35, ge=0, le=1)
    #: A sentence is supported by a span holding this share of its content words ...
    min_lexical: float = Field(default=0.6, ge=0, le=1)
    #: ... or whose embedding is at least this similar, while still sharing ``min_overlap``
    #: of its words (a sentence about the same topic is similar without being supported).
    min_semantic: float = Field(default=0.7, ge=0, le=1)
    min_overlap: float = Field(default=0.3, ge=0, le=1)
    #: Every figure in the sentence must be in the retrieved sources.
    check_numbers: bool = True
    unsupported: Literal["drop", "flag"] = "drop"


class Sentence(BaseModel):
    text: str
    citations: list[Citation] = Field(default_factory=list)
    supported: bool


class Answer(BaseModel):
    question: str
    text: str
    sentences: list[Sentence] = Field(default_factory=list)
    abstained: bool = False
    reason: str | None = None
    hits: list[Hit] = Field(default_factory=list)
    relevance: float = 0.0
    model: str | None = None

    @property
    def citations(self) -> list[Citation]:
        return [c for s in self.sentences if s.supported for c in s.citations]

    def __str__(self) -> str:
        return self.text


def _sources(hits: list[Hit]) -> str:
    blocks = []
    for number, hit in enumerate(hits, start=1):
        where = hit.title or hit.source
        if hit.page is not None:
            where += f", page {hit.page}"
        blocks.append(f"[{number}] ({where})\n{hit.text}")
    return "\n\n".join(blocks)


def relevance(question: str, hit: Hit) -> float:
    lexical = lexical_support(question, hit.text)
    return max(lexical, hit.scores.get("dense", 0.0))


class _Checker:
    def __init__(self, index: Index, hits: list[Hit], grounding: Grounding) -> None:
        self.index = index
        self.hits = hits
        self.grounding = grounding
        self.vectors = index.store.chunk_vectors(index.info, [h.chunk_id for h in hits])
        self.figures = numbers(" ".join(h.text for h in hits))

    def citation(self, sentence: str, hit: Hit, semantic: float) -> Citation:
        start, end, lexical = best_span(sentence, hit.text)
        return Citation(
            source=hit.source,
            title=hit.title,
            page=hit.page,
            start=hit.start + start,
            end=hit.start + end,
            quote=hit.text[start:end],
            lexical=round(max(lexical, lexical_support(sentence, hit.text)), 4),
            semantic=round(semantic, 4),
        )

    def supported(self, citation: Citation) -> bool:
        g = self.grounding
        return citation.lexical >= g.min_lexical or (
            citation.semantic >= g.min_semantic and citation.lexical >= g.min_overlap
        )

    def check(self, text: str, cited: list[int], vector: npt.NDArray[np.float32]) -> Sentence:
        if self.grounding.check_numbers and not numbers(text) <= self.figures:
            return Sentence(text=text, supported=False)  # a figure no source holds
        similarity = self.vectors @ vector
        good = [
            c
            for c in (self.citation(text, self.hits[i], float(similarity[i])) for i in cited)
            if self.supported(c)
        ]
        if not good:  # cited nothing that holds it: does any retrieved chunk?
            found = [self.citation(text, h, float(similarity[i])) for i, h in enumerate(self.hits)]
            best = max(found, key=lambda c: (self.supported(c), c.lexical + c.semantic))
            good = [best] if self.supported(best) else []
        return Sentence(text=text, citations=good, supported=bool(good))


def _split(answer: str, question: str, hits: list[Hit]) -> list[tuple[str, list[int]]]:
    """The answer's sentences with the source numbers each cites (0-based, in range).
    A sentence that only repeats the question or a source's label ("(Tea)", "## Black
    tea", as a small model copies them from the prompt) says nothing and is left out."""
    count = len(hits)
    labels = stems(" ".join(f"{h.title or h.source} {' '.join(h.headings)}" for h in hits))
    labels |= stems(question) | PROMPT_WORDS
    parts: list[tuple[str, list[int]]] = []
    for start, end in sentences(answer):
        raw = answer[start:end]
        cited: list[int] = []
        for match in CITE.finditer(raw):
            cited += [int(n) - 1 for n in re.findall(r"\d+", match.group(1))]
        text = CITE.sub("", raw).strip()
        said = stems(text)
        if said and not (said <= labels and numbers(text) <= numbers(question)):
            parts.append((text, sorted({i for i in cited if 0 <= i < count})))
        elif parts and cited:  # "[2]" alone after a sentence: it belongs to that one
            parts[-1][1].extend(i for i in cited if 0 <= i < count)
    return parts


def _render(kept: list[Sentence], hits: list[Hit], flag: bool) -> str:
    out = []
    for sentence in kept:
        marks = []
        for citation in sentence.citations:
            # The source's chunk that holds the quote: a document cut into several chunks
            # has one number per chunk, and an earlier chunk is not the one cited.
            number = next(
                (
                    n
                    for n, h in enumerate(hits, start=1)
                    if h.source == citation.source and h.start <= citation.start < h.end
                ),
                None,
            )
            if number is not None:
                marks.append(f"[{number}]")
        suffix = "".join(dict.fromkeys(marks))
        if not sentence.supported and flag:
            suffix += " [unsupported]"
        out.append(f"{sentence.text}{' ' + suffix if suffix else ''}")
    return " ".join(out)


async def aask(
    question: str,
    *,
    index: Index | str = "default",
    model: Model | str | None = None,
    k: int = 5,
    mode: Mode = "hybrid",
    filters: Mapping[str, Any] | None = None,
    grounding: Grounding | None = None,
    rerank: Reranker | None = None,
    rewrite: Rewriter | None = None,
    **params: Any,
) -> Answer:
    """A cited answer to ``question`` from ``index``: see the module's docstring.
    ``rerank`` and ``rewrite`` go to the search (see Index.search)."""
    from tether.models.registry import as_model
    from tether.retrieval.indexes import index as open_index

    grounding = grounding or Grounding()
    idx = open_index(index, create=False) if isinstance(index, str) else index
    chat = as_model(model)
    attributes = {
        "tether.operation": "ask",
        "tether.index": idx.name,
        "tether.answer.min_relevance": grounding.min_relevance,
        "tether.answer.min_lexical": grounding.min_lexical,
        "tether.answer.min_semantic": grounding.min_semantic,
        "tether.answer.min_overlap": grounding.min_overlap,
        "tether.answer.check_numbers": grounding.check_numbers,
    }
    with trace.span(idx.settings, f"ask {idx.name}", attributes) as span:
        # Search is sync (the stores are): off the loop, so it may call the embedder's twin.
        hits = await asyncio.to_thread(
            idx.search, question, k=k, mode=mode, filters=filters, rerank=rerank, rewrite=rewrite
        )
        if mode != "lexical" and hits:
            query = await idx.embedder.aembed(question)
            vectors = idx.store.chunk_vectors(idx.info, [h.chunk_id for h in hits])
            for hit, score in zip(hits, vectors @ query, strict=True):
                hit.scores.setdefault("dense", float(score))
        strength = max((relevance(question, h) for h in hits), default=0.0)
        answer = Answer(question=question, text=ABSTAIN, hits=hits, relevance=strength)
        span.set_attribute("tether.answer.relevance", strength)
        if strength < grounding.min_relevance:
            answer.abstained = True
            answer.reason = (
                f"the best evidence ({strength:.2f}) is below min_relevance "
                f"({grounding.min_relevance})"
            )
        else:
            await _answer(answer, idx, chat, grounding, params)
        span.set_attribute("tether.answer.abstained", answer.abstained)
        span.set_attribute("tether.answer.supported", sum(s.supported for s in answer.sentences))
        span.set_attribute(
            "tether.answer.unsupported", sum(not s.supported for s in answer.sentences)
        )
        if answer.reason:
            span.set_attribute("tether.answer.reason", answer.reason)
    return answer


async def _answer(
    answer: Answer, idx: Index, chat: Model, grounding: Grounding, params: dict[str, Any]
) -> None:
    hits = answer.hits
    prompt = f"Sources:\n\n{_sources(hits)}\n\nQuestion: {answer.question}"
    params.setdefault("temperature", 0.0)
    params.setdefault("max_tokens", 200)
    response = await chat.agenerate(prompt, system=SYSTEM, **params)
    answer.model = response.model
    said = response.text.strip()
    if not said or ABSTAIN.lower().rstrip(".") in said.lower():
        answer.abstained = True
        answer.reason = "the model found no answer in the sources"
        return
    parts = _split(said, answer.question, hits)
    checker = _Checker(idx, hits, grounding)
    if parts:
        vectors = await idx.embedder.aembed([text for text, _ in parts])
        answer.sentences = [
            checker.check(text, cited, vector)
            for (text, cited), vector in zip(parts, vectors, strict=True)
        ]
    flag = grounding.unsupported == "flag"
    kept = [s for s in answer.sentences if s.supported or flag]
    if not any(s.supported for s in kept):
        answer.abstained = True
        answer.reason = "no sentence of the model's answer is supported by the sources"
        return
    answer.text = _render(kept, hits, flag)


def ask(question: str, **options: Any) -> Answer:
    """Sync twin of aask; works inside a running event loop."""
    return _sync.run(aask(question, **options))
