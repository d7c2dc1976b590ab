"""Query rewriting: a model turns one question into a few searches.

Users ask in their words, documents speak in theirs. ``index.search(query,
rewrite=QueryRewriter(model))`` has a model write up to ``n`` other phrasings of the query
(synonyms, the terms a document would use, a question split in its parts); each is searched
like the query itself and the ranked lists are fused by reciprocal rank fusion, the original
query's list counting as much as all the others together. Any callable ``query -> [queries]``
works in its place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from tether import _sync

if TYPE_CHECKING:
    from tether.models.base import Model

WRITER = (
    "You rewrite search queries for a document search engine. Give other phrasings of the "
    "query that the documents might use: synonyms, technical terms, the question's parts. "
    "Keep each one short."
)


class Rewrites(BaseModel):
    queries: list[str] = Field(description="other phrasings of the query, each a short search")


class QueryRewriter:
    """A Model writes up to ``n`` more searches for a query (a structured answer)."""

    def __init__(self, model: Model | str, *, n: int = 3) -> None:
        from tether.models.registry import as_model

        self.model = as_model(model)
        self.n = n

    def __call__(self, query: str) -> list[str]:
        return _sync.run(self.arewrite(query))

    async def arewrite(self, query: str) -> list[str]:
        written = await self.model.agenerate(
            f"Query: {query}\n\nWrite up to {self.n} other searches for it.",
            output=Rewrites,
            system=WRITER,
            temperature=0.0,
        )
        return distinct(query, written.queries)[: self.n]

    def __repr__(self) -> str:
        return f"QueryRewriter({self.model.id!r}, n={self.n})"


def distinct(query: str, queries: list[str]) -> list[str]:
    """The rewrites that add something: stripped, non-empty, not the query again, each once."""
    seen = {" ".join(query.lower().split())}
    out = []
    for q in queries:
        key = " ".join(q.lower().split())
        if key and key not in seen:
            seen.add(key)
            out.append(q.strip())
    return out
