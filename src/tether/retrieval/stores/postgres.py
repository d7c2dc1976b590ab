"""The PostgreSQL store: pgvector (HNSW, cosine) for vectors and full-text search for words.

Each index gets its own partial HNSW index over ``embedding::vector(D)``, so indexes of
different dimensions share one table. Words are ranked by PostgreSQL's ``ts_rank_cd`` over
English stemming, which is not BM25: the same queries find the same documents, their order
among lexical matches may differ from the embedded store's. Every write is one transaction;
a server that cannot be reached is a StoreUnavailable with nothing written.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tether.errors import ConfigError, StoreUnavailable
from tether.retrieval.chunking import Chunking
from tether.retrieval.stores.base import (
    INDEX_COLUMNS,
    Embed,
    FileState,
    Filters,
    IndexInfo,
    StoredDocument,
    check_name,
    query_terms,
)
from tether.retrieval.types import Chunk, Document, Hit, content_hash

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

SCHEMA = [
    "CREATE EXTENSION IF NOT EXISTS vector",
    "CREATE TABLE IF NOT EXISTS rag_indexes (index_id BIGSERIAL PRIMARY KEY, "
    "name TEXT NOT NULL UNIQUE, embedder TEXT NOT NULL, dimensions INTEGER NOT NULL, "
    "chunking TEXT NOT NULL, created_ns BIGINT NOT NULL, generation BIGINT NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS rag_files (index_id BIGINT NOT NULL, path TEXT NOT NULL, "
    "size BIGINT NOT NULL, mtime_ns BIGINT NOT NULL, hash TEXT NOT NULL, "
    "PRIMARY KEY (index_id, path))",
    "CREATE TABLE IF NOT EXISTS rag_documents (doc_id BIGSERIAL PRIMARY KEY, "
    "index_id BIGINT NOT NULL, source TEXT NOT NULL, file TEXT, title TEXT, modified DOUBLE "
    "PRECISION, hash TEXT NOT NULL, text_hash TEXT NOT NULL, text TEXT NOT NULL, "
    "pages JSONB NOT NULL, metadata JSONB NOT NULL, ingested_ns BIGINT NOT NULL, "
    "UNIQUE (index_id, source))",
    "CREATE INDEX IF NOT EXISTS rag_documents_file ON rag_documents (index_id, file)",
    "CREATE INDEX IF NOT EXISTS rag_documents_text ON rag_documents (index_id, text_hash)",
    "CREATE TABLE IF NOT EXISTS rag_chunks (chunk_id BIGSERIAL PRIMARY KEY, "
    "doc_id BIGINT NOT NULL REFERENCES rag_documents ON DELETE CASCADE, "
    "index_id BIGINT NOT NULL, ordinal INTEGER NOT NULL, text TEXT NOT NULL, "
    "start_at INTEGER NOT NULL, end_at INTEGER NOT NULL, page INTEGER, headings JSONB NOT NULL, "
    "context TEXT, body TEXT NOT NULL, "
    "words tsvector GENERATED ALWAYS AS (to_tsvector('english', body)) STORED, "
    "embedding vector NOT NULL)",
    "CREATE INDEX IF NOT EXISTS rag_chunks_doc ON rag_chunks (doc_id)",
    "CREATE INDEX IF NOT EXISTS rag_chunks_words ON rag_chunks USING gin (words)",
]


def glob_regex(pattern: str) -> str:
    """A glob (``*``, ``?``, ``[...]``) as an anchored PostgreSQL regular expression, so a
    ``source`` filter means what it means on the embedded store (SQLite's GLOB)."""
    out, at = ["^"], 0
    while at < len(pattern):
        char = pattern[at]
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[" and (close := pattern.find("]", at + 1)) > at:
            body = pattern[at + 1 : close]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
            at = close
        else:
            out.append(re.escape(char))
        at += 1
    return "".join(out) + "$"


def _where_safe(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or parts.query or "localhost"
    return f"{parts.scheme}://{parts.username or ''}@{host}{parts.path}"


class PostgresStore:
    def __init__(self, url: str, *, connect_timeout: float = 5.0) -> None:
        import psycopg
        from pgvector.psycopg import register_vector

        from tether.config import register_secret

        self.url = url
        if password := urlsplit(url).password:
            register_secret(password)
        self._lock = threading.RLock()
        try:
            self.conn = psycopg.connect(url, connect_timeout=int(connect_timeout))
            with self.conn.transaction():
                for statement in SCHEMA:
                    self.conn.execute(statement)
            register_vector(self.conn)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(
                f"cannot reach PostgreSQL at {_where_safe(url)} ({str(exc).strip()[:200]}); "
                "check database_url and that the server is running; nothing was written"
            ) from exc

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        import psycopg

        with self._lock:
            try:
                with self.conn.transaction():
                    yield self.conn
            except psycopg.OperationalError as exc:
                raise StoreUnavailable(
                    f"lost PostgreSQL at {_where_safe(self.url)} ({str(exc).strip()[:200]}); "
                    "the transaction was rolled back: run again when it is back"
                ) from exc

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._tx() as conn:
            return list(conn.execute(sql, args).fetchall())

    # -- indexes ---------------------------------------------------------------------------

    def create_index(
        self, name: str, embedder: str, dimensions: int, chunking: Chunking
    ) -> IndexInfo:
        check_name(name)
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM rag_indexes WHERE name = %s", (name,)).fetchone():
                raise ConfigError(f"index {name!r} already exists; open it, or remove it first")
            row = conn.execute(
                "INSERT INTO rag_indexes (name, embedder, dimensions, chunking, created_ns) "
                f"VALUES (%s, %s, %s, %s, %s) RETURNING {INDEX_COLUMNS}",
                (name, embedder, dimensions, chunking.model_dump_json(), time.time_ns()),
            ).fetchone()
            info = IndexInfo.from_row(row)
            self._hnsw(conn, info)
        return info

    def _hnsw(self, conn: Any, info: IndexInfo) -> None:
        conn.execute(
            f"CREATE INDEX IF NOT EXISTS rag_hnsw_{info.index_id} ON rag_chunks USING hnsw "
            f"((embedding::vector({info.dimensions})) vector_cosine_ops) "
            f"WHERE index_id = {info.index_id}"
        )

    def get_index(self, name: str) -> IndexInfo | None:
        rows = self._rows(f"SELECT {INDEX_COLUMNS} FROM rag_indexes WHERE name = %s", (name,))
        return IndexInfo.from_row(rows[0]) if rows else None

    def list_indexes(self) -> list[IndexInfo]:
        rows = self._rows(f"SELECT {INDEX_COLUMNS} FROM rag_indexes ORDER BY name")
        return [IndexInfo.from_row(row) for row in rows]

    def drop_index(self, name: str) -> bool:
        info = self.get_index(name)
        if info is None:
            return False
        with self._tx() as conn:
            for table in ("rag_chunks", "rag_documents", "rag_files", "rag_indexes"):
                conn.execute(f"DELETE FROM {table} WHERE index_id = %s", (info.index_id,))
            conn.execute(f"DROP INDEX IF EXISTS rag_hnsw_{info.index_id}")
        return True

    def _bump(self, conn: Any, index: IndexInfo) -> None:
        conn.execute(
            "UPDATE rag_indexes SET generation = generation + 1 WHERE index_id = %s",
            (index.index_id,),
        )

    # -- files and documents ---------------------------------------------------------------

    def file_state(self, index: IndexInfo, path: str) -> FileState | None:
        rows = self._rows(
            "SELECT size, mtime_ns, hash FROM rag_files WHERE index_id = %s AND path = %s",
            (index.index_id, path),
        )
        return FileState(size=rows[0][0], mtime_ns=rows[0][1], hash=rows[0][2]) if rows else None

    def files(self, index: IndexInfo) -> list[str]:
        rows = self._rows(
            "SELECT path FROM rag_files WHERE index_id = %s UNION SELECT DISTINCT file FROM "
            "rag_documents WHERE index_id = %s AND file IS NOT NULL",
            (index.index_id, index.index_id),
        )
        return sorted(row[0] for row in rows)

    def documents(self, index: IndexInfo, file: str | None = None) -> list[StoredDocument]:
        sql = "SELECT source, file, hash FROM rag_documents WHERE index_id = %s"
        args: list[Any] = [index.index_id]
        if file is not None:
            sql += " AND file = %s"
            args.append(file)
        return [StoredDocument(source=s, file=f, hash=h) for s, f, h in self._rows(sql, args)]

    def write_document(
        self,
        index: IndexInfo,
        document: Document,
        file: str | None,
        chunks: Sequence[Chunk],
        vectors: npt.NDArray[np.float32],
    ) -> None:
        import numpy as np

        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        with self._tx() as conn:
            conn.execute(
                "DELETE FROM rag_documents WHERE index_id = %s AND source = %s",
                (index.index_id, document.source),
            )
            (doc_id,) = conn.execute(
                "INSERT INTO rag_documents (index_id, source, file, title, modified, hash, "
                "text_hash, text, pages, metadata, ingested_ns) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING doc_id",
                (
                    index.index_id,
                    document.source,
                    file,
                    document.title,
                    document.modified,
                    document.hash,
                    content_hash(document.text),
                    document.text,
                    json.dumps([p.model_dump() for p in document.pages]),
                    json.dumps(document.metadata, ensure_ascii=False, default=str),
                    time.time_ns(),
                ),
            ).fetchone()
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO rag_chunks (doc_id, index_id, ordinal, text, start_at, end_at, "
                    "page, headings, context, body, embedding) "
                    "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                    [
                        (
                            doc_id,
                            index.index_id,
                            c.ordinal,
                            c.text,
                            c.start,
                            c.end,
                            c.page,
                            json.dumps(c.headings, ensure_ascii=False),
                            c.context,
                            c.searchable,
                            np.asarray(v, dtype=np.float32),
                        )
                        for c, v in zip(chunks, vectors, strict=True)
                    ],
                )
            self._bump(conn, index)

    def delete_documents(self, index: IndexInfo, sources: Sequence[str]) -> int:
        with self._tx() as conn:
            removed = conn.execute(
                "DELETE FROM rag_documents WHERE index_id = %s AND source = ANY(%s)",
                (index.index_id, list(sources)),
            ).rowcount
            if removed:
                self._bump(conn, index)
        return int(removed)

    def set_file(self, index: IndexInfo, path: str, state: FileState) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO rag_files (index_id, path, size, mtime_ns, hash) "
                "VALUES (%s,%s,%s,%s,%s) ON CONFLICT (index_id, path) DO UPDATE SET "
                "size = EXCLUDED.size, mtime_ns = EXCLUDED.mtime_ns, hash = EXCLUDED.hash",
                (index.index_id, path, state.size, state.mtime_ns, state.hash),
            )

    def delete_file(self, index: IndexInfo, path: str) -> int:
        with self._tx() as conn:
            removed = conn.execute(
                "DELETE FROM rag_documents WHERE index_id = %s AND file = %s",
                (index.index_id, path),
            ).rowcount
            conn.execute(
                "DELETE FROM rag_files WHERE index_id = %s AND path = %s", (index.index_id, path)
            )
            if removed:
                self._bump(conn, index)
        return int(removed)

    # -- search ----------------------------------------------------------------------------

    def _where(self, filters: Filters | None) -> tuple[str, list[Any]]:
        if not filters:
            return "", []
        clauses: list[str] = []
        args: list[Any] = []
        for key, value in filters.items():
            values = list(value) if isinstance(value, list | tuple | set) else [value]
            if key in ("source", "title"):
                clauses.append("(" + " OR ".join(f"d.{key} ~ %s" for _ in values) + ")")
                args.extend(glob_regex(str(v)) for v in values)
                continue
            if not key.replace("_", "").replace(".", "").isalnum():
                raise ConfigError(f"filter key {key!r}: use letters, digits, '_' and '.'")
            path = "{" + ",".join(key.split(".")) + "}"
            clauses.append("(" + " OR ".join("d.metadata #>> %s = %s" for _ in values) + ")")
            for v in values:
                args.extend([path, json.dumps(v) if not isinstance(v, str) else v])
        return " AND " + " AND ".join(clauses), args

    def lexical(
        self, index: IndexInfo, query: str, k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]:
        terms = query_terms(query)
        if not terms or k <= 0:
            return []
        where, args = self._where(filters)
        # Each word as its own prefix-free lexeme, ORed: the user's text is never syntax.
        tsquery = " | ".join(dict.fromkeys(terms))
        rows = self._rows(
            "SELECT c.chunk_id, ts_rank_cd(c.words, q, 1) AS score FROM rag_chunks c "
            "JOIN rag_documents d ON d.doc_id = c.doc_id, "
            "to_tsquery('english', %s) q WHERE c.index_id = %s AND c.words @@ q"
            f"{where} ORDER BY score DESC, c.chunk_id LIMIT %s",
            [tsquery, index.index_id, *args, k],
        )
        return [(int(chunk_id), float(score)) for chunk_id, score in rows]

    def dense(
        self,
        index: IndexInfo,
        vector: npt.NDArray[np.float32],
        k: int,
        filters: Filters | None = None,
    ) -> list[tuple[int, float]]:
        import numpy as np

        if k <= 0:
            return []
        where, args = self._where(filters)
        cast = f"vector({index.dimensions})"
        with self._tx() as conn:
            # Enough candidates for the graph walk to find k after a filter.
            conn.execute(f"SET LOCAL hnsw.ef_search = {max(40, min(1000, 2 * k))}")
            rows = conn.execute(
                f"SELECT c.chunk_id, 1 - (c.embedding::{cast} <=> %s::{cast}) AS score "
                "FROM rag_chunks c JOIN rag_documents d ON d.doc_id = c.doc_id "
                f"WHERE c.index_id = %s{where} ORDER BY c.embedding::{cast} <=> %s::{cast} "
                "LIMIT %s",
                [
                    np.asarray(vector, dtype=np.float32),
                    index.index_id,
                    *args,
                    np.asarray(vector, dtype=np.float32),
                    k,
                ],
            ).fetchall()
        return [(int(chunk_id), float(score)) for chunk_id, score in rows]

    def hits(self, index: IndexInfo, chunk_ids: Sequence[int]) -> dict[int, Hit]:
        if not chunk_ids:
            return {}
        rows = self._rows(
            "SELECT c.chunk_id, d.source, d.title, c.text, c.start_at, c.end_at, c.page, "
            "c.headings, d.metadata FROM rag_chunks c JOIN rag_documents d "
            "ON d.doc_id = c.doc_id WHERE c.chunk_id = ANY(%s)",
            (list(chunk_ids),),
        )
        return {
            row[0]: Hit(
                chunk_id=row[0],
                source=row[1],
                title=row[2],
                text=row[3],
                start=row[4],
                end=row[5],
                page=row[6],
                headings=row[7],
                metadata=row[8],
                score=0.0,
            )
            for row in rows
        }

    def chunk_vectors(self, index: IndexInfo, chunk_ids: Sequence[int]) -> npt.NDArray[np.float32]:
        import numpy as np

        rows = dict(
            self._rows(
                "SELECT chunk_id, embedding FROM rag_chunks WHERE chunk_id = ANY(%s)",
                (list(chunk_ids),),
            )
        )
        # A column without dimensions reads back as pgvector's Vector, not an array.
        return np.stack([np.asarray(rows[i].to_numpy(), dtype=np.float32) for i in chunk_ids])

    def same_text(self, index: IndexInfo, text: str) -> str | None:
        rows = self._rows(
            "SELECT source FROM rag_documents WHERE index_id = %s AND text_hash = %s LIMIT 1",
            (index.index_id, content_hash(text)),
        )
        return rows[0][0] if rows else None

    def document_text(self, index: IndexInfo, source: str) -> str | None:
        rows = self._rows(
            "SELECT text FROM rag_documents WHERE index_id = %s AND source = %s",
            (index.index_id, source),
        )
        return rows[0][0] if rows else None

    def stats(self, index: IndexInfo) -> dict[str, Any]:
        with self._tx() as conn:
            documents, characters = conn.execute(
                "SELECT count(*), coalesce(sum(length(text)), 0) FROM rag_documents "
                "WHERE index_id = %s",
                (index.index_id,),
            ).fetchone()
            (chunks,) = conn.execute(
                "SELECT count(*) FROM rag_chunks WHERE index_id = %s", (index.index_id,)
            ).fetchone()
            (files,) = conn.execute(
                "SELECT count(*) FROM rag_files WHERE index_id = %s", (index.index_id,)
            ).fetchone()
            (generation,) = conn.execute(
                "SELECT generation FROM rag_indexes WHERE index_id = %s", (index.index_id,)
            ).fetchone()
        return {
            "documents": int(documents),
            "chunks": int(chunks),
            "files": int(files),
            "characters": int(characters),
            "generation": int(generation),
        }

    def reembed(self, index: IndexInfo, embedder: str, dimensions: int, embed: Embed) -> IndexInfo:
        import numpy as np

        rows = self._rows(
            "SELECT chunk_id, body FROM rag_chunks WHERE index_id = %s", (index.index_id,)
        )
        vectors = embed([body for _, body in rows]) if rows else np.zeros((0, dimensions))
        with self._tx() as conn:
            # The old index casts to the old size: it goes first (and comes back on commit
            # with the new one, or stays with a rollback).
            conn.execute(f"DROP INDEX IF EXISTS rag_hnsw_{index.index_id}")
            with conn.cursor() as cursor:
                cursor.executemany(
                    "UPDATE rag_chunks SET embedding = %s WHERE chunk_id = %s",
                    [
                        (np.asarray(v, dtype=np.float32), row[0])
                        for row, v in zip(rows, vectors, strict=True)
                    ],
                )
            conn.execute(
                "UPDATE rag_indexes SET embedder = %s, dimensions = %s, "
                "generation = generation + 1 WHERE index_id = %s",
                (embedder, dimensions, index.index_id),
            )
            info = index.model_copy(update={"embedder": embedder, "dimensions": dimensions})
            self._hnsw(conn, info)
        fresh = self.get_index(index.name)
        assert fresh is not None
        return fresh

    def close(self) -> None:
        with self._lock:
            self.conn.close()
