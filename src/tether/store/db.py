"""The project database: one SQLite file (WAL) under the project folder.

Schema changes are named migration functions, applied in order on open and recorded in
``PRAGMA user_version``, so an old database upgrades itself and nothing stored is lost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

Migration = Callable[[sqlite3.Connection], None]


def m001_spans(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE spans (
            span_id TEXT PRIMARY KEY,
            trace_id TEXT NOT NULL,
            parent_id TEXT,
            name TEXT NOT NULL,
            start_ns INTEGER NOT NULL,
            end_ns INTEGER NOT NULL,
            status TEXT NOT NULL,
            model TEXT,
            provider TEXT,
            alias TEXT,
            input_tokens INTEGER,
            output_tokens INTEGER,
            cached_tokens INTEGER,
            reasoning_tokens INTEGER,
            cost_usd REAL,
            latency_ms REAL,
            error TEXT,
            prompt TEXT,
            completion TEXT,
            attributes TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX spans_start ON spans (start_ns)")
    db.execute("CREATE INDEX spans_trace ON spans (trace_id)")


def m002_trace_losses(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE trace_losses (at_ns INTEGER NOT NULL, count INTEGER NOT NULL, "
        "reason TEXT NOT NULL)"
    )


def m003_prompt_versions(db: sqlite3.Connection) -> None:
    # Every version of a prompt file ever loaded, so an old version can be diffed or rerun.
    db.execute(
        "CREATE TABLE prompt_versions (name TEXT NOT NULL, version TEXT NOT NULL, "
        "text TEXT NOT NULL, first_seen_ns INTEGER NOT NULL, PRIMARY KEY (name, version))"
    )


def m004_embedding_cache(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE embedding_cache (embedder TEXT NOT NULL, hash TEXT NOT NULL, "
        "vector BLOB NOT NULL, PRIMARY KEY (embedder, hash)) WITHOUT ROWID"
    )


def m005_retrieval(db: sqlite3.Connection) -> None:
    # Indexes, the files and documents they hold, and their chunks with vectors: the source
    # of truth the vector index files and each index's FTS5 table are rebuilt from.
    db.execute(
        "CREATE TABLE rag_indexes (index_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
        "embedder TEXT NOT NULL, dimensions INTEGER NOT NULL, chunking TEXT NOT NULL, "
        "created_ns INTEGER NOT NULL, generation INTEGER NOT NULL DEFAULT 0)"
    )
    db.execute(
        "CREATE TABLE rag_files (index_id INTEGER NOT NULL, path TEXT NOT NULL, "
        "size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, hash TEXT NOT NULL, "
        "PRIMARY KEY (index_id, path))"
    )
    db.execute(
        "CREATE TABLE rag_documents (doc_id INTEGER PRIMARY KEY, index_id INTEGER NOT NULL, "
        "source TEXT NOT NULL, file TEXT, title TEXT, modified REAL, hash TEXT NOT NULL, "
        "text_hash TEXT NOT NULL, text TEXT NOT NULL, pages TEXT NOT NULL, metadata TEXT NOT NULL, "
        "ingested_ns INTEGER NOT NULL, UNIQUE (index_id, source))"
    )
    db.execute("CREATE INDEX rag_documents_file ON rag_documents (index_id, file)")
    db.execute("CREATE INDEX rag_documents_text ON rag_documents (index_id, text_hash)")
    db.execute(
        "CREATE TABLE rag_chunks (chunk_id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL, "
        "index_id INTEGER NOT NULL, ordinal INTEGER NOT NULL, text TEXT NOT NULL, "
        "start INTEGER NOT NULL, end INTEGER NOT NULL, page INTEGER, headings TEXT NOT NULL, "
        "context TEXT, vector BLOB NOT NULL)"
    )
    db.execute("CREATE INDEX rag_chunks_doc ON rag_chunks (doc_id)")
    db.execute("CREATE INDEX rag_chunks_index ON rag_chunks (index_id)")


def m006_chunk_contexts(db: sqlite3.Connection) -> None:
    # The sentences a model wrote to situate chunks (contextual enrichment), keyed by model
    # and a hash of what it was shown, so a re-ingest never asks for the same one twice.
    db.execute(
        "CREATE TABLE chunk_contexts (model TEXT NOT NULL, hash TEXT NOT NULL, "
        "context TEXT NOT NULL, PRIMARY KEY (model, hash)) WITHOUT ROWID"
    )


def m007_call_cache(db: sqlite3.Connection) -> None:
    # Model calls answered before, by call key (tether.models.middleware.cache).
    db.execute(
        "CREATE TABLE call_cache (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
        "response TEXT NOT NULL, created_ns INTEGER NOT NULL) WITHOUT ROWID"
    )


def m008_evals(db: sqlite3.Connection) -> None:
    # Eval datasets by version, runs and their per-sample results (tether.evals.store).
    db.execute(
        "CREATE TABLE eval_datasets (name TEXT NOT NULL, version TEXT NOT NULL, "
        "samples TEXT NOT NULL, created_ns INTEGER NOT NULL, PRIMARY KEY (name, version))"
    )
    db.execute(
        "CREATE TABLE eval_runs (run_id TEXT PRIMARY KEY, suite TEXT NOT NULL, "
        "dataset TEXT NOT NULL, dataset_version TEXT NOT NULL, config TEXT NOT NULL, "
        "status TEXT NOT NULL, started_ns INTEGER NOT NULL, finished_ns INTEGER)"
    )
    db.execute("CREATE INDEX eval_runs_suite ON eval_runs (suite, started_ns)")
    db.execute(
        "CREATE TABLE eval_results (run_id TEXT NOT NULL, sample_id TEXT NOT NULL, "
        "epoch INTEGER NOT NULL, outcome TEXT NOT NULL, scores TEXT NOT NULL, "
        "PRIMARY KEY (run_id, sample_id, epoch))"
    )


MIGRATIONS: list[Migration] = [
    m001_spans,
    m002_trace_losses,
    m003_prompt_versions,
    m004_embedding_cache,
    m005_retrieval,
    m006_chunk_contexts,
    m007_call_cache,
    m008_evals,
]


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """All or nothing: BEGIN IMMEDIATE takes the write lock up front, so two processes
    cannot interleave, and any error rolls the whole block back."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def migrate(db: sqlite3.Connection) -> None:
    """Apply the migrations this database lacks, each with its version bump atomically."""
    while True:
        with transaction(db):
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version >= len(MIGRATIONS):
                return
            MIGRATIONS[version](db)
            db.execute(f"PRAGMA user_version = {version + 1}")


def connect(path: Path, *, timeout: float = 5.0) -> sqlite3.Connection:
    """Open (creating and upgrading as needed) the database at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: no implicit transactions; every write goes through transaction().
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    migrate(db)
    return db


def connect_readonly(path: Path) -> sqlite3.Connection | None:
    """Open for reading only, without creating anything; None when there is no database."""
    if not path.is_file():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    return db
