"""BM25 over a large index's chunks from postings in files beside the database.

FTS5 answers an OR query by scoring every chunk that holds any of its words, and sorting:
fine for thousands of chunks, most of a second at a million, where a query's common words
each match most of the index. From ``approximate_from`` chunks on, the store answers from
this index instead: the FTS5 table's own postings (its tokens, read through fts5vocab, so
the two never disagree on a word) with each posting's BM25 term weight computed once. A
query scores its rarest words in full, then stops reading a word's postings as soon as the
words left could not lift a chunk it has not seen into the top k (MaxScore), and only looks
up those words for the chunks that could still make it. The scores are FTS5's bm25() (k1
1.2, b 0.75, the same IDF with its floor), the ranking the same top k.

Like the vector file, the files are a cache of the database, rebuilt whenever their
recorded generation is not the index's current one.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.retrieval.stores.vectors import atomic

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

K1, B = 1.2, 0.75  # FTS5's bm25() constants
IDF_FLOOR = 1e-6  # FTS5's IDF for a word in more than half the rows
KIND = "bm25-postings-1"
GROUP = 4_000_000  # occurrences turned into postings at a time while reading
ARRAYS = ("ids", "docs", "weights", "offsets", "counts", "ceilings")


class Postings:
    """An index's postings as arrays: for term t, ``docs[offsets[t]:offsets[t + 1]]`` are
    the positions (into ``ids``, the chunk ids in order) of the chunks holding it, in order,
    and ``weights`` the same slice's BM25 term weights before IDF; ``counts[t]`` is how many
    chunks hold it and ``ceilings[t]`` its largest weight."""

    def __init__(self, terms: dict[str, int], arrays: dict[str, Any], rows: int) -> None:
        self.terms = terms
        self.rows = rows
        self.ids: npt.NDArray[np.int64] = arrays["ids"]
        self.docs: npt.NDArray[np.int32] = arrays["docs"]
        self.weights: npt.NDArray[np.float32] = arrays["weights"]
        self.offsets: npt.NDArray[np.int64] = arrays["offsets"]
        self.counts: npt.NDArray[np.int64] = arrays["counts"]
        self.ceilings: npt.NDArray[np.float32] = arrays["ceilings"]

    @classmethod
    def read(cls, db: sqlite3.Connection, table: str) -> Postings:
        """Every posting of FTS5 table ``table``, in one read transaction on ``db``. The
        vocabulary says how many occurrences and postings each term has, so every array is
        made at its final size and filled term group by term group: a million chunks of 48
        words take about 0.6 GiB, not three copies of every occurrence."""
        import numpy as np

        vocab = f"temp.{table}_row"
        instances = f"temp.{table}_instance"
        for name, kind in ((vocab, "row"), (instances, "instance")):
            db.execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {name} USING fts5vocab(main, {table}, {kind})"
            )
        db.execute("BEGIN")
        try:
            ids = np.fromiter(
                (r[0] for r in db.execute(f"SELECT rowid FROM {table} ORDER BY rowid")), np.int64
            )
            rows = db.execute(f"SELECT term, doc, cnt FROM {vocab}").fetchall()
            counts = np.array([r[1] for r in rows], dtype=np.int64)
            occurring = np.array([r[2] for r in rows], dtype=np.int64)
            # Every occurrence of every term, by term then chunk: a chunk's repeats of a word
            # are consecutive, so its term frequency is the length of the run.
            places = np.empty(int(occurring.sum()), dtype=np.int32)
            cursor, filled = db.execute(f"SELECT doc FROM {instances}"), 0
            while batch := cursor.fetchmany(65_536):
                if filled + len(batch) > len(places):
                    raise RuntimeError(f"{table} changed while read; search again")
                chunk_ids = np.fromiter((r[0] for r in batch), np.int64, len(batch))
                places[filled : filled + len(batch)] = np.searchsorted(ids, chunk_ids)
                filled += len(batch)
        finally:
            db.execute("COMMIT")
        if filled != len(places):
            raise RuntimeError(f"{table} changed while read; search again")
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        docs = np.empty(int(offsets[-1]), dtype=np.int32)
        weights = np.empty(int(offsets[-1]), dtype=np.float32)
        lengths = np.bincount(places, minlength=len(ids)).astype(np.float32)
        average = max(float(lengths.sum()) / max(len(ids), 1), 1e-9)
        starts = np.concatenate([[0], np.cumsum(occurring)]).astype(np.int64)
        first = 0
        while first < len(rows):
            last = int(np.searchsorted(starts, starts[first] + GROUP, side="right")) - 1
            last = max(last, first + 1)
            part = places[starts[first] : starts[last]]
            new = np.ones(len(part), dtype=bool)
            new[1:] = part[1:] != part[:-1]
            new[starts[first:last] - starts[first]] = True
            runs = np.flatnonzero(new)
            if len(runs) != offsets[last] - offsets[first]:
                raise RuntimeError(f"{table}: its vocabulary and postings disagree; rebuild it")
            held = part[runs]
            tf = np.diff(np.append(runs, len(part))).astype(np.float32)
            norm = K1 * (1 - B + B * lengths[held] / average)
            docs[offsets[first] : offsets[last]] = held
            weights[offsets[first] : offsets[last]] = tf * (K1 + 1) / (tf + norm)
            first = last
        del places
        if rows:
            ceilings = np.maximum.reduceat(weights, offsets[:-1]).astype(np.float32)
        else:
            ceilings = np.zeros(0, dtype=np.float32)
        arrays = {
            "ids": ids,
            "docs": docs,
            "weights": weights,
            "offsets": offsets,
            "counts": counts,
            "ceilings": ceilings,
        }
        return cls({r[0]: t for t, r in enumerate(rows)}, arrays, len(ids))

    def search(
        self,
        terms: Sequence[str],
        k: int,
        allowed: npt.NDArray[np.bool_] | None = None,
    ) -> list[tuple[int, float]]:
        """The ``k`` best chunks for the query's ``terms`` (FTS5 tokens, one per query
        word: a token two words share counts twice, as in bm25()), best first."""
        import numpy as np

        plan = []
        for term, times in Counter(t for t in terms if t in self.terms).items():
            t = self.terms[term]
            held = int(self.counts[t])
            idf = max(math.log((self.rows - held + 0.5) / (held + 0.5)), IDF_FLOOR)
            factor = times * idf
            plan.append((factor * float(self.ceilings[t]), factor, t))
        if not plan or k <= 0:
            return []
        plan.sort(key=lambda step: (-step[0], step[2]))
        scores = np.zeros(self.rows, dtype=np.float32)
        seen = np.zeros(self.rows, dtype=bool)
        found: list[npt.NDArray[np.int32]] = []
        left = sum(step[0] for step in plan)
        floor, done = -1.0, 0
        for ceiling, factor, t in plan:
            if floor > left:
                break  # a chunk holding none of the words read so far cannot make the top k
            docs, weights = self._slice(t)
            if allowed is not None:
                keep = allowed[docs]
                docs, weights = docs[keep], weights[keep]
            scores[docs] += factor * weights
            fresh = docs[~seen[docs]]
            seen[fresh] = True
            found.append(fresh)
            left -= ceiling
            done += 1
            floor = _kth(scores, found, k)
        candidates = np.concatenate(found) if found else np.zeros(0, dtype=np.int32)
        if done < len(plan):
            # The rest of the words only for the chunks they could still lift into the top
            # k, fewer after each: what is left to add shrinks, the k-th score only grows.
            candidates = np.sort(candidates[scores[candidates] + left >= floor])
            for ceiling, factor, t in plan[done:]:
                docs, weights = self._slice(t)
                if len(docs) and len(candidates):
                    at = np.minimum(np.searchsorted(docs, candidates), len(docs) - 1)
                    hit = docs[at] == candidates
                    scores[candidates[hit]] += factor * weights[at[hit]]
                left -= ceiling
                floor = max(floor, _kth(scores, [candidates], k))
                candidates = candidates[scores[candidates] + left >= floor]
        if not len(candidates):
            return []
        ranked = scores[candidates]
        k = min(k, len(candidates))
        best = np.argpartition(-ranked, k - 1)[:k]
        chunk_ids = self.ids[candidates[best]]
        order = np.lexsort((chunk_ids, -ranked[best]))
        return [(int(chunk_ids[i]), float(ranked[best][i])) for i in order]

    def _slice(self, t: int) -> tuple[Any, Any]:
        start, end = int(self.offsets[t]), int(self.offsets[t + 1])
        return self.docs[start:end], self.weights[start:end]

    def positions(self, chunk_ids: Any) -> npt.NDArray[np.bool_]:
        """A mask over this index's chunks: those in ``chunk_ids``."""
        import numpy as np

        return np.isin(self.ids, chunk_ids)


def _kth(scores: Any, found: list[Any], k: int) -> float:
    """The k-th best score among the chunks found so far (-1 while fewer than k)."""
    import numpy as np

    total = sum(len(part) for part in found)
    if total < k:
        return -1.0
    values = scores[np.concatenate(found)]
    return float(np.partition(values, total - k)[total - k])


class LexicalIndex:
    """An index's postings, from memory, from their files, or read anew from FTS5; and
    the tokenizer that turns a query's words into the postings' terms."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.name = name
        self.generation = -1
        self.postings: Postings | None = None
        self._lock = threading.Lock()
        self._tokenizer: sqlite3.Connection | None = None

    def _path(self, suffix: str) -> Path:
        return self.folder / f"{self.name}{suffix}"

    def ensure(
        self, generation: int, large: Callable[[], bool], read: Callable[[], Postings]
    ) -> Postings | None:
        """The postings current for ``generation``, or None while the index is not
        ``large`` (FTS5 answers then)."""
        with self._lock:
            if self.generation != generation:
                postings = self._load(generation)
                if postings is None and large():
                    self._write(read(), generation)
                    # Mapped from the files just written, the arrays read leave memory: a
                    # query then keeps only the pages of its own words' postings resident.
                    postings = self._load(generation)
                self.postings, self.generation = postings, generation
            return self.postings

    def _load(self, generation: int) -> Postings | None:
        import numpy as np

        try:
            meta = json.loads(self._path(".json").read_text("utf-8"))
            if meta.get("generation") != generation or meta.get("kind") != KIND:
                return None
            terms = json.loads(self._path(".terms.json").read_text("utf-8"))
            # Mapped, not read: a query touches only its words' postings. Plain arrays over
            # the mapping, since slicing a np.memmap costs more than the search's arithmetic.
            arrays = {
                n: np.load(self._path(f".{n}.npy"), mmap_mode="r").view(np.ndarray) for n in ARRAYS
            }
            return Postings({term: t for t, term in enumerate(terms)}, arrays, meta["rows"])
        except (OSError, ValueError, KeyError):
            return None  # missing, partial or from another version: read anew

    def _write(self, postings: Postings, generation: int) -> None:
        """The arrays first, the metadata last, as the vector file does."""
        import numpy as np

        self.folder.mkdir(parents=True, exist_ok=True)
        for name in ARRAYS:
            array: Any = getattr(postings, name)

            def save(path: Path, array: Any = array) -> None:
                np.save(path, array)

            atomic(self._path(f".{name}.npy"), save)
        terms = sorted(postings.terms, key=postings.terms.__getitem__)
        atomic(self._path(".terms.json"), lambda p: p.write_text(json.dumps(terms), "utf-8"))
        meta = {"generation": generation, "kind": KIND, "rows": postings.rows}
        atomic(self._path(".json"), lambda p: p.write_text(json.dumps(meta), "utf-8"))

    def tokens(self, words: Sequence[str], tokenize: str) -> list[str]:
        """The query's (distinct) words as FTS5's tokenizer reads them (stemmed, accents
        folded), one token a word, by FTS5 itself on a private in-memory table."""
        with self._lock:
            if self._tokenizer is None:
                db = sqlite3.connect(":memory:", check_same_thread=False)
                db.execute(f"CREATE VIRTUAL TABLE q USING fts5(body, tokenize='{tokenize}')")
                db.execute("CREATE VIRTUAL TABLE qv USING fts5vocab(q, instance)")
                self._tokenizer = db
            db = self._tokenizer
            db.execute("DELETE FROM q")
            db.execute("INSERT INTO q (rowid, body) VALUES (1, ?)", (" ".join(words),))
            return [row[0] for row in db.execute("SELECT term FROM qv")]

    def drop(self) -> None:
        with self._lock:
            for suffix in (".json", ".terms.json", *(f".{n}.npy" for n in ARRAYS)):
                self._path(suffix).unlink(missing_ok=True)
            self.generation, self.postings = -1, None
