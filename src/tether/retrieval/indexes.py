"""An Index: documents cut into chunks, embedded, and searchable by words, meaning or both.

``tether.index("docs")`` opens the index named docs in the project (creating it with the
embedded embedder when it does not exist); ``index.ingest("docs/")`` brings a folder in;
``index.search("how do I ...")`` finds chunks. An index remembers its embedder and chunking:
opening it with another embedder is an IndexMismatch, never vectors that do not compare.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tether.config import Settings, load_settings
from tether.errors import ConfigError, IndexMismatch
from tether.retrieval.chunking import Chunking
from tether.retrieval.ingest import Ingestion, IngestReport
from tether.retrieval.rewrite import distinct
from tether.retrieval.search import Fusion, fuse, mmr, rrf
from tether.retrieval.stores.base import Filters, IndexInfo, Store
from tether.retrieval.types import Document, Hit
from tether.tracing import spans as trace

if TYPE_CHECKING:
    from tether.models.base import Model
    from tether.models.embeddings import Embedder
    from tether.retrieval.enrich import Enricher

Mode = Literal["lexical", "dense", "hybrid"]
MODES = ("lexical", "dense", "hybrid")
# What each list brings to a hybrid search before fusion: enough for fusion to find
# what one list ranks low and the other high.
CANDIDATES = 100
# A query of thousands of words is answered by its first ones: FTS5 ORs every term.
MAX_QUERY_TERMS = 256

Reranker = Callable[[str, list[Hit]], "list[float]"]
Vector = Any  # a float32 numpy array
Rewriter = Callable[[str], "list[str]"]


class Index:
    def __init__(
        self,
        info: IndexInfo,
        store: Store,
        embedder: Embedder,
        settings: Settings,
        enrich: Model | None = None,
    ):
        self.info = info
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self._enrich_model = enrich
        self._enricher: Enricher | None = None

    @property
    def name(self) -> str:
        return self.info.name

    def ingest(
        self,
        path: str | Path,
        *,
        include: Sequence[str] = ("**/*",),
        exclude: Sequence[str] = (),
        max_bytes: int = 50_000_000,
        text_field: str | None = None,
        title_field: str | None = None,
        id_field: str | None = None,
        progress: bool = False,
    ) -> IngestReport:
        """Bring a file or folder in, incrementally: see tether.retrieval.ingest. Files that
        cannot be read are listed in ``report.failed``; the others go on."""
        ingestion = Ingestion(
            self,
            max_bytes=max_bytes,
            text_field=text_field,
            title_field=title_field,
            id_field=id_field,
            progress=progress,
        )
        return ingestion.run(Path(path), include, exclude)

    def add(self, documents: Sequence[Document]) -> IngestReport:
        """Documents built in code, replaced by source when they change."""
        return Ingestion(self, max_bytes=0).add(documents)

    def enricher(self) -> Enricher | None:
        """What writes each chunk's situating sentence, when the index was made with
        ``enrich=``; the model is resolved from its id unless one was given."""
        if self.info.chunking.enrich is None:
            return None
        if self._enricher is None:
            from tether.models.registry import as_model
            from tether.retrieval.enrich import ContextCache, Enricher

            model = self._enrich_model or as_model(self.info.chunking.enrich)
            self._enricher = Enricher(model, ContextCache(self.settings.db_path))
        return self._enricher

    def remove(self, sources: Sequence[str]) -> int:
        return self.store.delete_documents(self.info, sources)

    def stats(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "embedder": self.info.embedder,
            "dimensions": self.info.dimensions,
            "chunking": self.info.chunking.model_dump(),
            **self.store.stats(self.info),
        }

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: Mode = "hybrid",
        filters: Filters | None = None,
        fusion: Fusion = "rrf",
        weights: Mapping[str, float] | None = None,
        rrf_k: int = 60,
        candidates: int = CANDIDATES,
        mmr_diversity: float | None = None,
        rerank: Reranker | None = None,
        rewrite: Rewriter | None = None,
        vector: Vector | None = None,
    ) -> list[Hit]:
        """The ``k`` best chunks for ``query``.

        ``mode``: lexical (BM25), dense (embeddings) or hybrid (both, fused by ``fusion``:
        reciprocal rank fusion or weighted scores, ``weights`` per list, e.g.
        ``{"lexical": 0.4, "dense": 0.6}``; ``rrf_k`` is reciprocal rank fusion's constant:
        each list adds ``weight / (rrf_k + rank)``, so a smaller one favours the top of each
        list). ``candidates``: chunks each list brings to fusion (at least ``k``). ``filters``
        match document metadata (and ``source``/``title`` as globs). ``mmr_diversity`` spreads
        the hits over different content; ``rerank`` re-scores the candidates
        (tether.retrieval.rerank: a cross-encoder, an LLM); ``rewrite`` adds searches for
        other phrasings of the query (tether.retrieval.rewrite), fused with the query's own.
        ``vector`` is the query's embedding by this index's embedder, when the caller has it
        already (the query is then not embedded again; its rewrites still are). The search is
        one span with its hits and scores.
        """
        if mode not in MODES:
            raise ConfigError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        if rrf_k < 0:
            raise ConfigError(f"rrf_k must be 0 or more (60 is the usual constant), not {rrf_k}")
        if k <= 0:
            return []
        weights = dict(weights or {})
        attributes: dict[str, Any] = {
            "tether.operation": "search",
            "tether.index": self.name,
            "tether.search.mode": mode,
            "tether.search.k": k,
        }
        if mode == "hybrid":
            attributes["tether.search.fusion"] = fusion
            if fusion == "rrf":
                attributes["tether.search.rrf_k"] = rrf_k
        if (query_text := trace.text(self.settings, query)) is not None:
            attributes["tether.search.query"] = query_text
        with trace.span(self.settings, f"search {self.name}", attributes) as span:
            started = time.perf_counter()
            queries = [query]
            if rewrite is not None:
                queries += distinct(query, list(rewrite(query)))
                span.set_attribute("tether.search.rewrites", len(queries) - 1)
                if (rewritten := trace.text(self.settings, queries[1:])) is not None:
                    span.set_attribute("tether.search.rewritten", rewritten)
            if rerank is not None:
                span.set_attribute("tether.search.reranker", repr(rerank))
            hits = self._search(
                queries,
                k,
                mode,
                filters,
                fusion,
                weights,
                rrf_k,
                candidates,
                mmr_diversity,
                rerank,
                vector,
            )
            span.set_attribute("tether.latency_s", time.perf_counter() - started)
            span.set_attribute("tether.search.count", len(hits))
            shown = [{"source": h.source, "chunk": h.chunk_id, **h.scores} for h in hits]
            if (hits_text := trace.text(self.settings, shown)) is not None:
                span.set_attribute("tether.search.hits", hits_text)
        return hits

    def _lists(
        self, query: str, mode: Mode, pool: int, filters: Filters | None, vector: Vector | None
    ) -> tuple[dict[str, list[tuple[int, float]]], Vector | None]:
        """The ranked (chunk id, score) lists of one query (lexical, dense or both), and
        its vector when it was given or embedded."""
        lists: dict[str, list[tuple[int, float]]] = {}
        if mode in ("lexical", "hybrid"):
            words = " ".join(query.split()[:MAX_QUERY_TERMS])
            lists["lexical"] = self.store.lexical(self.info, words, pool, filters)
        if mode in ("dense", "hybrid"):
            if vector is None:
                vector = self.embedder.embed(query)
            lists["dense"] = self.store.dense(self.info, vector, pool, filters)
        return lists, vector

    def _search(
        self,
        queries: list[str],
        k: int,
        mode: Mode,
        filters: Filters | None,
        fusion: Fusion,
        weights: dict[str, float],
        rrf_k: int,
        candidates: int,
        diversity: float | None,
        rerank: Reranker | None,
        given: Vector | None = None,
    ) -> list[Hit]:
        wide = mode == "hybrid" or diversity or rerank or len(queries) > 1
        pool = max(k, candidates) if wide else k
        query = queries[0]
        per_query = []
        for i, q in enumerate(queries):
            lists, embedded = self._lists(q, mode, pool, filters, given if i == 0 else None)
            fused = fuse(lists, fusion, weights, rrf_k) if mode == "hybrid" else lists[mode]
            per_query.append(fused)
            if i == 0:
                scores = {name: dict(entries) for name, entries in lists.items()}
                vector = embedded
        ranked = per_query[0]
        if len(queries) > 1:  # the query's own list weighs as much as all the rewrites
            named = {str(i): r for i, r in enumerate(per_query)}
            ranked = rrf(named, {"0": len(queries) - 1})
        if rerank is None and diversity is None:
            ranked = ranked[:k]  # only what is returned is read back
        ids = [chunk_id for chunk_id, _ in ranked]
        found = self.store.hits(self.info, ids)
        hits = []
        for chunk_id, score in ranked:
            hit = found.get(chunk_id)
            if hit is None:
                continue  # removed between the two reads
            hit.score = score
            hit.scores = {name: s[chunk_id] for name, s in scores.items() if chunk_id in s}
            if mode == "hybrid" or len(queries) > 1:
                hit.scores["fused"] = score
            hits.append(hit)
        if rerank is not None:
            for hit, score in zip(hits, rerank(query, hits), strict=True):
                hit.scores["rerank"] = hit.score = float(score)
            hits.sort(key=lambda h: -h.score)
        if diversity is not None and hits:
            if vector is None:
                vector = self.embedder.embed(query)
            vectors = self.store.chunk_vectors(self.info, [h.chunk_id for h in hits])
            order = mmr(vector, list(range(len(hits))), vectors, k, diversity)
            hits = [hits[i] for i in order]
        return hits[:k]

    def reembed(self, embedder: str | Embedder) -> None:
        """Embed every chunk again with another embedder, switching the index over only
        when all of it is done (until then it stays as it was, searchable)."""
        from tether.models.embeddings import Embedder
        from tether.models.embeddings import embedder as make

        new = embedder if isinstance(embedder, Embedder) else make(embedder, settings=self.settings)
        self.info = self.store.reembed(self.info, new.id, dimensions(new), new.embed)
        self.embedder = new

    def close(self) -> None:
        self.embedder.close()
        if self._enricher is not None:
            self._enricher.close()
        self.store.close()

    def __repr__(self) -> str:
        return f"Index({self.name!r}, embedder={self.info.embedder!r})"


def dimensions(embedder: Embedder) -> int:
    """The embedder's vector size; a server's model is asked once when it is not known."""
    try:
        return embedder.dimensions
    except ConfigError:
        return int(embedder.embed("dimensions").shape[0])


def open_store(settings: Settings) -> Store:
    url = settings.database_url
    if url and url.startswith(("postgresql://", "postgres://")):
        from tether.retrieval.stores.postgres import PostgresStore

        return PostgresStore(url)
    if url:
        raise ConfigError(
            f"database_url {url!r} is not a PostgreSQL URL (postgresql://...); remove it to "
            "use the project's SQLite database"
        )
    from tether.retrieval.stores.sqlite import SQLiteStore

    return SQLiteStore(settings.db_path)


def index(
    name: str = "default",
    *,
    embedder: str | Embedder | None = None,
    chunking: Chunking | Mapping[str, Any] | None = None,
    enrich: str | Model | None = None,
    create: bool = True,
    settings: Settings | None = None,
) -> Index:
    """The index ``name`` in this project, created when missing (unless ``create=False``).

    A new index takes ``embedder`` (default ``local:minilm``), ``chunking`` and ``enrich``
    (a model that writes a sentence situating each chunk: tether.retrieval.enrich); an
    existing one keeps its own, and asking for another embedder is an IndexMismatch that
    says how to re-embed it.
    """
    from tether.models.base import Model
    from tether.models.embeddings import Embedder
    from tether.models.embeddings import embedder as make

    settings = settings or load_settings()
    store = open_store(settings)
    enrich_model = enrich if isinstance(enrich, Model) else None
    enrich_id = enrich.id if isinstance(enrich, Model) else enrich

    def planned(given: Chunking | Mapping[str, Any] | None) -> Chunking:
        plan = given if isinstance(given, Chunking) else Chunking(**(given or {}))
        return plan.model_copy(update={"enrich": enrich_id}) if enrich_id else plan

    try:
        info = store.get_index(name)
        wanted = embedder.id if isinstance(embedder, Embedder) else embedder
        if info is None:
            if not create:
                known = ", ".join(i.name for i in store.list_indexes()) or "none yet"
                raise ConfigError(
                    f"no index named {name!r} (indexes: {known}); create it with "
                    f"`tether index create {name}`"
                )
            made = (
                embedder
                if isinstance(embedder, Embedder)
                else make(wanted or "local:minilm", settings=settings)
            )
            info = store.create_index(name, made.id, dimensions(made), planned(chunking))
            return Index(info, store, made, settings, enrich_model)
        if wanted is not None and wanted != info.embedder:
            raise IndexMismatch(
                f"index {name!r} was built with {info.embedder} ({info.dimensions} dimensions), "
                f"not {wanted}; open it without an embedder to use its own, or switch it with "
                f"index.reembed({wanted!r}) (`tether index reembed {name} {wanted}`)"
            )
        if enrich_id is not None and enrich_id != info.chunking.enrich:
            raise IndexMismatch(
                f"index {name!r} was built with enrich={info.chunking.enrich!r}, not "
                f"{enrich_id!r}; open it without enrich= to use its own, or remove it and "
                "ingest again to change that"
            )
        if chunking is not None:
            plan = planned(chunking)
            if plan != info.chunking:
                raise IndexMismatch(
                    f"index {name!r} cuts its documents as {info.chunking.model_dump()}, not "
                    f"{plan.model_dump()}; remove it and ingest again to change that"
                )
        made = (
            embedder if isinstance(embedder, Embedder) else make(info.embedder, settings=settings)
        )
        return Index(info, store, made, settings, enrich_model)
    except BaseException:
        store.close()
        raise
