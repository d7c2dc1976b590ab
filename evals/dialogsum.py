"""Dialogue summaries on the embedded model: ROUGE-L against the reference summary and a
rubric judge (the same small model, so read its bias report before its grades). DialogSum
dev, a slice; the data set is CC BY-NC-SA 4.0."""

from __future__ import annotations

import json

from _data import SLICE, data_file

import tether
from tether.evals import Dataset, RougeL
from tether.evals.judge import RubricJudge
from tether.evals.suite import Suite

path = data_file("dialogsum/dialogsum.dev.jsonl")
if path is not None:
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()][:SLICE]
    data = Dataset.from_list(
        [
            {
                "id": r["fname"],
                "input": r["dialogue"],
                "expected": r["summary"],
                "category": r["topic"],
            }
            for r in rows
        ],
        name="dialogsum-dev",
    )
    model = tether.model("local:smollm2")

    def summarize(dialogue: str) -> str:
        prompt = f"Summarize this dialogue in one or two sentences.\n\n{dialogue}"
        return model.generate(prompt, max_tokens=80, temperature=0.0).text

    judge = RubricJudge(
        "local:smollm2",
        "A good summary says who talks about what and how it ends, in one or two sentences.",
        reference=True,
    )
    dialogsum = Suite("dialogsum", data, summarize, [RougeL(), judge], concurrency=1)
