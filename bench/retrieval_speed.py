"""Retrieval speed: ingestion against the bare embedder, re-ingest, and hybrid query latency
on BEIR SciFact and on a synthetic index of a million vectors, on SQLite and PostgreSQL.

1. Ingestion. The SciFact corpus (5,183 abstracts, documents built as retrieval_quality.py
   builds them) goes into a new project with ``index.add``, in ``--runs`` slices. Anchor: the
   backend's own ``embed`` (local:minilm, int8 MiniLM on onnxruntime, the same session) over
   exactly the batches the ingest sends it: each batch is embedded a second time by the
   backend alone right beside tether's own call (before it and after it in turn), so both
   see the same load, and tether's time is the slice's time less the anchor's. The project is
   new, so the embedding cache starts empty; the anchor never touches a cache. Figure: the
   median over slices of anchor time / tether time (tether's documents/s over the
   embedder's), with its 95% interval; target >= 0.9.
2. Re-ingest of the unchanged corpus: ``index.add`` of the same documents again, and
   ``index.ingest`` of a folder holding the corpus as one JSON file per document, run twice
   (its first run draws its vectors from the embedding cache). The second run's time as a
   fraction of the first, uncached ingest's; target < 5%.
3. Hybrid query latency at SciFact size: ``index.search(text, k=10, mode="hybrid",
   vector=...)`` with the queries embedded beforehand, so the search alone is timed (the
   lexical and dense lists, fusion, the hits' rows, the span), on the SQLite store (exact
   vectors below 50k) and on PostgreSQL (pgvector HNSW; pgserver starts a real one). Anchor:
   the same answer by hand on the same data, alternated query by query: the FTS5 (or
   tsquery) SQL (where tether's own lexical search is FTS5 too below 50k chunks, and its
   postings from there on) and the vector search (numpy, usearch on the same graph file, or the
   pgvector SQL), reciprocal rank fusion in a dict, one SELECT of the top rows' text.
4. A synthetic index of ``--vectors`` chunks (default 1,000,000; 384 dimensions as MiniLM).
   Embedding a million texts is out of the question here, so precomputed vectors go straight
   into tether's store layer: ``SQLiteStore.write_document`` (documents of 100 chunks: the
   rows, their vectors and the FTS5 table), then the first search builds the vector file
   (stores/vectors.py: usearch HNSW over f16 from 50k vectors on) and the first lexical one
   the BM25 postings (stores/lexical.py, from 50k chunks on). The build runs in a child
   process that reports its own peak memory (VmHWM: ru_maxrss would carry this process's size
   across the child's fork and exec). Vectors: real SciFact chunk embeddings mixed in pairs
   with random weights, plus noise, normalised (clustered as text is, no duplicates); texts:
   48 words drawn from the SciFact vocabulary by corpus frequency, so common words are as
   common as in prose. Queries: the real SciFact queries and their embeddings. Anchor for the
   build: the same rows by hand (sqlite3 executemany into one table and an FTS5 table, then
   usearch over f16 from the vectors read back). Recall@10 of the store's dense search
   against exact search over the float32 vectors is printed beside. Targets at 1M: hybrid
   p50 <= 30 ms, build peak memory < 2 GiB. The same on PostgreSQL at ``--pg-vectors``
   (default 100,000: the store's inserts maintain pgvector's HNSW row by row, about 1,000
   rows/s on 2 cores), through ``PostgresStore.write_document``; anchor: pgvector's bulk path
   (COPY, then CREATE INDEX).

    .venv/bin/python bench/retrieval_speed.py [--quick | --limit N] [--vectors N]
        [--pg-vectors N] [--queries N] [--skip postgres,synthetic] [--strict]

``--quick``: 40 documents in 2 slices, 30 queries, 10,000 synthetic vectors (2,000 on
PostgreSQL), the vector file an HNSW graph from 0 vectors on so that path runs; judged there:
the re-ingest targets only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import _common as common
from _common import Row

if TYPE_CHECKING:
    import numpy.typing as npt

    Matrix = npt.NDArray[np.float32]

NAME = "retrieval_speed"
K = 10
DIMS = 384
INGEST_TARGET = 0.9  # tether's documents/s over the bare embedder's
REINGEST_TARGET = 0.05  # an unchanged re-ingest, as a fraction of the first ingest
P50_TARGET_MS = 30.0  # hybrid p50 at 1M vectors, embedding excluded
MEMORY_TARGET_MIB = 2048.0  # peak memory of the 1M build
FULL_SIZE = 1_000_000  # the size the latency and memory targets are set at
DOC_CHUNKS = 100  # synthetic chunks per document
WORDS = 48  # words per synthetic chunk
BATCH = 10_000  # synthetic rows made at a time: every process makes the same ones
SEED = 20261203
QUICK = {"limit": 40, "queries": 30, "vectors": 10_000, "pg_vectors": 2_000}
PARTS = ("postgres", "synthetic")


# -- data --------------------------------------------------------------------------------


def scifact(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[str]]:
    folder = common.data_file(args, "scifact/corpus.jsonl").parent
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").open(encoding="utf-8")]
    queries = [json.loads(line)["text"] for line in (folder / "queries.jsonl").open("rb")]
    return corpus, queries


def vocabulary(corpus: Sequence[dict[str, Any]]) -> tuple[list[str], list[float]]:
    """Every word of the corpus and its share of all words."""
    counts: Counter[str] = Counter()
    for row in corpus:
        counts.update(re.findall(r"\w+", f"{row.get('title') or ''} {row['text']}".lower()))
    total = sum(counts.values())
    return list(counts), [n / total for n in counts.values()]


def synthetic_vectors(base: Matrix, batch: int, count: int) -> Matrix:
    """Batch ``batch`` of the synthetic vectors: two real chunk embeddings mixed with a random
    weight, plus noise, normalised. The same in every process (seeded by batch)."""
    rng = np.random.default_rng([SEED, batch])
    first = base[rng.integers(0, len(base), count)]
    second = base[rng.integers(0, len(base), count)]
    weight = rng.uniform(0.2, 0.8, (count, 1)).astype(np.float32)
    noise = rng.standard_normal((count, base.shape[1]), dtype=np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    mixed = first + weight * second + 0.5 * noise
    out: Matrix = (mixed / np.linalg.norm(mixed, axis=1, keepdims=True)).astype(np.float32)
    return out


def synthetic_texts(words: Any, shares: Any, batch: int, count: int) -> list[str]:
    rng = np.random.default_rng([SEED, batch, 1])
    drawn = rng.choice(len(words), size=(count, WORDS), p=shares)
    return [" ".join(words[row]) for row in drawn]


def synthetic_batches(spec: dict[str, Any]) -> Iterator[tuple[int, Matrix, list[str] | None]]:
    """(first row, vectors, texts) for every batch of the synthetic set; texts only when
    ``spec["texts"]``."""
    base = np.load(spec["base"])
    words: Any = None
    shares: Any = None
    if spec.get("texts", True):
        vocab = json.loads(Path(spec["vocab"]).read_text("utf-8"))
        words, shares = np.array(vocab["words"], dtype=object), np.array(vocab["shares"])
        shares /= shares.sum()
    for batch, at in enumerate(range(0, spec["n"], BATCH)):
        count = min(BATCH, spec["n"] - at)
        texts = synthetic_texts(words, shares, batch, count) if words is not None else None
        yield at, synthetic_vectors(base, batch, count), texts


def exact_top(spec: dict[str, Any], queries: Matrix, k: int = K) -> Any:
    """Row numbers of each query's exact top ``k`` by cosine over the float32 vectors."""
    best = np.full((len(queries), k), -np.inf, dtype=np.float32)
    rows = np.zeros((len(queries), k), dtype=np.int64)
    for at, vectors, _ in synthetic_batches({**spec, "texts": False}):
        scores = np.hstack([best, queries @ vectors.T])
        numbers = np.hstack(
            [rows, np.broadcast_to(at + np.arange(len(vectors)), scores[:, k:].shape)]
        )
        keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best = np.take_along_axis(scores, keep, axis=1)
        rows = np.take_along_axis(numbers, keep, axis=1)
    return rows


# -- 1. ingestion against the bare embedder ---------------------------------------------


def measure_ingest(index: Any, documents: list[Any], slices: int) -> dict[str, list[float]]:
    """Each slice through index.add, every batch it sends the backend embedded a second
    time by the backend alone right beside it (before or after, in turn), so both see the
    same load; tether's time is the slice's time less the anchor's."""
    backend = index.embedder.backend
    real = backend.embed
    spent = {"anchor": 0.0, "batches": 0, "texts": 0}

    async def alone(texts: list[str]) -> None:
        started = time.perf_counter()
        await real(list(texts))
        spent["anchor"] += time.perf_counter() - started

    async def paired(texts: list[str]) -> Any:
        spent["batches"] += 1
        spent["texts"] += len(texts)
        if spent["batches"] % 2:
            await alone(texts)
            return await real(texts)
        batch = await real(texts)
        await alone(texts)
        return batch

    index.embedder.count_tokens("warm up")  # the tokenizer and the session loaded first
    asyncio.run(real(["warm up the session"] * 4))
    backend.embed = paired  # what the Embedder calls
    out: dict[str, list[float]] = {k: [] for k in ("tether_s", "anchor_s", "docs", "chunks")}
    out["embedded"] = []
    size = -(-len(documents) // slices)
    try:
        for at in range(0, len(documents), size):
            spent.update(anchor=0.0, texts=0)
            seconds, report = common.timed(index.add, documents[at : at + size])
            out["tether_s"].append(seconds - spent["anchor"])
            out["anchor_s"].append(spent["anchor"])
            out["docs"].append(report.documents_added)
            out["chunks"].append(report.chunks_added)
            out["embedded"].append(spent["texts"])
            print(
                f"  slice {len(out['docs'])}: {report.documents_added} documents, "
                f"{report.chunks_added} chunks: tether {out['tether_s'][-1]:.1f} s, the "
                f"embedder alone {spent['anchor']:.1f} s",
                flush=True,
            )
    finally:
        backend.embed = real
    return out


def ingest_rows(ingest: dict[str, Any], smoke: bool) -> list[Row]:
    ratios = [a / t for a, t in zip(ingest["anchor_s"], ingest["tether_s"], strict=True)]
    interval = common.median_interval(ratios)
    ratio = common.median(ratios)
    passed = common.verdict_of(interval, INGEST_TARGET, higher_is_better=True)
    if interval is None:  # too few slices for an interval: the point figure, not counted
        passed = ratio >= INGEST_TARGET
    tether_s, anchor_s = sum(ingest["tether_s"]), sum(ingest["anchor_s"])
    documents, chunks = sum(ingest["docs"]), sum(ingest["chunks"])
    settings = f"SQLite, local:minilm, {documents} docs in {len(ratios)} slices"
    common_args: dict[str, Any] = {"interval": interval, "fmt": ".1f"}
    return [
        Row(
            case="ingest SciFact: documents/s",
            settings=settings,
            tether=documents / tether_s,
            anchor=documents / anchor_s,
            unit="docs/s",
            ratio=ratio,
            target=f">= {INGEST_TARGET}",
            passed=passed,
            undecided=interval is not None and passed is None,
            judged=not smoke,  # a few short slices cannot decide a 10% margin
            extra={"tether_s": tether_s, "anchor_s": anchor_s},
            **common_args,
        ),
        Row(
            case="ingest SciFact: chunks/s",
            settings=f"{chunks} chunks, {sum(ingest['embedded'])} embedded",
            tether=chunks / tether_s,
            anchor=chunks / anchor_s,
            unit="chunks/s",
            ratio=ratio,
            target="(same ratio)",
            passed=None,
            **common_args,
        ),
    ]


# -- 2. re-ingest ------------------------------------------------------------------------


def write_folder(folder: Path, corpus: Sequence[dict[str, Any]]) -> Path:
    """The corpus as one JSON file per document, as a folder of exported records is."""
    folder.mkdir(parents=True)
    for row in corpus:
        if row["text"].strip():
            record = {"_id": row["_id"], "title": row.get("title") or "", "text": row["text"]}
            (folder / f"{row['_id']}.json").write_text(json.dumps(record), "utf-8")
    return folder


def measure_reingest(
    index: Any, documents: list[Any], corpus: Sequence[dict[str, Any]], home: Path
) -> dict[str, Any]:
    import tether

    add_s, report = common.timed(index.add, documents)
    assert report.documents_unchanged == len(documents), report.summary()
    folder = write_folder(home / "corpus", corpus)
    files = tether.index("scifact-files")
    first_s, first = common.timed(files.ingest, folder)
    again_s, again = common.timed(files.ingest, folder)
    assert again.files_skipped == again.files_seen, again.summary()
    files.close()
    print(f"  folder, first run (vectors from the cache): {first.summary()}")
    print(f"  folder, unchanged: {again.summary()}")
    return {
        "add_s": add_s,
        "folder_first_s": first_s,
        "folder_s": again_s,
        "files": first.files_seen,
    }


def reingest_rows(re_: dict[str, Any], first_s: float, documents: int) -> list[Row]:
    rows = []
    for case, seconds, settings in (
        ("re-ingest unchanged: index.add", re_["add_s"], f"{documents} documents"),
        (
            "re-ingest unchanged: index.ingest(folder)",
            re_["folder_s"],
            f"{re_['files']} JSON files; its first run {re_['folder_first_s']:.1f} s",
        ),
    ):
        fraction = seconds / first_s
        rows.append(
            Row(
                case=case,
                settings=settings,
                tether=seconds,
                anchor=first_s,
                unit="s (vs first ingest)",
                ratio=fraction,
                target=f"< {REINGEST_TARGET:.0%}",
                passed=fraction < REINGEST_TARGET,
                fmt=".3f",
            )
        )
    return rows


# -- 3. query latency ---------------------------------------------------------------------


def rrf(lists: Sequence[Sequence[int]], k: int = 60) -> list[int]:
    fused: dict[int, float] = {}
    for ranked in lists:
        for rank, chunk_id in enumerate(ranked, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (k + rank)
    return sorted(fused, key=lambda c: (-fused[c], c))


class RawSQLite:
    """The hybrid answer by hand on tether's own tables and vector file: the FTS5 query,
    the vector search with numpy (exact) or usearch (the same graph file), RRF, the rows."""

    def __init__(self, db_path: Path, index: Any, vectors: Path, pool: int) -> None:
        self.db = sqlite3.connect(db_path, check_same_thread=False)
        self.fts, self.pool = f"rag_fts_{index.index_id}", pool
        self.parts: dict[str, list[float]] = {"lexical": [], "dense": [], "fusion and rows": []}
        self.graph: Any = None
        self.ids: Any = np.load(f"{vectors}.ids.npy")
        if json.loads(Path(f"{vectors}.json").read_text())["kind"] == "exact":
            self.matrix: Any = np.load(f"{vectors}.npy")
        else:
            from usearch.index import Index

            self.graph = Index.restore(f"{vectors}.usearch")

    def lexical(self, terms: Sequence[str]) -> list[int]:
        fts, match = self.fts, " OR ".join(f'"{t}"' for t in terms)
        sql = f"SELECT rowid FROM {fts} WHERE {fts} MATCH ? ORDER BY bm25({fts}) LIMIT ?"
        return [row[0] for row in self.db.execute(sql, (match, self.pool))]

    def dense(self, vector: Any, k: int) -> list[int]:
        if self.graph is not None:
            return [int(key) for key in self.graph.search(vector, k).keys]
        scores, k = self.matrix @ vector, min(k, len(self.ids))
        best = np.argpartition(-scores, k - 1)[:k]
        return [int(self.ids[i]) for i in best[np.argsort(-scores[best], kind="stable")]]

    def rows(self, top: list[int]) -> None:
        marks = ",".join("?" * len(top))
        sql = f"SELECT chunk_id, text FROM rag_chunks WHERE chunk_id IN ({marks})"
        self.db.execute(sql, top).fetchall()

    def search(self, query: str, vector: Any) -> list[int]:
        times = [time.perf_counter()]
        terms = list(dict.fromkeys(re.findall(r"\w+", query.lower())))
        lexical = self.lexical(terms) if terms else []
        times.append(time.perf_counter())
        dense = self.dense(vector, self.pool)
        times.append(time.perf_counter())
        top = rrf([lexical, dense])[:K]
        self.rows(top)
        times.append(time.perf_counter())
        for name, begun, ended in zip(self.parts, times, times[1:], strict=False):
            self.parts[name].append((ended - begun) * 1e3)
        return top


class RawPostgres(RawSQLite):
    """The same by hand on PostgreSQL: the tsquery and pgvector SQL the store's lists need,
    with the hnsw.ef_search the store sets for that many candidates, RRF, the rows."""

    def __init__(self, url: str, index: Any, pool: int) -> None:
        import psycopg
        from pgvector.psycopg import register_vector

        self.conn = psycopg.connect(url, autocommit=True)
        register_vector(self.conn)
        self.conn.execute(f"SET hnsw.ef_search = {max(40, min(1000, 2 * pool))}")
        self.index_id, self.pool, self.graph = index.index_id, pool, None
        self.cast = f"vector({index.dimensions})"
        self.parts = {"lexical": [], "dense": [], "fusion and rows": []}

    def lexical(self, terms: Sequence[str]) -> list[int]:
        sql = (
            "SELECT chunk_id FROM rag_chunks, to_tsquery('english', %s) q WHERE index_id = %s "
            "AND words @@ q ORDER BY ts_rank_cd(words, q, 1) DESC, chunk_id LIMIT %s"
        )
        args = (" | ".join(terms), self.index_id, self.pool)
        return [row[0] for row in self.conn.execute(sql, args).fetchall()]

    def dense(self, vector: Any, k: int) -> list[int]:
        sql = (
            f"SELECT chunk_id FROM rag_chunks WHERE index_id = %s "
            f"ORDER BY embedding::{self.cast} <=> %s::{self.cast} LIMIT %s"
        )
        return [row[0] for row in self.conn.execute(sql, (self.index_id, vector, k)).fetchall()]

    def rows(self, top: list[int]) -> None:
        sql = "SELECT chunk_id, text FROM rag_chunks WHERE chunk_id = ANY(%s)"
        self.conn.execute(sql, (top,)).fetchall()


def time_queries(
    index: Any, raw: RawSQLite, texts: Sequence[str], vectors: Matrix
) -> dict[str, list[float]]:
    """Milliseconds per hybrid query, tether and by hand alternating, the order rotating."""

    def mine(text: str, vector: Any) -> Any:
        return index.search(text, k=K, mode="hybrid", vector=vector)

    for text, vector in zip(texts[:3], vectors[:3], strict=False):  # warm: files, plans
        mine(text, vector)
        raw.search(text, vector)
    raw.parts = {name: [] for name in raw.parts}
    out: dict[str, list[float]] = {"tether": [], "anchor": []}
    for i, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
        pair: list[tuple[str, Callable[[str, Any], Any]]] = [
            ("tether", mine),
            ("anchor", raw.search),
        ]
        for name, call in pair if i % 2 == 0 else pair[::-1]:
            seconds, _ = common.timed(call, text, vector)
            out[name].append(seconds * 1e3)
    return out


def latency_rows(
    case: str, settings: str, lat: dict[str, list[float]], target: bool, judged: bool
) -> list[Row]:
    rows = []
    for q in (50, 99):
        mine, raw = common.percentile(lat["tether"], q), common.percentile(lat["anchor"], q)
        judge_it = target and q == 50
        rows.append(
            Row(
                case=f"{case}: hybrid p{q}",
                settings=f"{settings}, k={K}, {len(lat['tether'])} queries",
                tether=mine,
                anchor=raw,
                unit="ms",
                ratio=mine / raw if raw else None,
                added=mine - raw,
                target=f"<= {P50_TARGET_MS:.0f} ms" if judge_it else "",
                passed=mine <= P50_TARGET_MS if judge_it else None,
                fmt=".2f",
                judged=judged,
            )
        )
    return rows


def parts_note(name: str, raw: RawSQLite) -> str:
    split = ", ".join(f"{part} {common.median(ms):.2f}" for part, ms in raw.parts.items() if ms)
    return f"{name}, by hand, p50 ms per part: {split}"


# -- 4. the synthetic index ---------------------------------------------------------------


def child_main(spec: dict[str, Any]) -> int:
    """A build in its own process, so its peak memory is its own; prints one JSON line."""
    done = build_with_tether(spec) if spec["kind"] == "tether" else build_by_hand(spec)
    done["peak_mib"] = peak_mib()
    print(json.dumps(done))
    return 0


def peak_mib() -> float:
    """This process's peak resident memory since it started its program (VmHWM). Linux's
    ru_maxrss, RUSAGE_SELF or RUSAGE_CHILDREN alike, keeps what the process had before
    exec, which for a child spawned by this benchmark is the parent's size, model loaded."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def synthetic_documents(spec: dict[str, Any]) -> Iterator[tuple[Any, list[Any], Matrix]]:
    """The synthetic set as tether documents of DOC_CHUNKS chunks, with their vectors."""
    from tether.retrieval.types import Chunk, Document

    for at, vectors, texts in synthetic_batches(spec):
        assert texts is not None
        for first in range(0, len(texts), DOC_CHUNKS):
            part = texts[first : first + DOC_CHUNKS]
            chunks, offset = [], 0
            for ordinal, text in enumerate(part):
                end = offset + len(text)
                chunks.append(Chunk(text=text, start=offset, end=end, ordinal=ordinal))
                offset = end + 1
            document = Document(source=f"synthetic/{at + first}", text="\n".join(part))
            yield document, chunks, vectors[first : first + len(part)]


def build_with_tether(spec: dict[str, Any]) -> dict[str, Any]:
    from tether.config import Settings
    from tether.retrieval.chunking import Chunking
    from tether.retrieval.stores.sqlite import SQLiteStore

    settings = Settings(home=Path(spec["home"]))
    store = SQLiteStore(settings.db_path, approximate_from=spec["approximate_from"])
    info = store.create_index("synthetic", "local:minilm", DIMS, Chunking())
    started = time.perf_counter()
    for document, chunks, vectors in synthetic_documents(spec):
        store.write_document(info, document, None, chunks, vectors)
    rows_s = time.perf_counter() - started
    # As a first hybrid search builds them: the lexical list first (from 50k chunks, the
    # BM25 postings), then the dense one (the vector file).
    started = time.perf_counter()
    store.lexical(info, "the", K)
    postings_s = time.perf_counter() - started
    started = time.perf_counter()
    store.dense(info, np.load(spec["base"])[0], K)
    index_s = time.perf_counter() - started
    kind = json.loads((store.folder / "synthetic.json").read_text())["kind"]
    postings = (store.terms_folder / "synthetic.json").is_file()
    store.close()
    return {
        "rows_s": rows_s,
        "index_s": index_s,
        "vector_kind": kind,
        "postings_s": postings_s if postings else None,
    }


def build_by_hand(spec: dict[str, Any]) -> dict[str, Any]:
    from usearch.index import Index

    from tether.retrieval.stores.sqlite import TOKENIZE
    from tether.retrieval.stores.vectors import DTYPE

    db = sqlite3.connect(spec["path"], isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE chunks (id INTEGER PRIMARY KEY, text TEXT, vector BLOB)")
    db.execute(f"CREATE VIRTUAL TABLE fts USING fts5(body, tokenize='{TOKENIZE}')")
    started = time.perf_counter()
    for at, vectors, texts in synthetic_batches(spec):
        assert texts is not None
        ids = range(at + 1, at + 1 + len(texts))
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO chunks VALUES (?, ?, ?)",
            zip(ids, texts, (v.tobytes() for v in vectors), strict=True),
        )
        db.executemany("INSERT INTO fts (rowid, body) VALUES (?, ?)", zip(ids, texts, strict=True))
        db.execute("COMMIT")
    rows_s = time.perf_counter() - started
    started = time.perf_counter()
    graph = Index(ndim=DIMS, metric="cos", dtype=DTYPE)
    cursor = db.execute("SELECT id, vector FROM chunks ORDER BY id")
    while rows := cursor.fetchmany(16_384):
        keys = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32)
        graph.add(keys, matrix.reshape(len(rows), DIMS))
    graph.save(spec["path"] + ".usearch")
    index_s = time.perf_counter() - started
    db.close()
    return {"rows_s": rows_s, "index_s": index_s}


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {spec['kind']} build failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def synthetic_sqlite(
    spec: dict[str, Any], texts: Sequence[str], vectors: Matrix, folder: Path
) -> dict[str, Any]:
    """Build (child), build by hand (child), then latency and recall in this process."""
    from tether.retrieval.indexes import CANDIDATES

    print(f"  building {spec['n']:,} synthetic chunks through the SQLite store ...", flush=True)
    built = run_child({**spec, "kind": "tether"})
    print(f"  tether: {built}", flush=True)
    by_hand = run_child({**spec, "kind": "raw", "path": str(folder / "by-hand.db")})
    print(f"  by hand: {by_hand}", flush=True)
    index = open_synthetic(Path(spec["home"]), spec["approximate_from"])
    opened_s, _ = common.timed(index.search, texts[0], k=K, vector=vectors[0])
    vectors_at = index.store.folder / "synthetic"
    raw = RawSQLite(index.store.db_path, index.info, vectors_at, CANDIDATES)
    lat = time_queries(index, raw, texts, vectors)
    recall = dense_recall(index, spec, vectors, raw)
    index.close()
    return {
        "built": built,
        "by_hand": by_hand,
        "open_s": opened_s,
        "lat": lat,
        "raw": raw,
        **recall,
    }


def open_synthetic(home: Path, approximate_from: int) -> Any:
    """The synthetic index as tether.index opens it, on a store with the run's threshold."""
    import tether
    from tether.config import Settings
    from tether.retrieval.indexes import Index
    from tether.retrieval.stores.sqlite import SQLiteStore

    settings = Settings(home=home)
    store = SQLiteStore(settings.db_path, approximate_from=approximate_from)
    info = store.get_index("synthetic")
    assert info is not None
    return Index(info, store, tether.embedder(info.embedder, settings=settings), settings)


def first_chunk(index: Any, n: int) -> int:
    """The chunk id of synthetic row 0 (rows were written in order, ids follow)."""
    sql = "SELECT min(chunk_id), max(chunk_id), count(*) FROM rag_chunks WHERE index_id = %s"
    sqlite_ = hasattr(index.store, "db")
    if sqlite_:
        row = index.store.db.execute(sql.replace("%s", "?"), (index.info.index_id,)).fetchone()
    else:
        row = index.store.conn.execute(sql, (index.info.index_id,)).fetchone()
    low, high, count = row
    assert count == n and high - low + 1 == n, (low, high, count, n)
    return int(low)


def dense_recall(index: Any, spec: dict[str, Any], vectors: Matrix, raw: Any) -> dict[str, Any]:
    """Recall@10 of the store's dense search (k=10, and the top 10 of a hybrid's 100
    candidates) against exact search over the float32 vectors; the raw graph at a deeper
    search too, where there is one."""
    from tether.retrieval.indexes import CANDIDATES

    truth = exact_top(spec, vectors) + first_chunk(index, spec["n"])
    found: dict[str, list[float]] = {"k10": [], "pool": [], "deeper": []}
    graph = getattr(raw, "graph", None)
    if graph is not None:
        graph.expansion_search = 256
    for vector, exact in zip(vectors, truth, strict=True):
        wanted = set(exact.tolist())
        ten = [c for c, _ in index.store.dense(index.info, vector, K)]
        pool = [c for c, _ in index.store.dense(index.info, vector, CANDIDATES)][:K]
        found["k10"].append(len(wanted & set(ten)) / K)
        found["pool"].append(len(wanted & set(pool)) / K)
        if graph is not None:
            found["deeper"].append(len(wanted & set(raw.dense(vector, K))) / K)
    return {name: float(np.mean(values)) for name, values in found.items() if values}


def synthetic_rows(syn: dict[str, Any], n: int, name: str, smoke: bool) -> list[Row]:
    judged = not smoke and n >= FULL_SIZE
    built, by_hand = syn["built"], syn["by_hand"]
    settings = f"{n:,} x {DIMS}, {name}"
    rows = [
        Row(
            case=f"synthetic {n:,}: build {part}",
            settings=settings + (f", {built.get('vector_kind')}" if key == "index_s" else ""),
            tether=built[key],
            anchor=by_hand[key],
            unit="s",
            ratio=built[key] / by_hand[key],
            target="",
            passed=None,
        )
        for part, key in (("rows", "rows_s"), ("vector index", "index_s"))
    ]
    peak = built["peak_mib"]
    rows.append(
        Row(
            case=f"synthetic {n:,}: build peak memory",
            settings=settings + ", the build's own process, VmHWM",
            tether=peak,
            anchor=by_hand["peak_mib"],
            unit="MiB",
            ratio=peak / by_hand["peak_mib"],
            target=f"< {MEMORY_TARGET_MIB:.0f} MiB",
            passed=peak < MEMORY_TARGET_MIB,
            fmt=".0f",
            judged=judged,
        )
    )
    rows += latency_rows(f"synthetic {n:,}", name, syn["lat"], True, judged)
    rows.append(recall_row(f"synthetic {n:,}", settings, syn))
    return rows


def recall_row(case: str, settings: str, syn: dict[str, Any]) -> Row:
    return Row(
        case=f"{case}: dense recall@10",
        settings=settings + " (vs exact float32)",
        tether=syn["k10"],
        anchor=1.0,
        unit="",
        ratio=syn["k10"],
        target="",
        passed=None,
        fmt=".3f",
        extra={"top10_of_100": syn["pool"], "raw_ef256": syn.get("deeper")},
    )


# -- PostgreSQL ---------------------------------------------------------------------------


def fresh_database(url: str) -> str:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    head, _, query = url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}{'?' + query if query else ''}"


def postgres_scifact(
    url: str, documents: list[Any], texts: Sequence[str], vectors: Matrix
) -> dict[str, Any]:
    """SciFact on PostgreSQL: vectors from the project's embedding cache, then latency."""
    import tether
    from tether.config import Settings
    from tether.retrieval.indexes import CANDIDATES

    settings = Settings(home=Path(os.environ["TETHER_HOME"]), database_url=fresh_database(url))
    index = tether.index("scifact", settings=settings)
    add_s, report = common.timed(index.add, documents)
    print(f"  PostgreSQL SciFact (vectors from the cache): {report.summary()}", flush=True)
    raw = RawPostgres(settings.database_url or "", index.info, CANDIDATES)
    lat = time_queries(index, raw, texts, vectors)
    index.close()
    return {"add_s": add_s, "lat": lat, "raw": raw}


def postgres_synthetic(
    url: str, spec: dict[str, Any], texts: Sequence[str], vectors: Matrix
) -> dict[str, Any]:
    import tether
    from tether.config import Settings
    from tether.retrieval.chunking import Chunking
    from tether.retrieval.indexes import CANDIDATES, Index
    from tether.retrieval.stores.postgres import PostgresStore

    print(f"  building {spec['n']:,} synthetic chunks through the PostgreSQL store ...", flush=True)
    settings = Settings(home=Path(os.environ["TETHER_HOME"]), database_url=fresh_database(url))
    store = PostgresStore(settings.database_url or "")
    info = store.create_index("synthetic", "local:minilm", DIMS, Chunking())
    started = time.perf_counter()
    for document, chunks, batch in synthetic_documents(spec):
        store.write_document(info, document, None, chunks, batch)
    build_s = time.perf_counter() - started
    bulk_s = postgres_bulk(fresh_database(url), spec)
    index = Index(info, store, tether.embedder(info.embedder, settings=settings), settings)
    raw = RawPostgres(settings.database_url or "", info, CANDIDATES)
    lat = time_queries(index, raw, texts, vectors)
    recall = dense_recall(index, spec, vectors, raw)
    index.close()
    return {"build_s": build_s, "bulk_s": bulk_s, "lat": lat, "raw": raw, **recall}


def postgres_bulk(url: str, spec: dict[str, Any]) -> float:
    """pgvector's own fast path for the same rows: COPY, then build the indexes."""
    import psycopg
    from pgvector.psycopg import register_vector

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(conn)
        conn.execute("SET maintenance_work_mem = '1GB'")
        started = time.perf_counter()
        conn.execute(
            "CREATE TABLE chunks (id BIGINT PRIMARY KEY, body TEXT NOT NULL, words tsvector "
            f"GENERATED ALWAYS AS (to_tsvector('english', body)) STORED, embedding vector({DIMS}))"
        )
        with (
            conn.cursor() as cursor,
            cursor.copy("COPY chunks (id, body, embedding) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(["bigint", "text", "vector"])
            for at, vectors, texts in synthetic_batches(spec):
                assert texts is not None
                for i, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
                    copy.write_row((at + i + 1, text, vector))
        conn.execute("CREATE INDEX ON chunks USING hnsw (embedding vector_cosine_ops)")
        conn.execute("CREATE INDEX ON chunks USING gin (words)")
        return time.perf_counter() - started


def postgres_rows(
    scifact_pg: dict[str, Any] | None, syn: dict[str, Any] | None, n: int
) -> list[Row]:
    rows: list[Row] = []
    if scifact_pg is not None:
        rows += latency_rows("SciFact PostgreSQL", "pgvector HNSW", scifact_pg["lat"], False, True)
    if syn is not None:
        settings = f"{n:,} x {DIMS}, PostgreSQL"
        rows.append(
            Row(
                case=f"synthetic {n:,}: build (PostgreSQL)",
                settings=settings + "; anchor: COPY, then CREATE INDEX",
                tether=syn["build_s"],
                anchor=syn["bulk_s"],
                unit="s",
                ratio=syn["build_s"] / syn["bulk_s"],
                target="",
                passed=None,
            )
        )
        rows += latency_rows(f"synthetic {n:,}", "PostgreSQL", syn["lat"], False, True)
        rows.append(recall_row(f"synthetic {n:,} PostgreSQL", settings, syn))
    return rows


# -- the run ------------------------------------------------------------------------------


def arguments() -> argparse.Namespace:
    p = common.parser(__doc__ or NAME, runs=10, quick_runs=2)
    p.add_argument("--limit", type=int, default=None, help="the first N SciFact documents")
    p.add_argument("--queries", type=int, default=None, help="queries timed per store (100)")
    p.add_argument("--vectors", type=int, default=None, help="synthetic SQLite size (1M)")
    p.add_argument("--pg-vectors", type=int, default=None, help="synthetic PostgreSQL size (100k)")
    p.add_argument("--skip", default="", help=f"parts to leave out: {','.join(PARTS)}")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is None:
        args.skip = [s for s in args.skip.split(",") if s]
        if unknown := [s for s in args.skip if s not in PARTS]:
            p.error(f"cannot --skip {','.join(unknown)}; choose from {','.join(PARTS)}")
        defaults = {"queries": 100, "vectors": FULL_SIZE, "pg_vectors": 100_000}
        for key, value in defaults.items():
            if getattr(args, key) is None:
                setattr(args, key, QUICK[key] if args.quick else value)
        if args.quick and args.limit is None:
            args.limit = QUICK["limit"]
    return args


def main() -> int:
    args = arguments()
    if args.child is not None:
        return child_main(json.loads(args.child))
    corpus, query_texts = scifact(args)
    if args.limit is not None:
        corpus = corpus[: args.limit]
    query_texts = query_texts[: args.queries]
    smoke = common.smoke(args)
    print(
        f"data: BEIR SciFact, {len(corpus)} documents, {len(query_texts)} queries; synthetic "
        f"{args.vectors:,} vectors (SQLite), {args.pg_vectors:,} (PostgreSQL)",
        flush=True,
    )
    rows: list[Row] = []
    notes: list[str] = []
    samples: dict[str, Any] = {}
    with common.temp_project() as home:
        found = run_all(args, corpus, query_texts, home)
    ingest, re_, sq, syn, pg, pg_syn, stats = found
    rows += ingest_rows(ingest, smoke)
    rows += reingest_rows(re_, sum(ingest["tether_s"]), sum(ingest["docs"]))
    rows += latency_rows("SciFact SQLite", "exact vectors", sq["lat"], False, True)
    notes.append(parts_note("SciFact SQLite", sq["raw"]))
    samples.update(ingest=ingest, sqlite_ms=sq["lat"])
    if syn is not None:
        rows += synthetic_rows(syn, args.vectors, "SQLite + usearch", smoke)
        notes += synthetic_notes(syn, args.vectors)
        samples["synthetic_ms"] = syn["lat"]
    rows += postgres_rows(pg, pg_syn, args.pg_vectors)
    if pg is not None:
        notes.append(parts_note("SciFact PostgreSQL", pg["raw"]))
        notes.append(f"SciFact PostgreSQL ingest, vectors from the cache: {pg['add_s']:.1f} s")
        samples["postgres_ms"] = pg["lat"]
    if pg_syn is not None:
        notes.append(parts_note(f"synthetic {args.pg_vectors:,} PostgreSQL", pg_syn["raw"]))
        notes.append(
            f"synthetic PostgreSQL recall@10, top 10 of 100 candidates: {pg_syn['pool']:.3f}"
        )
        samples["postgres_synthetic_ms"] = pg_syn["lat"]
    notes.append(
        f"index: {stats['documents']} documents, {stats['chunks']} chunks; "
        f"synthetic chunks: {WORDS} words drawn by SciFact word frequency, {DOC_CHUNKS} a "
        "document; vectors: pairs of real chunk embeddings mixed, plus noise"
    )
    common.print_table("retrieval speed", rows, notes)
    settings = {
        "documents": len(corpus),
        "slices": len(ingest["tether_s"]),
        "queries": len(query_texts),
        "vectors": args.vectors if syn else None,
        "pg_vectors": args.pg_vectors if pg_syn else None,
        "k": K,
        "embedder": stats["embedder"],
        "chunking": stats["chunking"],
        "synthetic": {"words": WORDS, "doc_chunks": DOC_CHUNKS, "seed": SEED},
    }
    common.write_result(NAME, args, rows, settings, samples)
    return common.finish(args, rows)


def run_all(
    args: argparse.Namespace, corpus: list[dict[str, Any]], query_texts: list[str], home: Path
) -> tuple[Any, ...]:
    import tether
    from tether.retrieval.indexes import CANDIDATES

    index = tether.index("scifact")
    documents = [
        tether.Document(source=row["_id"], title=row.get("title") or None, text=row["text"])
        for row in corpus
        if row["text"].strip()
    ]
    print("ingest: tether, then the embedder alone on the same batches, slice by slice")
    ingest = measure_ingest(index, documents, max(1, common.runs_of(args)))
    print("re-ingest of the unchanged corpus")
    re_ = measure_reingest(index, documents, corpus, home)
    query_vectors = index.embedder.embed(query_texts)
    stats = index.stats()
    print("hybrid queries on SQLite", flush=True)
    index.search(query_texts[0], k=K, vector=query_vectors[0])  # the vector file, written
    store: Any = index.store  # the SQLite store: its file and vector folder
    raw = RawSQLite(store.db_path, index.info, store.folder / "scifact", CANDIDATES)
    sq = {"lat": time_queries(index, raw, query_texts, query_vectors), "raw": raw}
    base = home / "base.npy"
    np.save(base, chunk_matrix(index))
    words, shares = vocabulary(corpus)
    vocab = home / "vocabulary.json"
    vocab.write_text(json.dumps({"words": words, "shares": shares}), "utf-8")
    index.close()
    spec = {"base": str(base), "vocab": str(vocab)}
    syn = pg = pg_syn = None
    if "synthetic" not in args.skip:
        home_syn = home / "synthetic" / ".tether"
        # Below the store's 50k the vector file would be exact: build the graph regardless.
        approximate = 50_000 if args.vectors >= 50_000 else 0
        syn_spec = {
            **spec,
            "n": args.vectors,
            "home": str(home_syn),
            "approximate_from": approximate,
        }
        syn = synthetic_sqlite(syn_spec, query_texts, query_vectors, home)
    if "postgres" not in args.skip:
        from tether.testing.servers import postgres_server

        with postgres_server(str(home / "pgdata")) as url:
            print("PostgreSQL: SciFact, then the synthetic index", flush=True)
            pg = postgres_scifact(url, documents, query_texts, query_vectors)
            pg_spec = {**spec, "n": args.pg_vectors}
            pg_syn = postgres_synthetic(url, pg_spec, query_texts, query_vectors)
    return ingest, re_, sq, syn, pg, pg_syn, stats


def chunk_matrix(index: Any) -> Matrix:
    """Every SciFact chunk's vector: what the synthetic vectors are made from."""
    sql = "SELECT vector FROM rag_chunks WHERE index_id = ? ORDER BY chunk_id"
    blobs = [row[0] for row in index.store.db.execute(sql, (index.info.index_id,))]
    matrix: Matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), DIMS)
    return matrix


def synthetic_notes(syn: dict[str, Any], n: int) -> list[str]:
    return [
        parts_note(f"synthetic {n:,} SQLite", syn["raw"]),
        f"synthetic {n:,}: dense recall@10 at k=10 {syn['k10']:.3f}, top 10 of a hybrid's "
        f"100 candidates {syn['pool']:.3f}"
        + (
            f", the same graph searched deeper (ef 256) {syn['deeper']:.3f}"
            if "deeper" in syn
            else ""
        ),
        f"synthetic {n:,}: the vector file opened by the first search in "
        f"{syn['open_s'] * 1e3:.0f} ms",
        *(
            [f"synthetic {n:,}: BM25 postings read from the FTS5 table in {postings:.1f} s"]
            if (postings := syn["built"].get("postings_s")) is not None
            else []
        ),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
