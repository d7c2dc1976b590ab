"""The vector file: exact and HNSW search, rebuilt when stale, and the usearch/onnxruntime pair."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from tether.retrieval.stores.vectors import VectorIndex


def data(n: int = 300, dims: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    matrix = rng.normal(size=(n, dims)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.arange(1, n + 1, dtype=np.int64), matrix


def test_exact_and_approximate_agree_and_files_are_reused(tmp_path: Path) -> None:
    ids, matrix = data()
    loads: list[int] = []

    def load() -> tuple[np.ndarray, np.ndarray]:
        loads.append(1)
        return ids, matrix

    exact = VectorIndex(tmp_path, "exact", 16)
    exact.ensure(1, load)
    graph = VectorIndex(tmp_path, "graph", 16, approximate_from=10)
    graph.ensure(1, load)
    query = matrix[5]
    assert exact.search(query, 1)[0][0] == 6
    assert graph.search(query, 1)[0][0] == 6
    again = VectorIndex(tmp_path, "graph", 16, approximate_from=10)
    again.ensure(1, load)  # read from its file, not rebuilt
    assert len(loads) == 2
    again.ensure(2, load)  # a newer generation: rebuilt from the database
    assert len(loads) == 3
    allowed = np.array([10, 20, 30], dtype=np.int64)
    assert {i for i, _ in again.search(query, 5, allowed)} == {10, 20, 30}


def test_a_graph_file_of_another_precision_is_rebuilt_and_batches_build_alike(
    tmp_path: Path,
) -> None:
    import json

    ids, matrix = data()
    loads: list[int] = []

    def batches() -> list[tuple[np.ndarray, np.ndarray]]:  # as the store reads them
        loads.append(1)
        return [(ids[at : at + 64], matrix[at : at + 64]) for at in range(0, len(ids), 64)]

    graph = VectorIndex(tmp_path, "g", 16, approximate_from=100)
    graph.ensure(1, batches)
    assert graph.graph is not None and len(graph.ids) == len(ids)  # type: ignore[arg-type]
    meta_path = tmp_path / "g.json"
    meta = json.loads(meta_path.read_text())
    assert meta["kind"] == "hnsw-f16"
    meta_path.write_text(json.dumps({**meta, "kind": "hnsw-i8"}))  # an older tether's file
    again = VectorIndex(tmp_path, "g", 16, approximate_from=100)
    again.ensure(1, batches)
    assert len(loads) == 2  # not read as f16: rebuilt
    hits = again.search(matrix[42], 10)
    exact = np.argsort(-(matrix @ matrix[42]))[:10] + 1
    assert len({i for i, _ in hits} & set(exact.tolist())) >= 9


def test_usearch_and_onnxruntime_load_together() -> None:
    # Some usearch releases crash the process when onnxruntime is imported after them.
    code = "import usearch.index, onnxruntime"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
