"""Vectors already computed, keyed by (embedder id, sha256 of the text), in the project
database: unchanged text is never embedded twice, across runs and across indexes."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tether.store.db import connect, transaction

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# SQLite's default limit on bound parameters is 32766; stay well under it.
_LOOKUP = 500


class EmbeddingCache:
    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = connect(self.db_path)
        return self._db

    def get(
        self, embedder: str, hashes: Sequence[str], dimensions: int
    ) -> dict[str, npt.NDArray[np.float32]]:
        import numpy as np

        found: dict[str, npt.NDArray[np.float32]] = {}
        with self._lock:
            db = self.db()
            for at in range(0, len(hashes), _LOOKUP):
                part = list(hashes[at : at + _LOOKUP])
                marks = ",".join("?" * len(part))
                rows = db.execute(
                    f"SELECT hash, vector FROM embedding_cache WHERE embedder = ? "
                    f"AND hash IN ({marks})",
                    [embedder, *part],
                )
                for digest, blob in rows:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape[0] == dimensions:  # a model whose size changed is a miss
                        found[digest] = vector
        return found

    def put(self, embedder: str, items: Sequence[tuple[str, npt.NDArray[np.float32]]]) -> None:
        import numpy as np

        rows = [(embedder, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items]
        with self._lock, transaction(self.db()) as db:
            db.executemany(
                "INSERT OR REPLACE INTO embedding_cache (embedder, hash, vector) VALUES (?,?,?)",
                rows,
            )

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
