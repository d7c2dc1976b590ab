"""Contextual enrichment: a model writes one sentence situating each chunk in its document.

A chunk that says "revenue rose 3% that year" is hard to find by the company and the year its
document is about. With ``tether.index(name, enrich="local:smollm2")`` a model reads the
document and the chunk and writes one sentence that says where the chunk sits; the sentence
is embedded and indexed with the chunk (``Chunk.context``) while citations still point at the
chunk's own span. Each sentence is cached in the project database by (model, a hash of what
the model was shown), so a re-ingest, or another index over the same files, asks nothing twice.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from tether import _sync
from tether.retrieval.types import Chunk, Document, content_hash
from tether.store.db import connect, transaction

if TYPE_CHECKING:
    from tether.models.base import Model

SYSTEM = (
    "You situate a passage within the document it comes from, to help search find it. "
    "Answer with one short sentence and nothing else."
)
# Bumped whenever the prompt changes, so sentences written for an older prompt are not reused.
PROMPT_VERSION = "1"
# How much of the document the model reads: its opening and the text around the chunk.
WINDOW_CHARS = 6000
MAX_CONTEXT_CHARS = 400
CONCURRENCY = 4
TAG = re.compile(r"</?(?:document|passage)>", re.IGNORECASE)


def document_window(document: Document, chunk: Chunk, size: int = WINDOW_CHARS) -> str:
    """The document as the model sees it for ``chunk``: all of it when it fits, else its
    opening and the text around the chunk."""
    text = document.text
    if len(text) <= size:
        return text
    head = text[: size // 2]
    around = size // 4
    start = max(size // 2, chunk.start - around)
    return f"{head}\n[...]\n{text[start : chunk.end + around]}"


def prompt(document: Document, chunk: Chunk) -> str:
    title = f"Title: {document.title}\n" if document.title else ""
    return (
        f"<document>\n{title}{document_window(document, chunk)}\n</document>\n\n"
        f"A passage from this document:\n<passage>\n{chunk.text}\n</passage>\n\n"
        "Write one short sentence that situates this passage within the document: what the "
        "document is and what this passage is about. Answer with the sentence only."
    )


def first_sentence(text: str) -> str | None:
    """The model's sentence, trimmed: its first line with words in it once the prompt's own
    tags (a small model echoes ``<passage>``) are gone, cut at the cap."""
    lines = (TAG.sub("", ln).strip() for ln in text.splitlines())
    line = next((ln for ln in lines if any(c.isalpha() for c in ln)), "")
    return line[:MAX_CONTEXT_CHARS] or None


class ContextCache:
    """Sentences already written, in the project database (table chunk_contexts)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = connect(self.db_path)
        return self._db

    def get(self, model: str, digest: str) -> str | None:
        with self._lock:
            row = (
                self._conn()
                .execute(
                    "SELECT context FROM chunk_contexts WHERE model = ? AND hash = ?",
                    (model, digest),
                )
                .fetchone()
            )
        return None if row is None else str(row[0])

    def put(self, model: str, digest: str, context: str) -> None:
        with self._lock, transaction(self._conn()) as db:
            db.execute(
                "INSERT OR REPLACE INTO chunk_contexts (model, hash, context) VALUES (?,?,?)",
                (model, digest, context),
            )

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class Enricher:
    """Writes (or finds in the cache) the situating sentence of every chunk of a document.

    A model error propagates: the ingest stops with it, every document written before stays,
    and the next run goes on from there (no chunk is stored without its sentence).
    """

    def __init__(self, model: Model, cache: ContextCache, concurrency: int = CONCURRENCY):
        self.model = model
        self.cache = cache
        self.concurrency = concurrency
        self.written = 0  # sentences the model wrote (cache misses)
        self.cached = 0

    def enrich(self, document: Document, chunks: list[Chunk]) -> None:
        _sync.run(self.aenrich(document, chunks))

    async def aenrich(self, document: Document, chunks: list[Chunk]) -> None:
        gate = asyncio.Semaphore(self.concurrency)

        async def one(chunk: Chunk) -> None:
            text = prompt(document, chunk)
            digest = content_hash(f"{PROMPT_VERSION}\x00{SYSTEM}\x00{text}")
            found = await asyncio.to_thread(self.cache.get, self.model.id, digest)
            if found is not None:
                self.cached += 1
                chunk.context = found or None
                return
            async with gate:
                response = await self.model.agenerate(
                    text, system=SYSTEM, temperature=0.0, max_tokens=80
                )
            sentence = first_sentence(response.text) or ""
            await asyncio.to_thread(self.cache.put, self.model.id, digest, sentence)
            self.written += 1
            chunk.context = sentence or None

        await asyncio.gather(*(one(c) for c in chunks))

    def close(self) -> None:
        self.cache.close()
