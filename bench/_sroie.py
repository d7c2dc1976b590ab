"""SROIE receipts for structured_extraction.py: reading them, scoring the answers, and
keeping the per-receipt outcomes compact in the result file.

Each row of ``sroie/sroie_kie.jsonl`` holds a receipt's OCR text and its gold fields. A
field matches when it is the same text after stripping, case folding and collapsing
whitespace; a total also when both read as the same number.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common as common

FIELDS = ("company", "date", "address", "total")


@dataclass
class Outcome:
    """One contender on one receipt."""

    seconds: float
    output_tokens: int
    calls: int
    fields: dict[str, str] | None  # the valid object's fields; None when invalid
    error: str | None = None
    cached: bool = False  # its prompt was already in llama.cpp's cache (it went second)
    hits: str = ""  # per field of FIELDS: 1 exact match, 0 miss (or invalid), - no gold value


def load_receipts(path: Path, limit: int | None) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return rows if limit is None else rows[:limit]


def normalise(value: str) -> str:
    return " ".join(str(value).split()).casefold()


def amount(value: str) -> float | None:
    """A total as a number: currency marks, spaces and thousands commas dropped."""
    text = re.sub(r"(?i)rm|myr|\$|\s", "", str(value)).replace(",", "")
    try:
        return float(text)
    except ValueError:
        return None


def matches(name: str, got: str, gold: str) -> bool:
    if name == "total":
        a, b = amount(got), amount(gold)
        if a is not None and b is not None:
            return abs(a - b) < 0.005
    return normalise(got) == normalise(gold)


def hits_of(outcome: Outcome, receipt: dict[str, Any]) -> str:
    """Outcome.hits: the answer against the receipt's gold fields (an invalid answer misses)."""
    gold, got = receipt["gold"], outcome.fields
    return "".join(
        "-" if name not in gold else "1" if got and matches(name, got[name], gold[name]) else "0"
        for name in FIELDS
    )


def scores(outcomes: list[Outcome]) -> dict[str, Any]:
    """Valid rate, exact match per field (over all receipts with that gold field; an invalid
    answer counts as a miss), mean latency and output tokens/s (all tokens over all time, and
    over the receipts whose prompt was already cached: decoding alone)."""
    valid = sum(o.fields is not None for o in outcomes)
    exact: dict[str, float] = {}
    for index, name in enumerate(FIELDS):
        judged = [o.hits[index] for o in outcomes if o.hits[index] != "-"]
        exact[name] = judged.count("1") / len(judged) if judged else 0.0
    seconds = [o.seconds for o in outcomes]
    tokens = sum(o.output_tokens for o in outcomes)
    cached = [o for o in outcomes if o.cached]
    cached_seconds = sum(o.seconds for o in cached)
    return {
        "valid": valid / len(outcomes),
        "exact": exact,
        "mean_latency_s": sum(seconds) / len(seconds),
        "median_latency_s": common.median(seconds),
        "tokens_per_s": tokens / sum(seconds),
        "cached_tokens_per_s": (
            sum(o.output_tokens for o in cached) / cached_seconds if cached_seconds else None
        ),
        "cached_receipts": len(cached),
        "output_tokens": tokens,
        "calls": sum(o.calls for o in outcomes),
        "errors": sorted({(o.error or "").split(":")[0] for o in outcomes if o.error}),
    }


def stored(outcomes: dict[str, list[Outcome]], receipts: list[dict[str, Any]]) -> dict[str, Any]:
    """The per-receipt samples as the result file keeps them: a column per measure, the
    hits instead of the answers' text, errors as an index into their kinds (small enough to
    commit for all 626 receipts)."""
    kinds = sorted({o.error.split(":")[0] for found in outcomes.values() for o in found if o.error})
    return {
        "ids": [r["id"] for r in receipts],
        "error_kinds": kinds,
        "contenders": {
            name: {
                "seconds": [round(o.seconds, 3) for o in found],
                "output_tokens": [o.output_tokens for o in found],
                "calls": [o.calls for o in found],
                "valid": [int(o.fields is not None) for o in found],
                "hits": [o.hits for o in found],
                "error": [kinds.index(o.error.split(":")[0]) if o.error else None for o in found],
                "cached": [int(o.cached) for o in found],
            }
            for name, found in outcomes.items()
        },
    }


def read_back(samples: dict[str, Any]) -> dict[str, list[Outcome]]:
    """Outcomes from ``stored`` form (a valid answer's fields read back as {})."""
    kinds = samples["error_kinds"]
    return {
        name: [
            Outcome(
                seconds=seconds,
                output_tokens=tokens,
                calls=calls,
                fields={} if valid else None,
                error=None if error is None else kinds[error],
                cached=bool(cached),
                hits=hits,
            )
            for seconds, tokens, calls, valid, hits, error, cached in zip(
                c["seconds"], c["output_tokens"], c["calls"], c["valid"], c["hits"], c["error"],
                c["cached"], strict=True,
            )
        ]
        for name, c in samples["contenders"].items()
    }  # fmt: skip
