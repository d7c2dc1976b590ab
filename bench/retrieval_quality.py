"""Retrieval quality on BEIR SciFact: nDCG@10 and recall@100 of tether's lexical (BM25),
dense and hybrid search, beside the published anchors and, in the same run, LlamaIndex.

The corpus (5,183 abstracts) goes into a tether index on the embedded store with the
embedded embedder (local:minilm; chunks of 200 tokens, 30 of overlap); each document is
scored by its best chunk. Hybrid runs as shipped (reciprocal rank fusion, equal weights,
constant 60) and tuned: the fusion (rrf or weighted), the lexical weight (0 to 1 in steps of
0.05, dense getting the rest), RRF's constant and the candidates per list are chosen on the
*train* queries (qrels/train.tsv) only, then judged once on the 300 test queries. Anchors:
BM25 0.665 (BEIR paper), all-MiniLM-L6-v2 0.645 (MTEB); targets BM25 >= 0.68, dense >=
0.645, hybrid >= 0.72, tuned hybrid >= 0.73.

The peer, LlamaIndex (bench/_llamaindex_peer.py), does its default ingestion and retrieval
(SentenceSplitter, VectorStoreIndex on the in-memory SimpleVectorStore, a retriever) over the
same documents with the same ONNX model file, pooling, window, batch size, threads and chunk
size, in its own virtual environment (bench/.peer-llamaindex, made on first use) as a child
process; its rankings come back as JSON and are scored here by the same functions. Reported
beside tether's dense and hybrid, not judged: its nDCG@10 and recall@100, and ingestion
(documents/s, and tether's time over its).

    .venv/bin/python bench/retrieval_quality.py [--limit N] [--no-peer] [--strict]

``--limit N``: the first N test queries over a corpus cut to their relevant documents plus
as many others (the CI slice: no tuning, nothing judged; the peer runs on the slice too).
``--no-peer``: leave LlamaIndex out. Where the peer's environment cannot be made (no
package registry), the peer is left out with a note; a peer that fails once running makes
the run exit 1, as any other error.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import _common as common
from _common import Row
from _llamaindex_peer import LLAMAINDEX, SAME_AS_TETHER

NAME = "retrieval_quality"
ANCHORS = {"lexical": 0.665, "dense": 0.645}
TARGETS = {"lexical": 0.68, "dense": 0.645, "hybrid": 0.72, "hybrid tuned": 0.73}
DEPTH = 100  # documents ranked per query
CHUNKS = 400  # chunks fetched per query to rank DEPTH documents
# The tuning grid, searched on the train queries. Index.search gives each list
# max(k, candidates) chunks and the benchmark asks for k = CHUNKS, so candidates start there.
LEXICAL_WEIGHTS = tuple(step / 20 for step in range(21))
RRF_KS = (1, 2, 5, 10, 20, 40, 60, 100, 200)
POOLS = (CHUNKS, 2 * CHUNKS, 4 * CHUNKS)
PEER_VENV = common.BENCH / ".peer-llamaindex"
PEER = "LlamaIndex"

Ranked = list[tuple[int, float]]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for line in path.read_text("utf-8").splitlines()[1:]:
        query, doc, score = line.split("\t")
        if int(score) > 0:
            qrels[query][doc] = int(score)
    return dict(qrels)


def ndcg_at(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    gain = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    best = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return gain / best if best else 0.0


def recall_at(ranked: list[str], relevant: dict[str, int], k: int = DEPTH) -> float:
    return len(set(ranked[:k]) & set(relevant)) / len(relevant)


def ranked_documents(sources: list[str]) -> list[str]:
    """Documents in the order of their best chunk, given each ranked chunk's document."""
    return list(dict.fromkeys(sources))[:DEPTH]


def documents_of(chunk_ids: list[int], source_of: dict[int, str]) -> list[str]:
    return ranked_documents([source_of[c] for c in chunk_ids])


def score(runs: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> tuple[float, float]:
    ndcg = [ndcg_at(runs[q], qrels[q]) for q in qrels]
    recall = [recall_at(runs[q], qrels[q]) for q in qrels]
    return sum(ndcg) / len(ndcg), sum(recall) / len(recall)


def load(args: Any) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, Any], dict[str, Any]]:
    """The corpus, the queries, and the test and train judgements (cut on a slice)."""
    folder = common.data_file(args, "scifact/corpus.jsonl").parent
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").open(encoding="utf-8")]
    queries = {
        row["_id"]: row["text"]
        for row in map(json.loads, (folder / "queries.jsonl").open(encoding="utf-8"))
    }
    test = read_qrels(folder / "qrels" / "test.tsv")
    train = read_qrels(folder / "qrels" / "train.tsv")
    if args.limit is not None:
        test = dict(list(test.items())[: args.limit])
        wanted = {d for rel in test.values() for d in rel}
        others = [row for row in corpus if row["_id"] not in wanted][: max(len(wanted), 200)]
        corpus = [row for row in corpus if row["_id"] in wanted] + others
        train = {}
    print(
        f"data: BEIR SciFact ({folder}), {len(corpus)} documents, {len(test)} test queries"
        + (f", {len(train)} train queries for tuning" if train else "")
    )
    return corpus, queries, test, train


# -- tuning on the train queries ---------------------------------------------------------


class FusionGrid:
    """The train queries' lexical and dense lists as flat arrays, so that one fusion setting
    scores every query at once: each list cut to the candidates and fused as
    tether.retrieval.search fuses them, then nDCG@10 over documents in the order of their
    best chunk, by (-fused score, chunk id) as the fused list and documents_of order them."""

    def __init__(
        self,
        lists: Mapping[str, Mapping[str, Ranked]],
        source_of: dict[int, str],
        qrels: dict[str, dict[str, int]],
    ) -> None:
        import numpy as np

        self.queries = list(qrels)
        self.lists = lists
        # one row per (query, chunk): its document's group, chunk id, ranks and scores
        rows: list[tuple[int, int, float, float, float, float, int]] = []
        cells: list[tuple[int, int]] = []  # (query, document) of each group
        gains: list[float] = []
        for qi, q in enumerate(self.queries):
            entries: dict[int, list[float]] = {}
            for at, name in ((0, "lexical"), (2, "dense")):
                for rank, (chunk_id, value) in enumerate(lists[q][name], start=1):
                    entries.setdefault(chunk_id, [0.0] * 4)[at : at + 2] = [rank, value]
            group: dict[str, int] = {}
            for chunk_id, entry in entries.items():
                doc = source_of[chunk_id]
                if doc not in group:
                    group[doc] = len(cells)
                    cells.append((qi, len(group) - 1))
                    gains.append(qrels[q].get(doc, 0))
                rows.append((group[doc], chunk_id, *entry, qi))  # type: ignore[arg-type]
        table = np.asarray(rows, dtype=np.float64)
        table = table[np.lexsort((table[:, 1], table[:, 0]))]  # by group, then chunk id
        self.group = table[:, 0].astype(np.int64)
        self.chunk = table[:, 1]
        self.ranks = {"lexical": table[:, 2], "dense": table[:, 4]}
        self.values = {"lexical": table[:, 3], "dense": table[:, 5]}
        self.query = table[:, 6].astype(np.int64)
        self.starts = np.flatnonzero(np.r_[True, np.diff(self.group) != 0])
        self.cells = tuple(np.asarray(cells).T)  # where each group's figures go in a matrix
        self.gains = np.zeros((len(self.queries), max(j for _, j in cells) + 1))
        self.gains[self.cells] = gains
        ideal = [sorted(qrels[q].values(), reverse=True)[:10] for q in self.queries]
        self.ideal = np.asarray([sum(g / math.log2(i + 2) for i, g in enumerate(r)) for r in ideal])

    def ndcg(self, fusion: str, pool: int, rrf_k: int, lexical: float) -> float:
        """Mean nDCG@10 over the queries of one setting."""
        import numpy as np

        fused = self.fused(fusion, pool, rrf_k, lexical)
        best = np.maximum.reduceat(fused, self.starts)
        # a document's place is its best chunk's: the lowest chunk id among equal bests
        first = np.where(fused == best[self.group], self.chunk, np.inf)
        score = np.full(self.gains.shape, -np.inf)
        score[self.cells] = best
        chunk = np.full(self.gains.shape, np.inf)
        chunk[self.cells] = np.minimum.reduceat(first, self.starts)
        # the 32 best by score, then those in (-score, chunk id) order: exact unless more
        # than 22 documents tie with the tenth
        wide = min(32, score.shape[1])
        near = np.argpartition(-score, wide - 1, axis=1)[:, :wide]
        near_score = np.take_along_axis(score, near, axis=1)
        near_chunk = np.take_along_axis(chunk, near, axis=1)
        order = np.lexsort((near_chunk, -near_score), axis=1)[:, :10]
        top = np.take_along_axis(near, order, axis=1)
        found = np.take_along_axis(score, top, axis=1) > -np.inf
        gains = np.take_along_axis(self.gains, top, axis=1) * found
        dcg = (gains / np.log2(np.arange(2, top.shape[1] + 2))).sum(axis=1)
        return float(np.mean(dcg / self.ideal))

    def fused(self, fusion: str, pool: int, rrf_k: int, lexical: float) -> Any:
        """Each row's fused score (-inf where neither cut list has the chunk)."""
        import numpy as np

        fused = np.zeros(len(self.group))
        present = np.zeros(len(self.group), dtype=bool)
        # the same arithmetic, in the same order, as search.rrf and search.weighted
        for name, weight in (("lexical", lexical), ("dense", round(1 - lexical, 2))):
            rank = self.ranks[name]
            kept = (rank >= 1) & (rank <= pool)
            present |= kept
            if fusion == "rrf":
                part = weight / (rrf_k + np.maximum(rank, 1))
            else:
                low, span = self._scale(name, pool)
                spread = span > 0
                scaled = np.where(spread, (self.values[name] - low) / np.where(spread, span, 1), 1)
                part = weight * scaled
            fused += np.where(kept, part, 0.0)
        fused[~present] = -np.inf
        return fused

    def _scale(self, name: str, pool: int) -> tuple[Any, Any]:
        """Each row's list minimum and span over that list's first ``pool`` chunks."""
        import numpy as np

        lows, spans = [], []
        for q in self.queries:
            values = [value for _, value in self.lists[q][name][:pool]] or [0.0]
            lows.append(min(values))
            spans.append(max(values) - min(values))
        return np.asarray(lows)[self.query], np.asarray(spans)[self.query]


def tune(
    lists: Mapping[str, Mapping[str, Ranked]],
    source_of: dict[int, str],
    qrels: dict[str, dict[str, int]],
) -> dict[str, Any]:
    """The hybrid setting with the best train nDCG@10 over the whole grid (the first best,
    in grid order, where two tie), and its train nDCG@10 through tether's own fuse."""
    from tether.retrieval.search import fuse

    started = time.perf_counter()
    grid = FusionGrid(lists, source_of, qrels)
    settings = [("rrf", pool, k) for pool in POOLS for k in RRF_KS]
    settings += [("weighted", pool, 60) for pool in POOLS]
    best: tuple[float, str, int, int, float] = (-1.0, "rrf", CHUNKS, 60, 0.5)
    for fusion, pool, rrf_k in settings:
        for w in LEXICAL_WEIGHTS:
            ndcg = grid.ndcg(fusion, pool, rrf_k, w)
            if ndcg > best[0]:
                best = (ndcg, fusion, pool, rrf_k, w)
    ndcg, fusion, pool, rrf_k, w = best
    weights = {"lexical": w, "dense": round(1 - w, 2)}
    runs = {}
    for q in qrels:
        cut = {name: ranked[:pool] for name, ranked in lists[q].items()}
        fused = fuse(cut, fusion, weights, rrf_k)  # type: ignore[arg-type]
        runs[q] = documents_of([chunk_id for chunk_id, _ in fused], source_of)
    return {
        "fusion": fusion,
        "lexical_weight": w,
        "rrf_k": rrf_k if fusion == "rrf" else None,
        "candidates": pool,
        "train_ndcg10": round(score(runs, qrels)[0], 4),
        "train_ndcg10_grid": round(ndcg, 4),
        "settings_tried": len(settings) * len(LEXICAL_WEIGHTS),
        "tuning_s": round(time.perf_counter() - started, 1),
    }


def tuned_label(tuned: dict[str, Any]) -> str:
    fusion = tuned["fusion"] + (f" k={tuned['rrf_k']}" if tuned["fusion"] == "rrf" else "")
    return (
        f"{fusion}, lexical weight {tuned['lexical_weight']}, "
        f"{tuned['candidates']} candidates (train)"
    )


# -- the LlamaIndex peer -----------------------------------------------------------------


def peer_requirements() -> list[str]:
    return [LLAMAINDEX, *(f"{name}=={metadata.version(name)}" for name in SAME_AS_TETHER)]


def peer_python() -> tuple[Path | None, str]:
    """bench/.peer-llamaindex's interpreter with the peer's packages (made on first use,
    about a minute), or None and why, where it cannot be made (no package registry)."""
    python = PEER_VENV / "bin" / "python"
    stamp = PEER_VENV / "requirements.txt"
    wanted = "\n".join(peer_requirements()) + "\n"
    if python.exists() and stamp.is_file() and stamp.read_text("utf-8") == wanted:
        return python, ""
    print(f"making {PEER_VENV.relative_to(common.ROOT)} for the peer: {wanted.split()}")
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        install = [str(python), "-m", "pip", "install", "-q", *wanted.split()]
        subprocess.run(install, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        return None, f"its environment could not be made ({exc})"
    stamp.write_text(wanted, "utf-8")
    return python, ""


def run_peer(
    folder: Path, index: Any, documents: list[Any], queries: dict[str, str]
) -> dict[str, Any]:
    """LlamaIndex over ``documents`` with tether's embedder's own file, batch size, threads
    and window, and the index's chunk size; RuntimeError where the peer process fails."""
    from tether.models.embeddings.local import EMBEDDED, _file

    python, why = peer_python()
    if python is None:
        return {"skipped": why}
    spec = EMBEDDED["minilm"]
    backend = index.embedder.backend
    chunking = index.info.chunking
    job = {
        "model": str(_file(spec.weights, spec.install)),
        "tokenizer": str(_file(spec.tokenizer, spec.install)),
        "window": index.embedder.window,
        "threads": getattr(backend, "threads", None),
        "batch_size": backend.batch_size,
        "chunk_size": chunking.size,
        "chunk_overlap": chunking.overlap,
        "top_k": CHUNKS,
        "documents": [{"id": d.source, "title": d.title or "", "text": d.text} for d in documents],
        "queries": queries,
    }
    asked, answered = folder / "peer-job.json", folder / "peer-result.json"
    asked.write_text(json.dumps(job), "utf-8")
    script = common.BENCH / "_llamaindex_peer.py"
    done = subprocess.run([str(python), str(script), str(asked), str(answered)])
    if done.returncode != 0 or not answered.is_file():
        raise RuntimeError(f"the {PEER} peer failed (exit {done.returncode}); see its output above")
    result: dict[str, Any] = json.loads(answered.read_text("utf-8"))
    result["settings"] = {k: v for k, v in job.items() if k not in ("documents", "queries")}
    return result


def peer_rows(run: dict[str, Any]) -> list[Row]:
    """tether's dense and hybrid beside LlamaIndex (the anchor column), and both ingestions."""
    peer, results = run["peer"], run["results"]
    figures = dict(zip(("nDCG@10", "recall@100"), peer["figures"], strict=True))
    rows = []
    for case in ("dense", "hybrid", "hybrid tuned"):
        for i, (metric, theirs) in enumerate(figures.items()):
            if case in results:
                ours = results[case][i]
                rows.append(peer_row(f"{metric} {case}", "", ours, theirs, "", ".3f"))
    ours_s, theirs_s, documents = run["ingest_s"], peer["ingest_s"], run["documents"]
    chunks = f"{documents} documents: {run['stats']['chunks']} chunks, {peer['nodes']} nodes"
    rows.append(peer_row("ingestion time", chunks, ours_s, theirs_s, "s", ".1f"))
    rows.append(
        peer_row("ingestion", "", documents / ours_s, documents / theirs_s, "docs/s", ".2f")
    )
    return rows


def peer_row(case: str, settings: str, ours: float, theirs: float, unit: str, fmt: str) -> Row:
    ratio = ours / theirs if theirs else None
    return Row(case, settings, ours, theirs, unit, ratio, "", None, fmt=fmt)


# -- the run -----------------------------------------------------------------------------


def search_runs(index: Any, queries: dict[str, str], qrels: Any, source_of: Any, **how: Any) -> Any:
    """Each query's documents through index.search, and the mean seconds per query."""
    started = time.perf_counter()
    runs = {
        q: documents_of([h.chunk_id for h in index.search(queries[q], k=CHUNKS, **how)], source_of)
        for q in qrels
    }
    return runs, (time.perf_counter() - started) / len(qrels)


def train_lists(index: Any, queries: dict[str, str], train: Any) -> dict[str, dict[str, Ranked]]:
    """Each train query's lexical and dense lists, as deep as the deepest candidates tried."""
    from tether.retrieval.indexes import MAX_QUERY_TERMS

    deepest = max(POOLS)
    lists = {}
    for q in train:
        words = " ".join(queries[q].split()[:MAX_QUERY_TERMS])
        vector = index.embedder.embed(queries[q])
        lists[q] = {
            "lexical": index.store.lexical(index.info, words, deepest),
            "dense": index.store.dense(index.info, vector, deepest),
        }
    return lists


def measure(args: Any, folder: Path) -> dict[str, Any]:
    """Ingest, run the peer, search the test queries, tune on train and judge once on test."""
    import tether

    corpus, queries, test, train = load(args)
    index = tether.index("scifact")
    documents = [
        tether.Document(source=row["_id"], title=row.get("title") or None, text=row["text"])
        for row in corpus
        if row["text"].strip()
    ]
    started = time.perf_counter()
    report = index.add(documents)
    ingest_s = time.perf_counter() - started
    print(f"ingested: {report.summary()} in {ingest_s:.0f} s")
    peer: dict[str, Any] = {"skipped": "--no-peer"}
    if not args.no_peer:
        peer = run_peer(folder, index, documents, {q: queries[q] for q in test})
        if "ranked" in peer:
            ranked = peer.pop("ranked")
            runs = {q: ranked_documents(ranked[q]) for q in test}
            peer["figures"] = score(runs, test)
            print(f"peer: {peer['nodes']} nodes, ingested in {peer['ingest_s']:.0f} s")
    source_of = dict(
        index.store.db.execute(
            "SELECT c.chunk_id, d.source FROM rag_chunks c JOIN "  # type: ignore[attr-defined]
            "rag_documents d ON d.doc_id = c.doc_id"
        ).fetchall()
    )
    results, timings = {}, {}
    for mode in ("lexical", "dense", "hybrid"):
        runs, timings[mode] = search_runs(
            index, queries, test, source_of, mode=mode, candidates=CHUNKS
        )
        results[mode] = score(runs, test)
    tuned: dict[str, Any] = {}
    if train:
        tuned = tune(train_lists(index, queries, train), source_of, train)
        print(f"tuned on train: {tuned_label(tuned)}, train nDCG@10 {tuned['train_ndcg10']}")
        w = tuned["lexical_weight"]
        how = {
            "fusion": tuned["fusion"],
            "weights": {"lexical": w, "dense": round(1 - w, 2)},
            "rrf_k": tuned["rrf_k"] or 60,
            "candidates": tuned["candidates"],
        }
        runs, timings["hybrid tuned"] = search_runs(
            index, queries, test, source_of, mode="hybrid", **how
        )
        results["hybrid tuned"] = score(runs, test)
    return {
        "results": results,
        "timings": timings,
        "tuned": tuned,
        "peer": peer,
        "ingest_s": ingest_s,
        "documents": len(documents),
        "queries": len(test),
        "stats": index.stats(),
    }


def quality_rows(run: dict[str, Any], judged: bool) -> list[Row]:
    rows = []
    for case, (ndcg, recall) in run["results"].items():
        anchor = ANCHORS.get(case)
        settings = {"hybrid": "rrf k=60, equal weights, 400 candidates"}.get(case, "")
        if case == "hybrid tuned":
            settings = tuned_label(run["tuned"])
        rows.append(
            Row(
                case=f"nDCG@10 {case}",
                settings=settings,
                tether=ndcg,
                anchor=anchor,
                unit="",
                ratio=ndcg / anchor if anchor else None,
                target=f">= {TARGETS[case]}",
                passed=ndcg >= TARGETS[case],
                fmt=".3f",
                extra={
                    "recall@100": round(recall, 4),
                    "query_ms": round(run["timings"][case] * 1000, 1),
                },
                judged=judged,
            )
        )
    return rows


def main() -> int:
    p = common.parser(__doc__ or NAME, runs=1, quick_runs=1)
    p.add_argument("--limit", type=int, default=None, help="the first N test queries (a slice)")
    p.add_argument("--no-peer", action="store_true", help=f"leave out the {PEER} peer")
    args = p.parse_args()
    with common.temp_project() as folder:
        run = measure(args, folder)
    rows = quality_rows(run, judged=not common.smoke(args))
    stats, peer = run["stats"], run["peer"]
    notes = [
        "recall@100: " + ", ".join(f"{c} {r:.3f}" for c, (_, r) in run["results"].items()),
        f"anchors: BM25 {ANCHORS['lexical']} (BEIR paper), "
        f"all-MiniLM-L6-v2 {ANCHORS['dense']} (MTEB)",
        f"index: {stats['documents']} documents, {stats['chunks']} chunks, "
        f"chunking {stats['chunking']}; ingested in {run['ingest_s']:.0f} s",
    ]
    if run["tuned"]:
        t = run["tuned"]
        notes.append(
            f"tuning: {t['settings_tried']} settings on {len(LEXICAL_WEIGHTS)} lexical weights, "
            f"rrf k in {RRF_KS}, candidates in {POOLS}; best on train: {tuned_label(t)}, "
            f"train nDCG@10 {t['train_ndcg10']}; judged once on test"
        )
    common.print_table("retrieval quality, BEIR SciFact test", rows, notes)
    if "figures" in peer:
        extra = peer_rows(run)
        s = peer["settings"]
        common.print_table(
            f"tether against {PEER} (the anchor column), same documents, same run",
            extra,
            [
                f"peer: llama-index-core {peer['versions']['llama-index-core']}, "
                f"SentenceSplitter {s['chunk_size']}/{s['chunk_overlap']} MiniLM tokens, title "
                f"as metadata, top {s['top_k']} nodes, {peer['nodes']} nodes; embed batch "
                f"{s['batch_size']}, threads {s['threads'] or 'onnxruntime default'} (both)",
                f"peer query time {peer['query_s'] / run['queries'] * 1000:.1f} ms a query "
                "(SimpleVectorStore compares every node in Python)",
                "ratios: tether / peer (ingestion time: under 1 means tether is faster)",
            ],
        )
        rows += extra
    else:
        print(f"{PEER} peer left out: {peer['skipped']}\n")
    common.write_result(
        NAME,
        args,
        rows,
        {
            "documents": run["documents"],
            "queries": run["queries"],
            "tuned": run["tuned"],
            "grid": {"lexical_weights": LEXICAL_WEIGHTS, "rrf_k": RRF_KS, "candidates": POOLS},
            "chunking": stats["chunking"],
            "embedder": stats["embedder"],
            "ingest_s": round(run["ingest_s"], 2),
            "peer": {k: v for k, v in peer.items() if k != "figures"},
        },
    )
    return common.finish(args, rows)


if __name__ == "__main__":
    raise SystemExit(main())
