"""BM25 from postings files (a large index's lexical search) against FTS5's own bm25() on
the same tables: the same scores, the same top k, filters, staleness and the files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tether.retrieval.chunking import Chunking
from tether.retrieval.stores.base import IndexInfo
from tether.retrieval.stores.lexical import Postings
from tether.retrieval.stores.sqlite import SQLiteStore
from tether.retrieval.types import Chunk, Document

WORDS = [
    "cell",
    "cells",
    "running",
    "runs",
    "ran",
    "protein",
    "proteins",
    "café",
    "cafe",
    "gene",
    "genes",
    "the",
    "of",
    "and",
    "a",
    "in",
    "tumour",
    "tumor",
    "mouse",
    "mice",
    "insulin",
    "receptor",
    "binding",
    "expression",
    "levels",
    "patients",
    "risk",
    "vitamin",
    "deficiency",
    "bone",
    "density",
    "fracture",
    "trial",
    "placebo",
    "dose",
    "response",
]
QUERIES = [
    "cells",
    "running cell",
    "the of and",
    "Café protein binding",
    "insulin receptor expression in mice",
    "vitamin D deficiency and bone fracture risk",
    "tumour_gene",
    "placebo dose-response trial patients",
    "zebrafish",
    "the cell cells",
]


def write_corpus(store: SQLiteStore, info: IndexInfo, documents: int, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    shares = 1.0 / np.arange(1, len(WORDS) + 1)
    shares /= shares.sum()
    for d in range(documents):
        texts = [
            " ".join(rng.choice(WORDS, size=int(rng.integers(3, 40)), p=shares))
            for _ in range(int(rng.integers(1, 5)))
        ]
        chunks, at = [], 0
        for ordinal, text in enumerate(texts):
            chunks.append(Chunk(text=text, start=at, end=at + len(text), ordinal=ordinal))
            at += len(text) + 1
        document = Document(source=f"doc{d}", text="\n".join(texts), metadata={"part": d % 3})
        vectors = rng.normal(size=(len(chunks), 8)).astype(np.float32)
        store.write_document(info, document, None, chunks, vectors)


@pytest.fixture
def stores(tmp_path: Path) -> tuple[SQLiteStore, SQLiteStore, IndexInfo]:
    """The same database through FTS5 (never large) and through postings (always large)."""
    db = tmp_path / "tether.db"
    fts = SQLiteStore(db, approximate_from=10**9)
    info = fts.create_index("docs", "test", 8, Chunking())
    write_corpus(fts, info, 120)
    postings = SQLiteStore(db, approximate_from=0)
    return fts, postings, info


def test_scores_and_top_k_are_fts5s(stores: tuple[SQLiteStore, SQLiteStore, IndexInfo]) -> None:
    fts, postings, info = stores
    for query in QUERIES:
        every = dict(fts.lexical(info, query, 10_000))
        mine = dict(postings.lexical(info, query, 10_000))
        assert mine.keys() == every.keys(), query
        for chunk_id, score in every.items():
            assert mine[chunk_id] == pytest.approx(score, rel=1e-5), (query, chunk_id)
        for k in (1, 3, 10):
            top = postings.lexical(info, query, k)
            best = sorted(every.values(), reverse=True)[:k]
            assert [s for _, s in top] == pytest.approx(best, rel=1e-5), (query, k)
            # each chunk returned holds the score FTS5 gives it: pruning lost nothing
            for chunk_id, score in top:
                assert every[chunk_id] == pytest.approx(score, rel=1e-5)
    assert postings.lexical(info, "zebrafish", 10) == []
    assert postings.lexical(info, "   ", 10) == []


def test_filters_keep_only_their_documents(
    stores: tuple[SQLiteStore, SQLiteStore, IndexInfo],
) -> None:
    fts, postings, info = stores
    for query in QUERIES[:6]:
        every = fts.lexical(info, query, 5, {"part": 1})
        mine = postings.lexical(info, query, 5, {"part": 1})
        assert [s for _, s in mine] == pytest.approx([s for _, s in every], rel=1e-5)
        kept = {c for c, _ in fts.lexical(info, query, 10_000, {"part": 1})}
        assert {c for c, _ in mine} <= kept
    assert postings.lexical(info, "cells", 5, {"part": 7}) == []


def test_a_write_makes_the_postings_stale(
    stores: tuple[SQLiteStore, SQLiteStore, IndexInfo],
) -> None:
    fts, postings, info = stores
    assert postings.lexical(info, "zebrafish", 5) == []
    chunk = Chunk(text="zebrafish fins regrow", start=0, end=21)
    document = Document(source="new", text="zebrafish fins regrow")
    postings.write_document(info, document, None, [chunk], np.ones((1, 8), dtype=np.float32))
    [(chunk_id, score)] = postings.lexical(info, "zebrafish", 5)
    [(same_id, same_score)] = fts.lexical(info, "zebrafish", 5)
    assert chunk_id == same_id and score == pytest.approx(same_score, rel=1e-5)
    postings.delete_documents(info, ["new"])
    assert postings.lexical(info, "zebrafish", 5) == []


def test_files_are_reused_then_rebuilt_when_damaged(
    stores: tuple[SQLiteStore, SQLiteStore, IndexInfo],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, postings, info = stores
    first = postings.lexical(info, "insulin receptor", 5)
    assert (tmp_path / "terms" / "docs.json").is_file()
    reads: list[int] = []
    real = Postings.read

    def counted(db: object, table: str) -> Postings:
        reads.append(1)
        return real(db, table)  # type: ignore[arg-type]

    monkeypatch.setattr(Postings, "read", staticmethod(counted))
    again = SQLiteStore(tmp_path / "tether.db", approximate_from=0)
    assert again.lexical(info, "insulin receptor", 5) == first
    assert reads == []  # from the files
    (tmp_path / "terms" / "docs.docs.npy").write_bytes(b"half a file")
    third = SQLiteStore(tmp_path / "tether.db", approximate_from=0)
    assert third.lexical(info, "insulin receptor", 5) == first
    assert reads == [1]  # a damaged file is read anew from FTS5, never trusted
    assert third.drop_index("docs")
    assert not list((tmp_path / "terms").glob("docs.*"))


def test_an_empty_large_index_finds_nothing(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "tether.db", approximate_from=0)
    info = store.create_index("empty", "test", 8, Chunking())
    assert store.lexical(info, "anything at all", 5) == []


def test_reading_in_small_groups_builds_the_same_postings(
    stores: tuple[SQLiteStore, SQLiteStore, IndexInfo], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tether.retrieval.stores import lexical

    fts, _, info = stores
    table = f"rag_fts_{info.index_id}"
    whole = Postings.read(fts.db, table)
    monkeypatch.setattr(lexical, "GROUP", 5)  # fewer occurrences than most terms have
    grouped = Postings.read(fts.db, table)
    assert grouped.terms == whole.terms
    for name in lexical.ARRAYS:
        assert np.array_equal(getattr(grouped, name), getattr(whole, name)), name
    assert len(whole.docs) > len(whole.terms) > 10
