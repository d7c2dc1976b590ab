"""One suite, both stores: every test here runs on the embedded store and on PostgreSQL."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

import tether
from tether.config import Settings
from tether.errors import ConfigError, IndexMismatch, StoreUnavailable
from tether.models.embeddings import Backend, Batch, Embedder
from tether.retrieval import Document

DOCS = [
    Document(
        source="cats.txt",
        title="Cats",
        text="Cats are small domesticated carnivores. They purr when content and sleep "
        "for most of the day.",
        metadata={"topic": "animals", "year": 2020},
    ),
    Document(
        source="rust.md",
        title="Rust",
        text="The Rust compiler checks ownership and borrowing at compile time, which "
        "prevents data races.",
        metadata={"topic": "programming", "year": 2021},
    ),
    Document(
        source="bread.txt",
        title="Bread",
        text="Sourdough bread rises because wild yeast and lactic acid bacteria ferment the dough.",
        metadata={"topic": "cooking", "year": 2020},
    ),
]


class Letters(Backend):
    """A tiny deterministic embedder (letter counts): a second embedder to switch to."""

    provider = "test"

    @property
    def dimensions(self) -> int:
        return 26

    @property
    def window(self) -> int:
        return 10_000

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def embed(self, texts: list[str]) -> Batch:
        rows = np.zeros((len(texts), 26), dtype=np.float32)
        for row, text in enumerate(texts):
            for char in text.lower():
                if "a" <= char <= "z":
                    rows[row, ord(char) - 97] += 1
        rows /= np.clip(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9, None)
        return Batch(vectors=rows, tokens=sum(len(t.split()) for t in texts))


@pytest.fixture
def index(settings: Settings) -> tether.Index:
    made = tether.index("notes", settings=settings)
    made.add(DOCS)
    return made


def test_lexical_dense_and_hybrid_find_the_right_document(index: tether.Index) -> None:
    assert index.search("sourdough yeast", mode="lexical", k=1)[0].source == "bread.txt"
    # No word in common with the text: only the embeddings can find it.
    assert index.search("kitten napping", mode="dense", k=1)[0].source == "cats.txt"
    hits = index.search("compile-time memory safety", k=3)
    assert hits[0].source == "rust.md"
    assert "fused" in hits[0].scores and "dense" in hits[0].scores


def test_hits_point_at_their_exact_span(index: tether.Index) -> None:
    for hit in index.search("dough", k=3):
        text = index.store.document_text(index.info, hit.source)
        assert text is not None and text[hit.start : hit.end] == hit.text


def test_weighted_fusion_and_its_weights(index: tether.Index) -> None:
    lexical_only = index.search(
        "purr", fusion="weighted", weights={"lexical": 1.0, "dense": 0.0}, k=3
    )
    assert lexical_only[0].source == "cats.txt"
    assert lexical_only[0].score == pytest.approx(1.0)


def test_the_rrf_constant_reaches_fusion(index: tether.Index) -> None:
    query = "purring cats and their bread"
    lexical = [h.chunk_id for h in index.search(query, mode="lexical", k=10)]
    dense = [h.chunk_id for h in index.search(query, mode="dense", k=10)]
    for constant in (0, 1, 60):
        expected: dict[int, float] = {}
        for ranked in (lexical, dense):
            for rank, chunk_id in enumerate(ranked, start=1):
                expected[chunk_id] = expected.get(chunk_id, 0.0) + 1 / (constant + rank)
        hits = index.search(query, k=10, rrf_k=constant)
        assert {h.chunk_id: h.score for h in hits} == pytest.approx(expected)
    with pytest.raises(ConfigError, match="rrf_k must be 0 or more"):
        index.search(query, rrf_k=-1)


def test_filters_on_metadata_and_source(index: tether.Index) -> None:
    found = index.search("the", mode="dense", k=5, filters={"topic": "cooking"})
    assert [h.source for h in found] == ["bread.txt"]
    found = index.search("compiler bread cats", mode="lexical", k=5, filters={"year": 2020})
    assert sorted(h.source for h in found) == ["bread.txt", "cats.txt"]
    found = index.search("compiler bread cats", k=5, filters={"source": "*.md"})
    assert [h.source for h in found] == ["rust.md"]
    found = index.search("bread", k=5, filters={"topic": ["cooking", "animals"]})
    assert {h.source for h in found} <= {"bread.txt", "cats.txt"}


def test_unchanged_documents_are_skipped_and_changed_ones_replaced(index: tether.Index) -> None:
    again = index.add(DOCS)
    assert (again.documents_unchanged, again.documents_written) == (3, 0)
    changed = DOCS[2].model_copy(update={"text": "Rye bread is dense and dark."})
    report = index.add([changed])
    assert report.documents_replaced == 1
    assert index.stats()["documents"] == 3
    assert index.search("sourdough", mode="lexical") == []
    assert index.search("rye", mode="lexical")[0].source == "bread.txt"


def test_duplicate_documents_are_stored_once(index: tether.Index) -> None:
    copy = DOCS[0].model_copy(update={"source": "copy-of-cats.txt"})
    report = index.add([copy])
    assert report.duplicates == ["copy-of-cats.txt = cats.txt"]
    assert index.stats()["documents"] == 3


def test_remove_documents(index: tether.Index) -> None:
    assert index.remove(["cats.txt"]) == 1
    assert all(h.source != "cats.txt" for h in index.search("cats purr", k=5))
    assert index.stats()["documents"] == 2


def test_mmr_spreads_hits(index: tether.Index) -> None:
    plain = index.search("animals bread", mode="dense", k=3)
    spread = index.search("animals bread", mode="dense", k=3, mmr_diversity=0.9)
    assert {h.source for h in plain} == {h.source for h in spread}
    assert len(spread) == 3


def test_rerank_reorders(index: tether.Index) -> None:
    def by_length(query: str, hits: list[tether.Hit]) -> list[float]:
        return [float(len(h.text)) for h in hits]

    hits = index.search("bread cats rust", k=3, rerank=by_length)
    assert [h.scores["rerank"] for h in hits] == sorted(
        (h.scores["rerank"] for h in hits), reverse=True
    )


def test_another_embedder_on_an_existing_index_is_refused(
    index: tether.Index, settings: Settings
) -> None:
    letters = Embedder(Letters("letters"), settings)
    with pytest.raises(IndexMismatch, match=r"built with local:minilm.*reembed"):
        tether.index("notes", embedder=letters, settings=settings)
    index.reembed(letters)
    assert index.info.embedder == "test:letters" and index.info.dimensions == 26
    reopened = tether.index("notes", embedder=letters, settings=settings)
    assert reopened.stats()["chunks"] == index.stats()["chunks"]
    assert reopened.search("sourdough bread", mode="dense", k=1)[0].source == "bread.txt"


def test_a_query_longer_than_the_window_is_cut_not_refused(index: tether.Index) -> None:
    query = "bread " * 3000
    assert index.search(query, k=1)[0].source == "bread.txt"


def test_unknown_mode_and_bad_names(index: tether.Index, settings: Settings) -> None:
    with pytest.raises(ConfigError, match="unknown search mode"):
        index.search("x", mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not valid"):
        tether.index("no spaces please", settings=settings)
    with pytest.raises(ConfigError, match="no index named 'missing'"):
        tether.index("missing", create=False, settings=settings)


def test_search_is_a_span_with_its_hits(index: tether.Index, settings: Settings) -> None:
    from tether.tracing.setup import flush

    index.search("sourdough", k=2)
    assert flush()
    db = sqlite3.connect(settings.db_path)
    (attributes,) = db.execute(
        "SELECT attributes FROM spans WHERE name = 'search notes' ORDER BY start_ns DESC"
    ).fetchone()
    data = json.loads(attributes)
    assert data["tether.search.mode"] == "hybrid"
    assert "bread.txt" in data["tether.search.hits"]


def test_postgres_unreachable_is_a_clear_error(project: object) -> None:
    settings = Settings(database_url="postgresql://tether:secret@127.0.0.1:9/nothing")
    with pytest.raises(StoreUnavailable, match="cannot reach PostgreSQL") as caught:
        tether.index("notes", settings=settings)
    assert "secret" not in str(caught.value)


def test_a_given_query_vector_is_used_instead_of_embedding_the_query(
    index: tether.Index,
) -> None:
    vector = index.embedder.embed("sourdough yeast")
    for mode in ("dense", "hybrid"):
        given = index.search("sourdough yeast", k=3, mode=mode, vector=vector)  # type: ignore[arg-type]
        plain = index.search("sourdough yeast", k=3, mode=mode)  # type: ignore[arg-type]
        assert [(h.chunk_id, h.score) for h in given] == [(h.chunk_id, h.score) for h in plain]
    # The vector decides the dense list: one for "cats" finds the cat document whatever the words.
    cats = index.embedder.embed("cats purr")
    assert index.search("sourdough yeast", k=1, mode="dense", vector=cats)[0].source == "cats.txt"
