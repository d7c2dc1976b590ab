"""Receipt extraction with tether.extract on the embedded model: per-field match of company,
date, address and total against SROIE's gold fields (a slice)."""

from __future__ import annotations

import json

from _data import SLICE, data_file
from pydantic import BaseModel

from tether import extract
from tether.evals import Dataset, FieldMatch, JsonValid
from tether.evals.suite import Suite


class Receipt(BaseModel):
    company: str
    date: str
    address: str
    total: str


path = data_file("sroie/sroie_kie.jsonl")
if path is not None:
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()][:SLICE]
    data = Dataset.from_list(
        [{"id": r["id"], "input": r["ocr_text"], "expected": r["gold"]} for r in rows],
        name="sroie",
    )

    def read(text: str) -> Receipt:
        return extract(text, Receipt, model="local:smollm2")

    sroie = Suite("sroie", data, read, [FieldMatch(), JsonValid(Receipt)], concurrency=1)
