"""Grounded question answering over SQuAD 2.0 paragraphs with tether.ask on the embedded
model: token F1 on the answerable questions and whether it abstains on the unanswerable ones
(the paragraphs of the slice's article are the index)."""

from __future__ import annotations

import json
import threading

from _data import SLICE, data_file

import tether
from tether.evals import Dataset, Sample, Score, scorer
from tether.evals.scorers.match import token_f1
from tether.evals.suite import Suite

path = data_file("squad_v2_dev_half/dev-v2.0.json")
if path is not None:
    article = json.loads(path.read_text(encoding="utf-8"))["data"][0]
    rows = []
    for number, paragraph in enumerate(article["paragraphs"]):
        for qa in paragraph["qas"]:
            answers = [a["text"] for a in qa["answers"]]
            rows.append(
                {
                    "id": qa["id"],
                    "input": qa["question"],
                    "expected": answers or None,
                    "category": "answerable" if answers else "unanswerable",
                    "paragraph": number,
                }
            )
    # Answerable and unanswerable in turn, so any slice holds both.
    answerable = [r for r in rows if r["expected"]]
    unanswerable = [r for r in rows if not r["expected"]]
    mixed = [r for pair in zip(answerable, unanswerable, strict=False) for r in pair]
    data = Dataset.from_list(mixed[:SLICE], name=f"squad-{article['title']}")
    _lock = threading.Lock()
    _index: list[tether.Index] = []

    def index() -> tether.Index:
        with _lock:  # built once per process, on first use
            if not _index:
                made = tether.index("squad-eval")
                made.add(
                    [
                        tether.Document(
                            source=f"{article['title']}#{n}",
                            title=article["title"],
                            text=p["context"],
                        )
                        for n, p in enumerate(article["paragraphs"])
                    ]
                )
                _index.append(made)
            return _index[0]

    def answer(question: str) -> dict[str, object]:
        found = tether.ask(question, index=index(), model="local:smollm2")
        said = " ".join(s.text for s in found.sentences if s.supported)
        return {"text": said, "abstained": found.abstained}

    @scorer
    def squad_f1(output: dict[str, object], sample: Sample) -> Score:
        """SQuAD 2.0's F1: token F1 on an answerable question, 1 for abstaining on an
        unanswerable one."""
        if not sample.targets:
            return Score.of(bool(output["abstained"]), "unanswerable")
        best = max(token_f1(str(output["text"]), str(t)) for t in sample.targets)
        return Score.of(best, f"F1 {best:.2f}")

    @scorer
    def abstention(output: dict[str, object], sample: Sample) -> bool:
        """Right to abstain exactly when the article does not hold the answer."""
        return bool(output["abstained"]) == (not sample.targets)

    squad = Suite("squad", data, answer, [squad_f1, abstention], concurrency=1)
