"""Grounded answers on SQuAD 2.0: answer F1 and abstention of tether.ask with the embedded
model, beside abstaining on the retrieval score alone.

Half of the SQuAD 2.0 dev set (16 articles, 6,078 questions, 3,168 of them unanswerable:
written against a paragraph that does not hold the answer). Each paragraph of the judged
articles and of the tuning articles (the next ones in the file) is one tether.Document in
one index on the embedded store (local:minilm, chunked as shipped). Each judged question
goes to ``tether.ask(question, index=index, model=local:smollm2)`` as shipped (hybrid, k=5,
``Grounding()``). Measured:

- answer F1 (SQuAD's token F1 and normalisation, max over the gold answers) on the
  answerable questions: over all of them (an abstention scores 0) and over those answered;
- abstention precision and recall on the unanswerable ones (positive class: abstained);
- the same for the retrieval score alone, no model: abstain when the answer's relevance
  (the top hit's ``relevance()``) is below ``Grounding.min_relevance``, at the shipped
  threshold and at the one that maximises balanced accuracy on the tuning articles' questions
  (never the judged ones); and the trivial baselines, always and never abstaining.

Nothing is judged: there is no published anchor for this set-up. Questions are picked
spread over the paragraphs (each paragraph's first question of a kind, then each one's
second, ...), answerable and unanswerable alternating, so any prefix is balanced.
``--limit N``: the first N questions of the first article, over a corpus of it and one tuning
article (its first 4N questions).

    .venv/bin/python bench/retrieval_abstention.py                 # 5 articles, 150 questions
    .venv/bin/python bench/retrieval_abstention.py --limit 10      # the CI slice, ~75 s
    .venv/bin/python bench/retrieval_abstention.py --articles 14 --per-article 0  # all
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common as common
from _common import Row
from tether.evals.scorers.match import normalize, token_f1

NAME = "retrieval_abstention"
DATA = "squad_v2_dev_half/dev-v2.0.json"
MODEL = "local:smollm2"
ARTICLES = 5  # judged articles, the first in the file
PER_ARTICLE = 15  # questions of each kind (answerable, unanswerable) per judged article
TUNE_ARTICLES = 2  # the next articles: their questions tune the retrieval-only threshold
QUICK_LIMIT = 10
GRID = [step / 100 for step in range(101)]  # thresholds tried on the tuning questions
# llama.cpp's OpenMP threads spin while they wait; on a shared 2-core machine, with another
# process on one core, that cut prompt processing from about 145 to 48 tokens/s (800
# tokens, 2 batch threads), tripling each ask. Waiting passively keeps it at about 143. This
# benchmark's figures are answers, not speed; set OMP_WAIT_POLICY=ACTIVE to time as shipped.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@dataclass
class Question:
    id: str
    article: str
    text: str
    answers: list[str]  # empty: unanswerable

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


# -- SQuAD's scoring: the official evaluate-v2.0.py's, as tether's own scorer computes it ---


def best_f1(prediction: str, answers: Sequence[str]) -> float:
    return max(token_f1(prediction, gold) for gold in answers)


# -- the data --------------------------------------------------------------------------


def spread(article: dict[str, Any], answerable: bool, count: int) -> list[dict[str, Any]]:
    """``count`` questions of one kind (0: all), spread over the paragraphs: each one's
    first, then each one's second, ..., in file order."""
    queues = [
        [q for q in p["qas"] if bool(q["is_impossible"]) != answerable]
        for p in article["paragraphs"]
    ]
    ordered = [q for row in itertools.zip_longest(*queues) for q in row if q is not None]
    return ordered if count <= 0 else ordered[:count]


def questions_of(article: dict[str, Any], per_kind: int) -> list[Question]:
    """Answerable and unanswerable questions alternating, as many of each as there are
    (up to ``per_kind``)."""
    kinds = [spread(article, True, per_kind), spread(article, False, per_kind)]
    picked = [q for pair in itertools.zip_longest(*kinds) for q in pair if q is not None]
    return [
        Question(
            id=q["id"],
            article=article["title"],
            text=q["question"],
            answers=[a["text"] for a in q["answers"]] if not q["is_impossible"] else [],
        )
        for q in picked
    ]


def interleave(groups: Sequence[Sequence[Question]]) -> list[Question]:
    """Article by article in turn, pairs (answerable, unanswerable) at a time, so a prefix
    (``--limit``) is balanced and spans the articles."""
    pairs = [[group[i : i + 2] for i in range(0, len(group), 2)] for group in groups]
    return [q for row in itertools.zip_longest(*pairs) for pair in row if pair for q in pair]


def documents_of(article: dict[str, Any]) -> list[Any]:
    import tether

    title = article["title"]
    return [
        tether.Document(source=f"{title}#{i}", title=title.replace("_", " "), text=p["context"])
        for i, p in enumerate(article["paragraphs"])
    ]


# -- figures ---------------------------------------------------------------------------


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95%); None without samples."""
    if n == 0:
        return None
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(values: Sequence[float], z: float = 1.96) -> tuple[float, float] | None:
    """The normal-approximation 95% interval of a mean, clipped to [0, 1]."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    half = z * statistics.stdev(values) / math.sqrt(len(values))
    return max(0.0, mean - half), min(1.0, mean + half)


@dataclass
class Abstention:
    """How one way of abstaining does on the unanswerable questions."""

    abstained: int  # abstentions, on any question
    correct: int  # abstentions on unanswerable questions
    unanswerable: int
    answerable: int

    @classmethod
    def of(cls, flags: Sequence[bool], answerable: Sequence[bool]) -> Abstention:
        both = list(zip(flags, answerable, strict=True))
        return cls(
            abstained=sum(flags),
            correct=sum(f and not a for f, a in both),
            unanswerable=sum(not a for a in answerable),
            answerable=sum(answerable),
        )

    @property
    def precision(self) -> float | None:
        return self.correct / self.abstained if self.abstained else None

    @property
    def recall(self) -> float | None:
        return self.correct / self.unanswerable if self.unanswerable else None

    @property
    def balanced_accuracy(self) -> float:
        """The mean of recall and the share of answerable questions answered."""
        answered = self.answerable - (self.abstained - self.correct)
        parts = [self.correct / self.unanswerable] if self.unanswerable else []
        parts += [answered / self.answerable] if self.answerable else []
        return statistics.fmean(parts) if parts else 0.0


def tune(relevances: Sequence[float], answerable: Sequence[bool]) -> tuple[float, Abstention]:
    """The threshold (abstain below it) with the best balanced accuracy; ties: the lower."""
    best: tuple[float, Abstention] | None = None
    for threshold in GRID:
        figures = Abstention.of([r < threshold for r in relevances], answerable)
        if best is None or figures.balanced_accuracy > best[1].balanced_accuracy:
            best = (threshold, figures)
    assert best is not None
    return best


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


# -- the run ---------------------------------------------------------------------------


def arguments() -> argparse.Namespace:
    p = common.parser((__doc__ or NAME).splitlines()[0], runs=1, quick_runs=1)
    p.add_argument(
        "--limit", type=int, default=None, help=f"the first N questions (--quick: {QUICK_LIMIT})"
    )
    p.add_argument(
        "--articles", type=int, default=ARTICLES, help=f"judged articles (default {ARTICLES})"
    )
    p.add_argument(
        "--per-article",
        type=int,
        default=PER_ARTICLE,
        help=f"questions of each kind per judged article, 0 for all (default {PER_ARTICLE})",
    )
    p.add_argument(
        "--tune-articles",
        type=int,
        default=TUNE_ARTICLES,
        help=f"the next articles, to tune the retrieval threshold on; 0: none "
        f"(default {TUNE_ARTICLES})",
    )
    args = p.parse_args()
    if args.quick and args.limit is None:
        args.limit = QUICK_LIMIT
    return args


def result_name(args: argparse.Namespace, asked: int) -> str:
    if args.limit is not None:
        return f"{NAME}-first{asked}"
    if (args.articles, args.per_article, args.tune_articles) != (
        ARTICLES,
        PER_ARTICLE,
        TUNE_ARTICLES,
    ):
        return f"{NAME}-{args.articles}articles-{args.per_article or 'all'}each"
    return NAME


def main() -> int:
    args = arguments()
    path = common.data_file(args, DATA)
    articles = json.loads(Path(path).read_text("utf-8"))["data"]
    if args.limit is not None:  # the CI slice: one article of each, to ingest in seconds
        args.articles, args.tune_articles = 1, min(args.tune_articles, 1)
    judged_articles = articles[: args.articles]
    tuning_articles = articles[args.articles : args.articles + args.tune_articles]
    judged = interleave([questions_of(a, args.per_article) for a in judged_articles])
    tuning = [q for a in tuning_articles for q in questions_of(a, 0)]
    if args.limit is not None:
        judged, tuning = judged[: args.limit], tuning[: 4 * args.limit]
    if not judged_articles or not judged:
        raise SystemExit(f"{NAME}: no questions to ask; use --articles 1 or more")
    corpus = [*judged_articles, *tuning_articles]
    paragraphs = sum(len(a["paragraphs"]) for a in corpus)
    print(
        f"data: SQuAD 2.0 dev, half ({path}): corpus {len(corpus)} articles, {paragraphs} "
        f"paragraphs; judged: {len(judged)} questions ({sum(q.answerable for q in judged)} "
        f"answerable) from {', '.join(a['title'] for a in judged_articles)}; tuning: "
        f"{len(tuning)} questions ({sum(q.answerable for q in tuning)} answerable) from "
        f"{', '.join(a['title'] for a in tuning_articles) or 'none'}"
    )

    with common.temp_project():
        import tether
        from tether.retrieval import Grounding
        from tether.retrieval.answer import ABSTAIN
        from tether.testing import FunctionModel

        index = tether.index("squad")
        started = time.perf_counter()
        report = index.add([d for a in corpus for d in documents_of(a)])
        ingest_s = time.perf_counter() - started
        print(f"ingested: {report.summary()}")
        stats = index.stats()
        shipped = Grounding().min_relevance

        # The retrieval score alone: the same ask, with a model that always says the
        # documents do not say, so the relevance is the one tether.ask computes.
        retrieval_only = FunctionModel(lambda request: ABSTAIN, id="function:abstain")
        tuning_relevance = []
        started = time.perf_counter()
        for q in tuning:
            tuning_relevance.append(tether.ask(q.text, index=index, model=retrieval_only).relevance)

        tune_s = time.perf_counter() - started
        chat = tether.model(MODEL)
        started = time.perf_counter()
        chat.generate("Hi", max_tokens=1)
        load_s = time.perf_counter() - started
        samples: dict[str, list[Any]] = {
            k: [] for k in ("answerable", "abstained", "reason", "relevance", "f1", "seconds")
        }
        samples["retrieval_seconds"] = []
        reasons: Counter[str] = Counter()
        contains = []
        relevances = []  # unrounded, for the thresholds
        mismatched = 0  # retrieval alone and the model's ask should see the same relevance
        run_started = time.perf_counter()
        for number, q in enumerate(judged, start=1):
            seconds, alone = common.timed(tether.ask, q.text, index=index, model=retrieval_only)
            samples["retrieval_seconds"].append(round(seconds, 4))
            seconds, answer = common.timed(tether.ask, q.text, index=index, model=chat)
            said = " ".join(s.text for s in answer.sentences if s.supported)
            reason = _reason(answer.reason) if answer.abstained else ""
            mismatched += abs(alone.relevance - answer.relevance) > 1e-6
            relevances.append(answer.relevance)
            reasons[reason or "answered"] += 1
            f1 = best_f1("" if answer.abstained else said, q.answers) if q.answerable else None
            if q.answerable and not answer.abstained:
                contains.append(any(normalize(g) in normalize(said) for g in q.answers))
            for key, value in (
                ("answerable", q.answerable),
                ("abstained", answer.abstained),
                ("reason", reason),
                ("relevance", round(answer.relevance, 4)),
                ("f1", None if f1 is None else round(f1, 4)),
                ("seconds", round(seconds, 3)),
            ):
                samples[key].append(value)
            if number % 25 == 0 or number == len(judged):
                elapsed = time.perf_counter() - run_started
                print(f"  {number}/{len(judged)} asked, {elapsed:.0f} s", flush=True)
        index.close()

    answerable = samples["answerable"]
    model_abst = Abstention.of(samples["abstained"], answerable)
    relevance = relevances
    at_shipped = Abstention.of([r < shipped for r in relevance], answerable)
    tuned_threshold: float | None = None
    tuned_on: Abstention | None = None
    at_tuned: Abstention | None = None
    if tuning:
        tuned_threshold, tuned_on = tune(tuning_relevance, [q.answerable for q in tuning])
        at_tuned = Abstention.of([r < tuned_threshold for r in relevance], answerable)
    always = Abstention.of([True] * len(answerable), answerable)
    never = Abstention.of([False] * len(answerable), answerable)

    f1_all = [f for f in samples["f1"] if f is not None]
    f1_answered = [
        f
        for f, a in zip(samples["f1"], samples["abstained"], strict=True)
        if f is not None and not a
    ]
    # SQuAD 2.0's own figure: an unanswerable question scores 1 when abstained on, else 0.
    squad2 = [
        f if f is not None else float(a)
        for f, a in zip(samples["f1"], samples["abstained"], strict=True)
    ]
    rows = _rows(
        samples, model_abst, at_shipped, at_tuned, tuned_threshold, f1_all, f1_answered, squad2,
        shipped, len(tuning_articles),
    )  # fmt: skip
    asked_by_model = [
        s for s, r in zip(samples["seconds"], samples["reason"], strict=True) if r != "relevance"
    ]
    notes = [
        f"abstention on the {model_abst.unanswerable} unanswerable of {len(answerable)} "
        "questions (positive: abstained): abstained / precision / recall / balanced accuracy",
        *(
            f"  {label:<34} {a.abstained:>4}  {_fmt(a.precision)}  {_fmt(a.recall)}  "
            f"{a.balanced_accuracy:.3f}"
            for label, a in (
                (f"tether.ask ({MODEL})", model_abst),
                (f"relevance < {shipped} (shipped)", at_shipped),
                *(
                    [(f"relevance < {tuned_threshold:.2f} (tuned)", at_tuned)]
                    if at_tuned is not None
                    else []
                ),
                ("always abstain", always),
                ("never abstain", never),
            )
        ),
        "tether.ask's abstentions by reason: "
        + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())),
        "top-hit relevance, median: answerable "
        f"{common.median([r for r, a in zip(relevance, answerable, strict=True) if a]):.3f}, "
        "unanswerable "
        f"{common.median([r for r, a in zip(relevance, answerable, strict=True) if not a]):.3f}"
        if 0 < sum(answerable) < len(answerable)
        else "top-hit relevance: one kind of question only",
        f"answered answerable questions whose answer holds a gold answer (normalised): "
        f"{sum(contains)}/{len(contains)}",
        (
            f"tuned threshold {tuned_threshold:.2f}: best balanced accuracy "
            f"{tuned_on.balanced_accuracy:.3f} on {len(tuning)} tuning questions "
            f"(asked in {tune_s:.0f} s, retrieval alone)"
            if tuned_on is not None and tuned_threshold is not None
            else "tuned threshold: none (--tune-articles 0)"
        ),
        f"seconds per question: tether.ask median {common.median(samples['seconds']):.2f}, "
        f"p90 {common.percentile(samples['seconds'], 90):.2f}; with the model called "
        + (
            f"({len(asked_by_model)}) median {common.median(asked_by_model):.2f}"
            if asked_by_model
            else "(none)"
        )
        + f"; retrieval alone median {common.median(samples['retrieval_seconds']) * 1000:.0f} ms"
        + f" (its relevance differed from the model's ask on {mismatched} questions)",
        f"index: {stats['documents']} documents, {stats['chunks']} chunks, chunking "
        f"{stats['chunking']}, {stats['embedder']}; ingested in {ingest_s:.0f} s; model "
        f"loaded in {load_s:.1f} s",
    ]
    common.print_table(
        f"{NAME}: SQuAD 2.0 dev (half), {len(judged)} questions, tether.ask with {MODEL}",
        rows,
        notes,
    )
    common.write_result(
        result_name(args, len(judged)),
        args,
        rows,
        {
            "model": MODEL,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "articles": [a["title"] for a in judged_articles],
            "tuning_articles": [a["title"] for a in tuning_articles],
            "per_article": args.per_article,
            "limit": args.limit,
            "questions": len(judged),
            "answerable": model_abst.answerable,
            "tuning_questions": len(tuning),
            "paragraphs": paragraphs,
            "chunks": stats["chunks"],
            "chunking": stats["chunking"],
            "embedder": stats["embedder"],
            "grounding": Grounding().model_dump(),
            "ask": {"k": 5, "mode": "hybrid"},
            "min_relevance_tuned": tuned_threshold,
            "tuning_objective": "balanced accuracy of abstaining on unanswerable questions",
            "ingest_s": round(ingest_s, 2),
            "model_load_s": round(load_s, 2),
            "tuning_s": round(tune_s, 2),
            "abstentions_by_reason": dict(reasons),
        },
        {
            **samples,
            "ids": [q.id for q in judged],
            "tuning_relevance": [round(r, 4) for r in tuning_relevance],
            "tuning_answerable": [q.answerable for q in tuning],
        },
    )
    return common.finish(args, rows)


def _reason(text: str | None) -> str:
    """A short name for why tether.ask abstained (its reason is a sentence)."""
    text = text or ""
    for key, short in (
        ("min_relevance", "relevance"),
        ("model found no answer", "model"),
        ("no sentence", "unsupported"),
    ):
        if key in text:
            return short
    return "other"


def _rows(
    samples: dict[str, list[Any]],
    model: Abstention,
    at_shipped: Abstention,
    at_tuned: Abstention | None,
    tuned: float | None,
    f1_all: list[float],
    f1_answered: list[float],
    squad2: list[float],
    shipped: float,
    tune_articles: int,
) -> list[Row]:
    def row(case: str, settings: str, value: float | None, anchor: float | None, **kw: Any) -> Row:
        return Row(
            case=case,
            settings=settings,
            tether=value,
            anchor=anchor,
            unit=kw.pop("unit", ""),
            ratio=value / anchor if value is not None and anchor else None,
            target="none",
            passed=None,
            fmt=kw.pop("fmt", ".3f"),
            judged=False,
            **kw,
        )

    def mean(values: list[float]) -> float | None:
        return statistics.fmean(values) if values else None

    rows = [
        row(
            "answer F1, answerable (abstain = 0)",
            f"{len(f1_all)} questions; anchor: none",
            mean(f1_all),
            None,
            interval=mean_interval(f1_all),
        ),
        row(
            "answer F1, answered answerable",
            f"{len(f1_answered)} questions; anchor: none",
            mean(f1_answered),
            None,
            interval=mean_interval(f1_answered),
        ),
        row(
            "SQuAD 2.0 F1, all questions",
            "unanswerable: 1 if abstained; anchor: always abstain",
            mean(squad2),
            mean([0.0 if a else 1.0 for a in samples["answerable"]]),
            interval=mean_interval(squad2),
        ),
    ]
    anchors = [(f"relevance < {shipped} (shipped)", at_shipped)]
    if at_tuned is not None and tuned is not None:
        anchors.append(
            (f"relevance < {tuned:.2f} (tuned, {tune_articles} other articles)", at_tuned)
        )
    for label, anchor in anchors:
        rows += [
            row(
                "abstention precision",
                f"anchor: {label}",
                model.precision,
                anchor.precision,
                interval=wilson(model.correct, model.abstained),
                extra={"anchor_interval": wilson(anchor.correct, anchor.abstained)},
            ),
            row(
                "abstention recall",
                f"anchor: {label}",
                model.recall,
                anchor.recall,
                interval=wilson(model.correct, model.unanswerable),
                extra={"anchor_interval": wilson(anchor.correct, anchor.unanswerable)},
            ),
        ]
    rows.append(
        row(
            "seconds per question",
            "median; anchor: the retrieval alone",
            common.median(samples["seconds"]),
            common.median(samples["retrieval_seconds"]),
            unit="s",
            fmt=".2f",
            extra={"p90": round(common.percentile(samples["seconds"], 90), 3)},
        )
    )
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
