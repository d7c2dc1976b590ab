"""Structured extraction on SROIE receipts with the embedded local model, by strategy.

tether: ``tether.structured.generate(model, prompt, Receipt, strategy=...)`` on
``tether.model("local:smollm2")`` in a temporary project, with ``grammar`` (constrained
decoding, one attempt) and ``repair`` (schema in the system prompt, errors fed back, two
attempts). Anchor: the same model unconstrained, ``model.generate(prompt)`` asking for JSON,
parsed once with ``tether.structured.generate.parse`` (no retries). Every receipt runs all
three back to back (grammar and the baseline swapping places each receipt). Per strategy:
schema-valid rate, exact match per field (normalised), mean latency per receipt, output
tokens/s. Targets: grammar valid rate 100%;
grammar tokens/s >= 0.85 of the unconstrained baseline's. Peer: Instructor in JSON mode on the
llama.cpp server, when ``import instructor`` works in this environment.

    .venv/bin/python bench/structured_extraction.py [--limit N] [--quick] [--threads T]
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import _common as common
from _common import Row

NAME = "structured_extraction"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sroie"
FILE = DATA / "sroie_kie.jsonl"
SPLIT = "all receipts, in file order"
FIELDS = ("company", "date", "address", "total")
OCR_CHARS = 1200  # the OCR text is cut here so prompt + answer fit SmolLM2's 2048 context
QUICK_LIMIT = 20
VALID_TARGET = 1.0
SPEED_TARGET = 0.85
INSTRUCTION = (
    "Extract these fields from the receipt below: company (the shop's name), date, address "
    "and total (the amount paid). Copy each value exactly as printed. Answer with one JSON "
    'object with the keys "company", "date", "address" and "total", all strings.'
)
INSTRUCTOR_SKIP = (
    "`import instructor` fails in this environment, and `pip install --dry-run instructor` "
    "(1.17.0) would downgrade installed packages (openai 3.57.0 -> 3.3.0, jiter 0.19.0 -> "
    "0.14.0, rich 15.0.0 -> 14.3.4; checked 2026-11-25), so it was not installed"
)


class Receipt(BaseModel):
    company: str
    date: str
    address: str
    total: str


@dataclass
class Outcome:
    """One strategy on one receipt."""

    seconds: float
    output_tokens: int
    calls: int
    fields: dict[str, str] | None  # the valid object's fields; None when invalid
    error: str | None = None


@dataclass
class Tally:
    outcomes: list[Outcome] = field(default_factory=list)


# -- data and scoring --------------------------------------------------------------------


def load_receipts(limit: int | None) -> list[dict[str, Any]]:
    with FILE.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return rows if limit is None else rows[:limit]


def prompt_for(receipt: dict[str, Any]) -> str:
    return f"{INSTRUCTION}\n\nReceipt:\n{receipt['ocr_text'][:OCR_CHARS]}"


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


# -- contenders --------------------------------------------------------------------------


def recording_model(inner: Any, log: list[Any]) -> Any:
    """``inner`` wrapped so every Response it gives is kept in ``log`` (for output tokens)."""
    from tether.models.base import Wrapper

    class Recording(Wrapper):
        async def request(self, request: Any) -> Any:
            response = await self.inner.request(request)
            log.append(response)
            return response

    return Recording(inner)


Contender = Callable[[str], Outcome]


def tether_contenders(model: Any, params: dict[str, Any]) -> dict[str, Contender]:
    from tether.errors import TetherError
    from tether.structured import generate
    from tether.structured.generate import parse

    log: list[Any] = []
    recorded = recording_model(model, log)

    def structured(strategy: str, attempts: int) -> Contender:
        def call(prompt: str) -> Outcome:
            log.clear()
            started = time.perf_counter()
            try:
                obj = generate(
                    recorded, prompt, Receipt, strategy=strategy, attempts=attempts, **params
                )
                fields, error = obj.model_dump(), None
            except TetherError as exc:
                fields, error = None, f"{type(exc).__name__}: {str(exc)[:160]}"
            seconds = time.perf_counter() - started
            tokens = sum(r.usage.output_tokens for r in log)
            return Outcome(seconds, tokens, len(log), fields, error)

        return call

    def unconstrained(prompt: str) -> Outcome:
        started = time.perf_counter()
        try:
            response = model.generate(prompt, **params)
        except TetherError as exc:
            seconds = time.perf_counter() - started
            return Outcome(seconds, 0, 1, None, f"{type(exc).__name__}: {str(exc)[:160]}")
        seconds = time.perf_counter() - started
        try:
            fields: dict[str, str] | None = parse(response.text, Receipt).model_dump()
            error = None
        except ValueError as exc:
            fields, error = None, f"{type(exc).__name__}: {str(exc)[:160]}"
        return Outcome(seconds, response.usage.output_tokens, 1, fields, error)

    return {
        "grammar": structured("grammar", 1),
        "repair": structured("repair", 2),
        "unconstrained": unconstrained,
    }


def instructor_contender(base_url: str, params: dict[str, Any]) -> Contender:
    """Instructor in JSON mode on the llama.cpp server; no retries, like the baseline."""
    import instructor
    import openai

    client = instructor.from_openai(
        openai.OpenAI(base_url=base_url, api_key="x", max_retries=0), mode=instructor.Mode.JSON
    )

    def call(prompt: str) -> Outcome:
        started = time.perf_counter()
        try:
            obj, raw = client.chat.completions.create_with_completion(
                model="smollm2",
                response_model=Receipt,
                messages=[{"role": "user", "content": prompt}],
                max_retries=0,
                **params,
            )
        except Exception as exc:  # instructor wraps validation and server errors alike
            seconds = time.perf_counter() - started
            return Outcome(seconds, 0, 1, None, f"{type(exc).__name__}: {str(exc)[:160]}")
        seconds = time.perf_counter() - started
        tokens = raw.usage.completion_tokens if raw.usage else 0
        return Outcome(seconds, tokens, 1, obj.model_dump())

    return call


# -- the run -----------------------------------------------------------------------------


def measure(
    contenders: dict[str, Contender], receipts: list[dict[str, Any]], progress: bool
) -> tuple[dict[str, Tally], dict[str, float]]:
    """Every receipt through every contender back to back."""
    tallies = {name: Tally() for name in contenders}
    warmup = {}
    first = prompt_for(receipts[0])
    for name, call in contenders.items():  # loads the model, builds the grammar
        warmup[name] = call(first).seconds
    # grammar and the baseline send the same prompt, and llama.cpp reuses the cached prefix of
    # the previous prompt: the one that goes second skips prompt processing. They swap places
    # each receipt, so each goes first half the time; the rest (other prompts) follow.
    rest = [name for name in contenders if name not in ("grammar", "unconstrained")]
    orders = [["grammar", "unconstrained", *rest], ["unconstrained", "grammar", *rest]]
    started = time.perf_counter()
    for number, receipt in enumerate(receipts):
        prompt = prompt_for(receipt)
        for name in orders[number % 2]:
            tallies[name].outcomes.append(contenders[name](prompt))
        if progress and (number + 1) % 10 == 0:
            print(
                f"  {number + 1}/{len(receipts)} receipts, {time.perf_counter() - started:.0f} s",
                flush=True,
            )
    return tallies, warmup


def scores(tally: Tally, receipts: list[dict[str, Any]]) -> dict[str, Any]:
    """Valid rate, exact match per field (over all receipts with that gold field; an invalid
    answer counts as a miss), mean latency and output tokens/s (all tokens over all time)."""
    outcomes = tally.outcomes
    valid = sum(o.fields is not None for o in outcomes)
    exact: dict[str, float] = {}
    for name in FIELDS:
        judged = [
            (o, r["gold"][name]) for o, r in zip(outcomes, receipts, strict=True)
            if name in r["gold"]
        ]  # fmt: skip
        hits = sum(o.fields is not None and matches(name, o.fields[name], g) for o, g in judged)
        exact[name] = hits / len(judged) if judged else 0.0
    seconds = [o.seconds for o in outcomes]
    tokens = sum(o.output_tokens for o in outcomes)
    return {
        "valid": valid / len(outcomes),
        "exact": exact,
        "mean_latency_s": sum(seconds) / len(seconds),
        "median_latency_s": common.median(seconds),
        "tokens_per_s": tokens / sum(seconds),
        "output_tokens": tokens,
        "calls": sum(o.calls for o in outcomes),
        "errors": sorted({(o.error or "").split(":")[0] for o in outcomes if o.error}),
    }


def print_strategies(title: str, figures: dict[str, dict[str, Any]]) -> None:
    headers = ["strategy", "valid", *FIELDS, "mean s/receipt", "out tok/s", "calls"]
    cells = [
        [
            name,
            f"{f['valid']:.1%}",
            *(f"{f['exact'][k]:.1%}" for k in FIELDS),
            f"{f['mean_latency_s']:.2f}",
            f"{f['tokens_per_s']:.1f}",
            str(f["calls"]),
        ]
        for name, f in figures.items()
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))


def cached_rate(tally: Tally, parity: int) -> float | None:
    """Output tokens/s over the receipts (index % 2 == parity) where this contender went
    second, its prompt already in llama.cpp's cache: mostly decoding."""
    chosen = [o for number, o in enumerate(tally.outcomes) if number % 2 == parity]
    seconds = sum(o.seconds for o in chosen)
    return sum(o.output_tokens for o in chosen) / seconds if seconds else None


def rows_for(figures: dict[str, dict[str, Any]], settings: str) -> list[Row]:
    base = figures["unconstrained"]
    rows = []
    for name in ("grammar", "repair"):
        f = figures[name]
        valid_target = name == "grammar"
        rows.append(
            Row(
                case=f"{name}: schema-valid rate",
                settings=settings,
                tether=100 * f["valid"],
                anchor=100 * base["valid"],
                unit="%",
                ratio=f["valid"] / base["valid"] if base["valid"] else None,
                target=f"= {VALID_TARGET:.0%}" if valid_target else "-",
                passed=f["valid"] >= VALID_TARGET if valid_target else None,
            )
        )
    for name in ("grammar", "repair"):
        f = figures[name]
        ratio = f["tokens_per_s"] / base["tokens_per_s"]
        speed_target = name == "grammar"
        rows.append(
            Row(
                case=f"{name}: output tokens/s",
                settings=settings,
                tether=f["tokens_per_s"],
                anchor=base["tokens_per_s"],
                unit="tok/s",
                ratio=ratio,
                target=f">= {SPEED_TARGET}" if speed_target else "-",
                passed=ratio >= SPEED_TARGET if speed_target else None,
            )
        )
    cached, cached_base = figures["grammar"]["cached_tokens_per_s"], base["cached_tokens_per_s"]
    rows.append(
        Row(
            case="grammar: output tokens/s, prompt cached",
            settings=settings,
            tether=cached,
            anchor=cached_base,
            unit="tok/s",
            ratio=cached / cached_base if cached and cached_base else None,
            target="-",
            passed=None,
        )
    )
    for name in ("grammar", "repair"):
        f = figures[name]
        rows.append(
            Row(
                case=f"{name}: mean latency per receipt",
                settings=settings,
                tether=f["mean_latency_s"],
                anchor=base["mean_latency_s"],
                unit="s",
                ratio=f["mean_latency_s"] / base["mean_latency_s"],
                target="-",
                passed=None,
                fmt=".2f",
            )
        )
    for name in ("grammar", "repair"):
        for key in FIELDS:
            rows.append(
                Row(
                    case=f"{name}: exact {key}",
                    settings=settings,
                    tether=100 * figures[name]["exact"][key],
                    anchor=100 * base["exact"][key],
                    unit="%",
                    ratio=None,
                    target="-",
                    passed=None,
                )
            )
    return rows


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], runs=1, quick_runs=1)
    p.add_argument(
        "--limit", type=int, default=None, help="first N receipts (default all; --quick: 20)"
    )
    p.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: its own)")
    p.add_argument("--max-tokens", type=int, default=160)
    args = p.parse_args()
    limit = args.limit if args.limit is not None else (QUICK_LIMIT if args.quick else None)
    receipts = load_receipts(limit)
    params = {"max_tokens": args.max_tokens, "temperature": 0.0, "seed": 0}
    started = time.perf_counter()
    print(f"data set: SROIE 2019 key information extraction ({FILE})")
    print(f"split: {SPLIT}; N = {len(receipts)}")

    try:
        import instructor  # noqa: F401

        peer: str | None = None
    except ImportError:
        peer = INSTRUCTOR_SKIP

    env = {"TETHER_LOCAL_THREADS": str(args.threads)} if args.threads else {}
    with common.temp_project(**env) as folder:
        import tether
        from tether.tracing.setup import flush

        model = tether.model("local:smollm2")
        contenders = tether_contenders(model, params)
        with_peer = contextlib_server(peer is None, args.threads)
        with with_peer as base_url:
            if base_url is not None:
                contenders["instructor JSON (peer)"] = instructor_contender(base_url, params)
            tallies, warmup = measure(contenders, receipts, progress=True)
        flush()
        spans = common.stored_spans(folder / ".tether" / "tether.db", "local:smollm2")

    figures = {name: scores(tally, receipts) for name, tally in tallies.items()}
    for name, parity in (("grammar", 1), ("unconstrained", 0)):  # when each went second
        figures[name]["cached_tokens_per_s"] = cached_rate(tallies[name], parity)
    settings = f"N={len(receipts)} max_tokens={args.max_tokens} T=0"
    print_strategies(
        f"{NAME}: SROIE, {SPLIT}, N={len(receipts)}, SmolLM2-135M Q4_1 (local:smollm2)",
        figures,
    )
    rows = rows_for(figures, settings)
    base = figures["unconstrained"]
    notes = [
        "anchor = the unconstrained baseline: model.generate() asking for JSON, parsed once",
        "grammar: strategy='grammar', attempts=1; repair: strategy='repair', attempts=2",
        f"prompt: a fixed instruction + the OCR text cut to its first {OCR_CHARS} characters; "
        f"temperature 0, seed 0, max_tokens {args.max_tokens}",
        "exact match: strip, casefold, collapse whitespace; total compared as a number when "
        "both parse; an invalid answer counts as a miss; the denominator is the receipts with "
        "that gold field",
        "tokens/s = all output tokens / all wall time of the calls (prompt processing "
        "included); latency = the whole generate() call, retries included",
        "errors seen: "
        + "; ".join(f"{n}: {', '.join(f['errors']) or 'none'}" for n, f in figures.items()),
        "prompt cached: only the receipts where that contender went second (its prompt "
        "already in llama.cpp's cache), so mostly decoding; informational",
        f"grammar/unconstrained tokens/s ratio: "
        f"{figures['grammar']['tokens_per_s'] / base['tokens_per_s']:.3f}",
        "peer instructor (JSON mode): "
        + ("run, see the table above" if peer is None else f"not run: {peer}"),
        f"tracing on: {spans} spans stored",
        "order per receipt: grammar and unconstrained swap places (the second reuses the "
        "first's cached prompt prefix), then repair (its own system prompt)",
        "warm-up (first receipt, once each): "
        + ", ".join(f"{n} {s:.1f} s" for n, s in warmup.items()),
        f"wall time of the benchmark: {time.perf_counter() - started:.1f} s",
    ]
    common.print_table(f"{NAME}: tether strategies vs the unconstrained baseline", rows, notes)
    common.write_result(
        NAME,
        args,
        rows,
        settings={
            **params,
            "threads": args.threads,
            "data": str(FILE),
            "split": SPLIT,
            "n": len(receipts),
            "ocr_chars": OCR_CHARS,
            "instruction": INSTRUCTION,
            "peer": "instructor JSON" if peer is None else f"skipped: {peer}",
            "spans": spans,
        },
        samples={
            "figures": figures,
            "warmup_s": warmup,
            "per_receipt": {
                name: [
                    {"id": r["id"], **o.__dict__}
                    for r, o in zip(receipts, tally.outcomes, strict=True)
                ]
                for name, tally in tallies.items()
            },
        },
    )
    return common.finish(args, rows)


def contextlib_server(wanted: bool, threads: int | None) -> Any:
    """The llama.cpp server for the peer, or a stand-in yielding None when it is not run."""
    import contextlib

    if not wanted:
        return contextlib.nullcontext(None)
    return common.llama_server(threads=threads or 2)


if __name__ == "__main__":
    sys.exit(main())
