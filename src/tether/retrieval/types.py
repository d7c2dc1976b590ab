"""What retrieval stores and returns: documents, their chunks, search hits and citations.

Offsets are character offsets into ``Document.text`` (a Python ``str`` index), so a citation
points at the exact span a reader can check: ``document.text[citation.start:citation.end]``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, Field


def content_hash(text: str) -> str:
    """The sha256 of ``text`` as UTF-8: how unchanged content is recognised everywhere."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Page(BaseModel):
    """A page of a paged document (PDF): its number from 1 and where it lies in the text."""

    number: int = Field(ge=1)
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class Document(BaseModel):
    """One document as a loader read it.

    ``source`` identifies it in its index: a file's path, or ``path#id`` for one row of a
    CSV or JSONL file. ``modified`` is the file's modification time (seconds since the epoch).
    """

    source: str
    text: str
    title: str | None = None
    modified: float | None = None
    pages: list[Page] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def hash(self) -> str:
        """Changes whenever the text, title or metadata change: a re-ingest replaces it."""
        meta = repr(sorted(self.metadata.items()))
        return content_hash(f"{self.title}\x00{meta}\x00{self.text}")

    def page_at(self, offset: int) -> int | None:
        """The number of the page holding character ``offset``, when the document has pages."""
        for page in self.pages:
            if page.start <= offset < page.end:
                return page.number
        return self.pages[-1].number if self.pages and offset >= self.pages[-1].end else None


class Chunk(BaseModel):
    """A span of a document, the unit that is embedded and searched.

    ``text`` is ``document.text[start:end]``, unless the chunk was enriched, in which case
    ``context`` holds the sentence that situates it (embedded and searched with it).
    ``headings`` is the Markdown heading path above the chunk.
    """

    text: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    ordinal: int = Field(default=0, ge=0)
    page: int | None = None
    headings: list[str] = Field(default_factory=list)
    context: str | None = None

    @property
    def searchable(self) -> str:
        """What is embedded and indexed: the heading path and context, then the text."""
        parts = [" > ".join(self.headings)] if self.headings else []
        if self.context:
            parts.append(self.context)
        parts.append(self.text)
        return "\n".join(parts)


class Hit(BaseModel):
    """A chunk found by a search, with its score and the scores that made it."""

    chunk_id: int
    source: str
    title: str | None = None
    text: str
    start: int
    end: int
    page: int | None = None
    headings: list[str] = Field(default_factory=list)
    score: float
    scores: dict[str, float] = Field(default_factory=dict)  # bm25, dense, fused, rerank
    metadata: dict[str, Any] = Field(default_factory=dict)


class Citation(BaseModel):
    """Where a sentence of an answer comes from: a span of a document, and how well the span
    supports the sentence (lexical overlap and embedding similarity, both 0..1)."""

    source: str
    title: str | None = None
    page: int | None = None
    start: int
    end: int
    quote: str
    lexical: float
    semantic: float
