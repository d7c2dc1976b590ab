"""Retrieval quality on BEIR SciFact: nDCG@10 and recall@100 of tether's lexical (BM25),
dense and hybrid search, beside the published anchors.

The corpus (5,183 abstracts) goes into a tether index on the embedded store with the
embedded embedder (local:minilm); each document is scored by its best chunk. Hybrid runs
as shipped (reciprocal rank fusion, equal weights) and with fusion weights tuned on the
*train* queries (qrels/train.tsv) only, then judged once on the 300 test queries. Anchors:
BM25 0.665 (BEIR paper), all-MiniLM-L6-v2 0.645 (MTEB); targets BM25 >= 0.68, dense >=
0.645, hybrid >= 0.72, tuned hybrid >= 0.73.

    .venv/bin/python bench/retrieval_quality.py [--limit N] [--strict]

``--limit N``: the first N test queries over a corpus cut to their relevant documents plus
as many others (the CI slice; no tuning, nothing judged).
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import _common as common
from _common import Row

NAME = "retrieval_quality"
ANCHORS = {"lexical": 0.665, "dense": 0.645}
TARGETS = {"lexical": 0.68, "dense": 0.645, "hybrid": 0.72, "hybrid tuned": 0.73}
DEPTH = 100  # documents ranked per query
CHUNKS = 400  # chunks fetched per query to rank DEPTH documents


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


def documents_of(chunk_ids: list[int], source_of: dict[int, str]) -> list[str]:
    """Documents in the order of their best chunk."""
    return list(dict.fromkeys(source_of[c] for c in chunk_ids))[:DEPTH]


def score(runs: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> tuple[float, float]:
    ndcg = [ndcg_at(runs[q], qrels[q]) for q in qrels]
    recall = [recall_at(runs[q], qrels[q]) for q in qrels]
    return sum(ndcg) / len(ndcg), sum(recall) / len(recall)


def main() -> int:
    p = common.parser(__doc__ or NAME, runs=1, quick_runs=1)
    p.add_argument("--limit", type=int, default=None, help="the first N test queries (a slice)")
    args = p.parse_args()
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

    with common.temp_project():
        import tether
        from tether.retrieval.search import fuse

        index = tether.index("scifact")
        documents = [
            tether.Document(source=row["_id"], title=row.get("title") or None, text=row["text"])
            for row in corpus
            if row["text"].strip()
        ]
        started = time.perf_counter()
        report = index.add(documents)
        ingest_s = time.perf_counter() - started
        print(f"ingested: {report.summary()}")
        stats = index.stats()
        source_of = dict(
            index.store.db.execute(
                "SELECT c.chunk_id, d.source FROM rag_chunks c JOIN "  # type: ignore[attr-defined]
                "rag_documents d ON d.doc_id = c.doc_id"
            ).fetchall()
        )

        def lists(query: str) -> dict[str, list[tuple[int, float]]]:
            vector = index.embedder.embed(query)
            return {
                "lexical": index.store.lexical(index.info, query, CHUNKS),
                "dense": index.store.dense(index.info, vector, CHUNKS),
            }

        results: dict[str, tuple[float, float]] = {}
        timings: dict[str, float] = {}
        for mode in ("lexical", "dense", "hybrid"):
            started = time.perf_counter()
            runs = {
                q: documents_of(
                    [
                        h.chunk_id
                        for h in index.search(queries[q], k=CHUNKS, mode=mode, candidates=CHUNKS)
                    ],
                    source_of,
                )
                for q in test
            }
            timings[mode] = (time.perf_counter() - started) / len(test)
            results[mode] = score(runs, test)

        tuned: dict[str, Any] = {}
        if train:
            cached = {q: lists(queries[q]) for q in train}
            best = (-1.0, "rrf", 0.5)
            for fusion in ("rrf", "weighted"):
                for step in range(11):
                    w = step / 10
                    weights = {"lexical": w, "dense": 1 - w}
                    runs = {
                        q: documents_of([c for c, _ in fuse(cached[q], fusion, weights)], source_of)  # type: ignore[arg-type]
                        for q in train
                    }
                    ndcg = score(runs, train)[0]
                    if ndcg > best[0]:
                        best = (ndcg, fusion, w)
            _, fusion, w = best
            tuned = {"fusion": fusion, "lexical_weight": w, "train_ndcg10": round(best[0], 4)}
            runs = {
                q: documents_of(
                    [
                        h.chunk_id
                        for h in index.search(
                            queries[q],
                            k=CHUNKS,
                            mode="hybrid",
                            candidates=CHUNKS,
                            fusion=fusion,  # type: ignore[arg-type]
                            weights={"lexical": w, "dense": 1 - w},
                        )
                    ],
                    source_of,
                )
                for q in test
            }
            results["hybrid tuned"] = score(runs, test)

    judged = not common.smoke(args)
    rows = []
    for case, (ndcg, recall) in results.items():
        anchor = ANCHORS.get(case)
        settings = {
            "hybrid tuned": f"{tuned.get('fusion')}, lexical weight "
            f"{tuned.get('lexical_weight')} (train)",
            "hybrid": "rrf, equal weights",
        }.get(case, "")
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
                    "query_ms": round(timings.get(case.split()[0], 0) * 1000, 1),
                },
                judged=judged,
            )
        )
    notes = [
        "recall@100: " + ", ".join(f"{c} {r:.3f}" for c, (_, r) in results.items()),
        f"anchors: BM25 {ANCHORS['lexical']} (BEIR paper), "
        f"all-MiniLM-L6-v2 {ANCHORS['dense']} (MTEB)",
        f"index: {stats['documents']} documents, {stats['chunks']} chunks, "
        f"chunking {stats['chunking']}; ingested in {ingest_s:.0f} s",
    ]
    common.print_table("retrieval quality, BEIR SciFact test", rows, notes)
    common.write_result(
        NAME,
        args,
        rows,
        {
            "documents": len(documents),
            "queries": len(test),
            "tuned": tuned,
            "chunking": stats["chunking"],
            "embedder": stats["embedder"],
        },
    )
    return common.finish(args, rows)


if __name__ == "__main__":
    raise SystemExit(main())
