"""The embedded store: the project's SQLite database, an FTS5 table per index for BM25 and a
vector file per index (stores/vectors.py), rebuildable from the database. A large index
answers BM25 from postings files read from its FTS5 table (stores/lexical.py)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.errors import ConfigError
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
from tether.retrieval.stores.lexical import LexicalIndex, Postings
from tether.retrieval.stores.vectors import VectorIndex
from tether.retrieval.types import Chunk, Document, Hit, content_hash
from tether.store.db import connect, transaction

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# Porter stemming over Unicode words, accents folded: what BM25 on English prose wants.
TOKENIZE = "porter unicode61 remove_diacritics 2"
# Vectors read at a time when the vector file is rebuilt (16k x 384 float32: 24 MiB).
VECTOR_BATCH = 16_384


def _fts(index: IndexInfo) -> str:
    return f"rag_fts_{index.index_id}"


class SQLiteStore:
    def __init__(self, db_path: Path, *, approximate_from: int = 50_000) -> None:
        self.db_path = db_path
        self.folder = db_path.parent / "vectors"
        self.terms_folder = db_path.parent / "terms"
        self.approximate_from = approximate_from
        self.db: sqlite3.Connection = connect(db_path, timeout=30.0)
        self._lock = threading.RLock()
        self._vectors: dict[int, VectorIndex] = {}
        self._lexicals: dict[int, LexicalIndex] = {}

    # -- indexes ---------------------------------------------------------------------------

    def create_index(
        self, name: str, embedder: str, dimensions: int, chunking: Chunking
    ) -> IndexInfo:
        check_name(name)
        with self._lock, transaction(self.db) as db:
            if db.execute("SELECT 1 FROM rag_indexes WHERE name = ?", (name,)).fetchone():
                raise ConfigError(f"index {name!r} already exists; open it, or remove it first")
            cursor = db.execute(
                "INSERT INTO rag_indexes (name, embedder, dimensions, chunking, created_ns) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, embedder, dimensions, chunking.model_dump_json(), time.time_ns()),
            )
            info = self.get_index(name)
            assert info is not None and info.index_id == cursor.lastrowid
            db.execute(f"CREATE VIRTUAL TABLE {_fts(info)} USING fts5(body, tokenize='{TOKENIZE}')")
        return info

    def get_index(self, name: str) -> IndexInfo | None:
        with self._lock:
            row = self.db.execute(
                f"SELECT {INDEX_COLUMNS} FROM rag_indexes WHERE name = ?", (name,)
            ).fetchone()
        return IndexInfo.from_row(row) if row else None

    def list_indexes(self) -> list[IndexInfo]:
        with self._lock:
            rows = self.db.execute(f"SELECT {INDEX_COLUMNS} FROM rag_indexes ORDER BY name")
            return [IndexInfo.from_row(row) for row in rows.fetchall()]

    def drop_index(self, name: str) -> bool:
        info = self.get_index(name)
        if info is None:
            return False
        with self._lock, transaction(self.db) as db:
            for table in ("rag_chunks", "rag_documents", "rag_files", "rag_indexes"):
                db.execute(f"DELETE FROM {table} WHERE index_id = ?", (info.index_id,))
            db.execute(f"DROP TABLE IF EXISTS {_fts(info)}")
        self._vector_index(info).drop()
        self._vectors.pop(info.index_id, None)
        self._lexical_index(info).drop()
        self._lexicals.pop(info.index_id, None)
        return True

    def _generation(self, index: IndexInfo) -> int:
        row = self.db.execute(
            "SELECT generation FROM rag_indexes WHERE index_id = ?", (index.index_id,)
        ).fetchone()
        if row is None:
            raise ConfigError(f"index {index.name!r} was removed; create it again")
        return int(row[0])

    def _bump(self, db: sqlite3.Connection, index: IndexInfo) -> None:
        db.execute(
            "UPDATE rag_indexes SET generation = generation + 1 WHERE index_id = ?",
            (index.index_id,),
        )

    # -- files and documents ---------------------------------------------------------------

    def file_state(self, index: IndexInfo, path: str) -> FileState | None:
        with self._lock:
            row = self.db.execute(
                "SELECT size, mtime_ns, hash FROM rag_files WHERE index_id = ? AND path = ?",
                (index.index_id, path),
            ).fetchone()
        return FileState(size=row[0], mtime_ns=row[1], hash=row[2]) if row else None

    def files(self, index: IndexInfo) -> list[str]:
        with self._lock:
            rows = self.db.execute(
                "SELECT path FROM rag_files WHERE index_id = ? UNION "
                "SELECT DISTINCT file FROM rag_documents WHERE index_id = ? AND file IS NOT NULL",
                (index.index_id, index.index_id),
            )
            return sorted(row[0] for row in rows)

    def documents(self, index: IndexInfo, file: str | None = None) -> list[StoredDocument]:
        sql = "SELECT source, file, hash FROM rag_documents WHERE index_id = ?"
        args: list[Any] = [index.index_id]
        if file is not None:
            sql += " AND file = ?"
            args.append(file)
        with self._lock:
            rows = self.db.execute(sql, args).fetchall()
        return [StoredDocument(source=s, file=f, hash=h) for s, f, h in rows]

    def write_document(
        self,
        index: IndexInfo,
        document: Document,
        file: str | None,
        chunks: Sequence[Chunk],
        vectors: npt.NDArray[np.float32],
    ) -> None:
        """Replace the document and its chunks in one transaction: all of it or none."""
        import numpy as np

        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        fts = _fts(index)
        with self._lock, transaction(self.db) as db:
            self._delete(db, index, [document.source])
            cursor = db.execute(
                "INSERT INTO rag_documents (index_id, source, file, title, modified, hash, "
                "text_hash, text, pages, metadata, ingested_ns) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
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
            )
            doc_id = cursor.lastrowid
            for chunk, vector in zip(chunks, vectors, strict=True):
                row = db.execute(
                    "INSERT INTO rag_chunks (doc_id, index_id, ordinal, text, start, end, page, "
                    "headings, context, vector) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        doc_id,
                        index.index_id,
                        chunk.ordinal,
                        chunk.text,
                        chunk.start,
                        chunk.end,
                        chunk.page,
                        json.dumps(chunk.headings, ensure_ascii=False),
                        chunk.context,
                        np.asarray(vector, dtype=np.float32).tobytes(),
                    ),
                )
                db.execute(
                    f"INSERT INTO {fts} (rowid, body) VALUES (?, ?)",
                    (row.lastrowid, chunk.searchable),
                )
            self._bump(db, index)

    def _delete(self, db: sqlite3.Connection, index: IndexInfo, sources: Sequence[str]) -> int:
        removed = 0
        for source in sources:
            row = db.execute(
                "SELECT doc_id FROM rag_documents WHERE index_id = ? AND source = ?",
                (index.index_id, source),
            ).fetchone()
            if row is None:
                continue
            db.execute(
                f"DELETE FROM {_fts(index)} WHERE rowid IN "
                "(SELECT chunk_id FROM rag_chunks WHERE doc_id = ?)",
                (row[0],),
            )
            db.execute("DELETE FROM rag_chunks WHERE doc_id = ?", (row[0],))
            db.execute("DELETE FROM rag_documents WHERE doc_id = ?", (row[0],))
            removed += 1
        return removed

    def delete_documents(self, index: IndexInfo, sources: Sequence[str]) -> int:
        with self._lock, transaction(self.db) as db:
            removed = self._delete(db, index, sources)
            if removed:
                self._bump(db, index)
        return removed

    def set_file(self, index: IndexInfo, path: str, state: FileState) -> None:
        with self._lock, transaction(self.db) as db:
            db.execute(
                "INSERT OR REPLACE INTO rag_files (index_id, path, size, mtime_ns, hash) "
                "VALUES (?,?,?,?,?)",
                (index.index_id, path, state.size, state.mtime_ns, state.hash),
            )

    def delete_file(self, index: IndexInfo, path: str) -> int:
        """Forget a file and every document read from it, in one transaction."""
        with self._lock, transaction(self.db) as db:
            sources = [
                row[0]
                for row in db.execute(
                    "SELECT source FROM rag_documents WHERE index_id = ? AND file = ?",
                    (index.index_id, path),
                )
            ]
            removed = self._delete(db, index, sources)
            db.execute(
                "DELETE FROM rag_files WHERE index_id = ? AND path = ?", (index.index_id, path)
            )
            if removed:
                self._bump(db, index)
        return removed

    # -- search ----------------------------------------------------------------------------

    def _where(self, filters: Filters | None) -> tuple[str, list[Any]]:
        """Document filters as SQL over rag_documents (aliased d): ``source`` and ``title``
        match as globs, any other key is a metadata field; a list means any of."""
        if not filters:
            return "", []
        clauses: list[str] = []
        args: list[Any] = []
        for key, value in filters.items():
            if key in ("source", "title"):
                column, op = f"d.{key}", "GLOB"
            else:
                if not key.replace("_", "").replace(".", "").isalnum():
                    raise ConfigError(f"filter key {key!r}: use letters, digits, '_' and '.'")
                column, op = f"json_extract(d.metadata, '$.{key}')", "="
            values = value if isinstance(value, list | tuple | set) else [value]
            clauses.append("(" + " OR ".join(f"{column} {op} ?" for _ in values) + ")")
            args.extend(values)
        return " AND " + " AND ".join(clauses), args

    def lexical(
        self, index: IndexInfo, query: str, k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]:
        terms = list(dict.fromkeys(query_terms(query)))
        if not terms or k <= 0:
            return []
        postings = self._postings(index)
        if postings is not None:
            allowed = postings.positions(self._allowed(index, filters)) if filters else None
            tokens = self._lexical_index(index).tokens(terms, TOKENIZE)
            return postings.search(tokens, k, allowed)
        match = " OR ".join(f'"{term}"' for term in terms)
        where, args = self._where(filters)
        join = (
            " JOIN rag_chunks c ON c.chunk_id = f.rowid JOIN rag_documents d ON d.doc_id = c.doc_id"
            if where
            else ""
        )
        sql = (
            f"SELECT f.rowid, -bm25({_fts(index)}) AS score FROM {_fts(index)} f{join} "
            f"WHERE {_fts(index)} MATCH ?{where} ORDER BY bm25({_fts(index)}) LIMIT ?"
        )
        with self._lock:
            rows = self.db.execute(sql, [match, *args, k]).fetchall()
        return [(int(chunk_id), float(score)) for chunk_id, score in rows]

    def _lexical_index(self, index: IndexInfo) -> LexicalIndex:
        if index.index_id not in self._lexicals:
            self._lexicals[index.index_id] = LexicalIndex(self.terms_folder, index.name)
        return self._lexicals[index.index_id]

    def _postings(self, index: IndexInfo) -> Postings | None:
        """The index's postings from ``approximate_from`` chunks on, else None."""

        def large() -> bool:
            with self._lock:
                (chunks,) = self.db.execute(
                    "SELECT count(*) FROM rag_chunks WHERE index_id = ?", (index.index_id,)
                ).fetchone()
            return bool(chunks >= self.approximate_from)

        def read() -> Postings:
            with self._lock:
                return Postings.read(self.db, _fts(index))

        with self._lock:
            generation = self._generation(index)
        return self._lexical_index(index).ensure(generation, large, read)

    def _allowed(self, index: IndexInfo, filters: Filters) -> npt.NDArray[np.int64]:
        """The chunk ids of the documents ``filters`` keeps."""
        import numpy as np

        where, args = self._where(filters)
        with self._lock:
            rows = self.db.execute(
                "SELECT c.chunk_id FROM rag_chunks c JOIN rag_documents d "
                f"ON d.doc_id = c.doc_id WHERE c.index_id = ?{where}",
                [index.index_id, *args],
            ).fetchall()
        return np.array([row[0] for row in rows], dtype=np.int64)

    def _vector_index(self, index: IndexInfo) -> VectorIndex:
        if index.index_id not in self._vectors:
            self._vectors[index.index_id] = VectorIndex(
                self.folder, index.name, index.dimensions, approximate_from=self.approximate_from
            )
        return self._vectors[index.index_id]

    def _all_vectors(self, index: IndexInfo) -> Iterator[tuple[Any, Any]]:
        """Every chunk's vector in batches, read by one statement (one snapshot)."""
        import numpy as np

        with self._lock:
            cursor = self.db.execute(
                "SELECT chunk_id, vector FROM rag_chunks WHERE index_id = ? ORDER BY chunk_id",
                (index.index_id,),
            )
            while rows := cursor.fetchmany(VECTOR_BATCH):
                ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
                matrix = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32)
                yield ids, matrix.reshape(len(rows), index.dimensions)

    def dense(
        self,
        index: IndexInfo,
        vector: npt.NDArray[np.float32],
        k: int,
        filters: Filters | None = None,
    ) -> list[tuple[int, float]]:
        import numpy as np

        vectors = self._vector_index(index)
        with self._lock:
            generation = self._generation(index)
        vectors.ensure(generation, lambda: self._all_vectors(index))
        allowed = self._allowed(index, filters) if filters else None
        return vectors.search(np.asarray(vector, dtype=np.float32), k, allowed)

    def hits(self, index: IndexInfo, chunk_ids: Sequence[int]) -> dict[int, Hit]:
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        with self._lock:
            rows = self.db.execute(
                "SELECT c.chunk_id, d.source, d.title, c.text, c.start, c.end, c.page, "
                f"c.headings, d.metadata FROM rag_chunks c JOIN rag_documents d "
                f"ON d.doc_id = c.doc_id WHERE c.chunk_id IN ({marks})",
                list(chunk_ids),
            ).fetchall()
        return {
            row[0]: Hit(
                chunk_id=row[0],
                source=row[1],
                title=row[2],
                text=row[3],
                start=row[4],
                end=row[5],
                page=row[6],
                headings=json.loads(row[7]),
                metadata=json.loads(row[8]),
                score=0.0,
            )
            for row in rows
        }

    def chunk_vectors(self, index: IndexInfo, chunk_ids: Sequence[int]) -> npt.NDArray[np.float32]:
        import numpy as np

        marks = ",".join("?" * len(chunk_ids))
        with self._lock:
            rows = dict(
                self.db.execute(
                    f"SELECT chunk_id, vector FROM rag_chunks WHERE chunk_id IN ({marks})",
                    list(chunk_ids),
                ).fetchall()
            )
        return np.stack([np.frombuffer(rows[i], dtype=np.float32) for i in chunk_ids])

    def same_text(self, index: IndexInfo, text: str) -> str | None:
        """The source of a stored document with exactly this text, if any."""
        with self._lock:
            row = self.db.execute(
                "SELECT source FROM rag_documents WHERE index_id = ? AND text_hash = ? LIMIT 1",
                (index.index_id, content_hash(text)),
            ).fetchone()
        return row[0] if row else None

    def document_text(self, index: IndexInfo, source: str) -> str | None:
        with self._lock:
            row = self.db.execute(
                "SELECT text FROM rag_documents WHERE index_id = ? AND source = ?",
                (index.index_id, source),
            ).fetchone()
        return row[0] if row else None

    def stats(self, index: IndexInfo) -> dict[str, Any]:
        with self._lock:
            documents, characters = self.db.execute(
                "SELECT count(*), coalesce(sum(length(text)), 0) FROM rag_documents "
                "WHERE index_id = ?",
                (index.index_id,),
            ).fetchone()
            (chunks,) = self.db.execute(
                "SELECT count(*) FROM rag_chunks WHERE index_id = ?", (index.index_id,)
            ).fetchone()
            (files,) = self.db.execute(
                "SELECT count(*) FROM rag_files WHERE index_id = ?", (index.index_id,)
            ).fetchone()
        return {
            "documents": documents,
            "chunks": chunks,
            "files": files,
            "characters": characters,
            "generation": self._generation(index),
        }

    def reembed(self, index: IndexInfo, embedder: str, dimensions: int, embed: Embed) -> IndexInfo:
        """Every chunk's vector from ``embed``, all computed before one transaction writes
        them with the index's new embedder: a failure half-way leaves the index as it was."""
        import numpy as np

        with self._lock:
            rows = self.db.execute(
                "SELECT chunk_id, text, headings, context FROM rag_chunks WHERE index_id = ?",
                (index.index_id,),
            ).fetchall()
        texts = [
            Chunk(
                text=text, start=0, end=0, headings=json.loads(headings), context=context
            ).searchable
            for _, text, headings, context in rows
        ]
        vectors = embed(texts) if texts else np.zeros((0, dimensions), dtype=np.float32)
        with self._lock, transaction(self.db) as db:
            db.executemany(
                "UPDATE rag_chunks SET vector = ? WHERE chunk_id = ?",
                [
                    (np.asarray(v, dtype=np.float32).tobytes(), row[0])
                    for row, v in zip(rows, vectors, strict=True)
                ],
            )
            db.execute(
                "UPDATE rag_indexes SET embedder = ?, dimensions = ?, generation = generation + 1 "
                "WHERE index_id = ?",
                (embedder, dimensions, index.index_id),
            )
        self._vector_index(index).drop()
        self._vectors.pop(index.index_id, None)
        info = self.get_index(index.name)
        assert info is not None
        return info

    def close(self) -> None:
        with self._lock:
            self.db.close()
