"""Routing a bank's customer messages to one of 77 intents with tether.classify on the
embedded model: accuracy, macro-F1, the confusion matrix and the calibration of its
confidence (Banking77 test set, a slice)."""

from __future__ import annotations

import csv
import json

from _data import SLICE, data_file

from tether import classify
from tether.evals import Classification, Dataset
from tether.evals.suite import Suite

path = data_file("banking77/test.csv")
if path is not None:
    labels = json.loads((path.parent / "categories.json").read_text())
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # Every 40th message, so the slice spans the intents rather than the first few.
    picked = rows[::40][:SLICE]
    data = Dataset.from_list(
        [
            {"id": f"t{i}", "input": r["text"], "expected": r["category"]}
            for i, r in enumerate(picked)
        ],
        name="banking77-test",
    )

    def route(text: str) -> object:
        return classify(text, labels, model="local:smollm2")

    banking77 = Suite("banking77", data, route, [Classification()], concurrency=1)
