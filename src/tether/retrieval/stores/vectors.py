"""A dense index over an index's chunk vectors, kept in a file beside the database.

The database holds every vector (the source of truth); the file is a cache rebuilt from it
whenever its recorded generation is not the index's current one, so a crash between a write
and the file's update costs a rebuild, never a wrong answer. Small indexes are searched
exactly (one matrix product); from ``approximate_from`` vectors on, a usearch HNSW graph over
half-precision vectors answers instead (int8 costs half the memory but caps recall: exact
search over usearch's int8 copies finds 0.92 of the float32 top 10, over f16 copies 1.00),
its recall against exact search measured in bench/retrieval_speed.py.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Ids = npt.NDArray[np.int64]
    Matrix = npt.NDArray[np.float32]

# All of an index's vectors, as one (ids, matrix) pair or as batches of them: a million
# vectors then never sit in memory as float32 beside the graph built from them.
DTYPE = "f16"
KIND = f"hnsw-{DTYPE}"
EXPANSION = 128  # candidates an HNSW search keeps (usearch's default is 64)

Loader = Callable[[], "tuple[Ids, Matrix] | Iterable[tuple[Ids, Matrix]]"]


class VectorIndex:
    def __init__(
        self, folder: Path, name: str, dimensions: int, *, approximate_from: int = 50_000
    ) -> None:
        self.folder = folder
        self.name = name
        self.dimensions = dimensions
        self.approximate_from = approximate_from
        self.generation = -1
        self.ids: Ids | None = None
        self.matrix: Matrix | None = None
        self.graph: Any = None
        self._lock = threading.Lock()

    def _path(self, suffix: str) -> Path:
        return self.folder / f"{self.name}{suffix}"

    def ensure(self, generation: int, load: Loader) -> None:
        """Make the index current for ``generation``: from memory, else from its file,
        else rebuilt from the database with ``load`` (and the file rewritten)."""
        with self._lock:
            if self.generation == generation:
                return
            if not self._read(generation):
                loaded = load()
                self._build([loaded] if isinstance(loaded, tuple) else loaded)
                self._write(generation)
            self.generation = generation

    def _read(self, generation: int) -> bool:
        import numpy as np

        try:
            meta = json.loads(self._path(".json").read_text())
            if meta.get("generation") != generation or meta.get("dimensions") != self.dimensions:
                return False
            self.ids = np.load(self._path(".ids.npy"))
            if meta["kind"] == "exact":
                self.matrix = np.load(self._path(".npy"))
                self.graph = None
            elif meta["kind"] != KIND:
                return False  # a graph of another precision (an older tether): rebuild
            else:
                from usearch.index import Index

                self.graph = Index.restore(str(self._path(".usearch")))
                self.matrix = None
            return True
        except (OSError, ValueError, KeyError):
            return False  # missing, partial or from another version: rebuild

    def _build(self, batches: Iterable[tuple[Ids, Matrix]]) -> None:
        """Exact below ``approximate_from`` vectors, else the graph: batches are kept only
        until there are that many, then each goes into the graph as it comes."""
        import numpy as np

        keys: list[Ids] = []
        held: list[Matrix] = []
        count, graph = 0, None
        for ids, matrix in batches:
            keys.append(ids)
            count += len(ids)
            if graph is not None:
                graph.add(ids, matrix)
                continue
            held.append(matrix)
            if count >= self.approximate_from:
                graph = self._graph(keys, held)
                held = []
        self.ids = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
        if graph is None and count >= self.approximate_from:
            graph = self._graph(keys, held)  # approximate_from=0 and no vectors yet
        if graph is None:
            shape = (0, self.dimensions)
            self.matrix = np.concatenate(held) if held else np.zeros(shape, dtype=np.float32)
        else:
            self.matrix = None
        self.graph = graph

    def _graph(self, keys: list[Ids], matrices: list[Matrix]) -> Any:
        from usearch.index import Index

        graph = Index(ndim=self.dimensions, metric="cos", dtype=DTYPE)
        for ids, matrix in zip(keys, matrices, strict=True):
            if len(ids):
                graph.add(ids, matrix)
        return graph

    def _write(self, generation: int) -> None:
        """Each file goes to a temporary name first; the metadata last, so a reader never
        takes half-written vectors for current ones."""
        import numpy as np

        self.folder.mkdir(parents=True, exist_ok=True)
        ids, matrix = self.ids, self.matrix
        assert ids is not None
        atomic(self._path(".ids.npy"), lambda p: np.save(p, ids))
        if self.graph is None:
            assert matrix is not None
            atomic(self._path(".npy"), lambda p: np.save(p, matrix))
        else:
            atomic(self._path(".usearch"), lambda p: self.graph.save(str(p)))
        meta = {
            "generation": generation,
            "dimensions": self.dimensions,
            "kind": "exact" if self.graph is None else KIND,
            "count": len(ids),
        }
        atomic(self._path(".json"), lambda p: p.write_text(json.dumps(meta)))

    def search(
        self, vector: npt.NDArray[np.float32], k: int, allowed: Ids | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` nearest chunk ids by cosine similarity, best first, among ``allowed``
        when given."""
        import numpy as np

        with self._lock:
            ids, matrix, graph = self.ids, self.matrix, self.graph
        if ids is None or len(ids) == 0 or k <= 0:
            return []
        if graph is not None and allowed is None:
            # The search's breadth grows with k, as pgvector's ef_search does in the store.
            graph.expansion_search = max(EXPANSION, 2 * k)
            found = graph.search(vector, min(k, len(ids)))
            return [
                (int(key), 1.0 - float(d))
                for key, d in zip(found.keys, found.distances, strict=True)
            ]
        if matrix is None:
            # A filter on an approximate index: score the allowed vectors exactly.
            assert graph is not None and allowed is not None
            keys = np.intersect1d(ids, allowed)
            if len(keys) == 0:
                return []
            rows = np.vstack([graph.get(int(key)) for key in keys]).astype(np.float32)
            rows /= np.clip(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12, None)
            return _top(keys, rows @ vector, k)
        if allowed is not None:
            mask = np.isin(ids, allowed)
            return _top(ids[mask], matrix[mask] @ vector, k)
        return _top(ids, matrix @ vector, k)

    def drop(self) -> None:
        with self._lock:
            for suffix in (".json", ".ids.npy", ".npy", ".usearch"):
                self._path(suffix).unlink(missing_ok=True)
            self.generation, self.ids, self.matrix, self.graph = -1, None, None, None


def _top(ids: Any, scores: Any, k: int) -> list[tuple[int, float]]:
    import numpy as np

    if len(ids) == 0:
        return []
    k = min(k, len(ids))
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.argsort(-scores[best], kind="stable")]
    return [(int(ids[i]), float(scores[i])) for i in best]


def atomic(path: Path, write: Callable[[Path], Any]) -> None:
    # np.save appends .npy to a name without it, so the temporary name keeps the suffix.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    write(temporary)
    os.replace(temporary, path)
