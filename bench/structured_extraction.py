"""Structured extraction on SROIE receipts with the embedded local model, by strategy.

tether: ``tether.structured.generate(model, prompt, Receipt, strategy=...)`` on
``tether.model("local:smollm2")`` in a temporary project, with ``grammar`` (constrained
decoding, one attempt) and ``repair`` (schema in the system prompt, errors fed back, two
attempts). Anchor: the same model unconstrained, ``model.generate(prompt)`` asking for JSON,
parsed once with ``tether.structured.generate.parse`` (no retries). Peer: Instructor against
llama.cpp's OpenAI-compatible server on the same GGUF and thread count, from its own virtual
environment (bench/.peer), in its best mode there (TOOLS: a forced tool call, which the server
constrains to the schema) and, for information, its other modes (JSON, MD_JSON, JSON_SCHEMA).
Every receipt runs every contender back to back. Per strategy: schema-valid rate, exact match
per field (normalised), mean latency per receipt, output tokens/s.
Targets: grammar valid rate 100%; grammar decoding tokens/s >= 0.85 of the unconstrained
baseline's.

    .venv/bin/python bench/structured_extraction.py [--limit N] [--quick] [--workers W]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import _common as common
from _common import Row
from _instructor_peer import INSTRUCTOR, Receipt
from _peer_process import (
    PEER,
    PEER_MODES,
    SCHEMA_BOUND,
    Contender,
    PeerProcess,
    peer_name,
    peer_python,
)
from _sroie import FIELDS, Outcome, hits_of, load_receipts, read_back, scores, stored

NAME = "structured_extraction"
DATA_FILE = "sroie/sroie_kie.jsonl"  # under the data folder (--data, $TETHER_DATA)
SPLIT = "all receipts, in file order"
OCR_CHARS = 1200  # the OCR text is cut here so prompt + answer fit SmolLM2's 2048 context
QUICK_LIMIT = 3
VALID_TARGET = 1.0
SPEED_TARGET = 0.85
PLAIN = "grammar (plain Receipt)"
# tether contenders --skip may leave out, by short name (grammar and the baseline anchor rows)
OPTIONAL = {"repair": "repair", "plain": PLAIN}
INSTRUCTION = (
    "Extract these fields from the receipt below: company (the shop's name), date, address "
    "and total (the amount paid). Copy each value exactly as printed. Answer with one JSON "
    'object with the keys "company", "date", "address" and "total", all strings.'
)


class PlainReceipt(BaseModel):
    """SROIE's four fields as a user first writes them: plain strings, no bounds. Under a
    grammar, tether's default bounds and runaway guard keep the answer finite."""

    company: str
    date: str
    address: str
    total: str


# -- data and scoring --------------------------------------------------------------------


# -- contenders --------------------------------------------------------------------------


def prompt_for(receipt: dict[str, Any]) -> str:
    return f"{INSTRUCTION}\n\nReceipt:\n{receipt['ocr_text'][:OCR_CHARS]}"


def recording_model(inner: Any, log: list[Any]) -> Any:
    """``inner`` wrapped so every Response it gives is kept in ``log`` (for output tokens)."""
    from tether.models.base import Wrapper

    class Recording(Wrapper):
        async def request(self, request: Any) -> Any:
            response = await self.inner.request(request)
            log.append(response)
            return response

    return Recording(inner)


def tether_contenders(
    model: Any, params: dict[str, Any], grammar_max_tokens: int | None, skip: list[str]
) -> dict[str, Contender]:
    from tether.errors import TetherError
    from tether.structured import generate
    from tether.structured.generate import parse

    log: list[Any] = []
    recorded = recording_model(model, log)

    def structured(
        strategy: str, attempts: int, params: dict[str, Any], output: Any = Receipt
    ) -> Contender:
        def call(prompt: str) -> Outcome:
            log.clear()
            started = time.perf_counter()
            try:
                obj = generate(
                    recorded, prompt, output, strategy=strategy, attempts=attempts, **params
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

    # Every string in Receipt has a max_length, so the grammar itself ends the answer; a cap
    # below the longest answer the schema allows could only cut a valid one short. The plain
    # Receipt leaves its strings unbounded: tether's default bounds and guard end them.
    grammar = {**params, "max_tokens": grammar_max_tokens}
    contenders = {
        "grammar": structured("grammar", 1, grammar),
        PLAIN: structured("grammar", 1, grammar, PlainReceipt),
        "repair": structured("repair", 2, params),
        "unconstrained": unconstrained,
    }
    left_out = {OPTIONAL[name] for name in skip}
    return {name: call for name, call in contenders.items() if name not in left_out}


# -- the run -----------------------------------------------------------------------------


def order_for(number: int, names: list[str]) -> tuple[list[str], set[str]]:
    """Receipt ``number``'s contenders in order, and those whose prompt is then cached.

    llama.cpp reuses the cached prefix of the previous prompt on the same server, so of two
    contenders whose prompts share a long prefix the second skips most prompt processing:
    grammar and the baseline (the same prompt, in tether's model) and the peer's JSON and
    MD_JSON modes (the same system prompt, on the server). Each pair swaps places each
    receipt, so each goes first half the time; the plain Receipt (the same prompt again)
    always follows the first pair, its prompt cached; the rest have prompts of their own.
    """
    pairs = [["grammar", "unconstrained"], [peer_name("JSON"), peer_name("MD_JSON")]]
    pairs = [pair if number % 2 == 0 else pair[::-1] for pair in pairs]
    head = pairs[0] + [name for name in (PLAIN,) if name in names]
    tail = pairs[1] if all(name in names for name in pairs[1]) else []
    rest = [name for name in names if name not in head and name not in tail]
    return head + rest + tail, {*head[1:], *tail[1:]}


def measure(
    contenders: dict[str, Contender], receipts: list[tuple[int, dict[str, Any]]], label: str
) -> tuple[dict[str, list[Outcome]], dict[str, float]]:
    """Every receipt through every contender back to back."""
    outcomes: dict[str, list[Outcome]] = {name: [] for name in contenders}
    warmup = {}
    first = prompt_for(receipts[0][1])
    for name, call in contenders.items():  # loads the model, builds the grammar
        warmup[name] = call(first).seconds
    started = time.perf_counter()
    for done, (number, receipt) in enumerate(receipts, start=1):
        prompt = prompt_for(receipt)
        order, cached = order_for(number, list(contenders))
        for name in order:
            outcome = contenders[name](prompt)
            outcome.cached = name in cached
            outcome.hits = hits_of(outcome, receipt)
            outcomes[name].append(outcome)
        if done % 10 == 0:
            elapsed = time.perf_counter() - started
            print(f"  {label}{done}/{len(receipts)} receipts, {elapsed:.0f} s", flush=True)
    return outcomes, warmup


def run_here(
    receipts: list[tuple[int, dict[str, Any]]],
    params: dict[str, Any],
    grammar_max_tokens: int | None,
    threads: int,
    peer_modes: list[str],
    skip: list[str],
    label: str = "",
) -> dict[str, Any]:
    """The contenders over ``receipts`` in this process: outcomes, warm-up and spans stored.
    tether's model and the peer's server get the same thread count."""
    with common.temp_project(TETHER_LOCAL_THREADS=str(threads)) as folder:
        import tether
        from tether.tracing.setup import flush

        contenders = tether_contenders(
            tether.model("local:smollm2"), params, grammar_max_tokens, skip
        )
        if peer_modes:
            with common.llama_server(threads=threads) as base_url:
                peer = PeerProcess(base_url)
                for mode in peer_modes:
                    # each mode capped as the tether strategy it compares with
                    capped = mode in SCHEMA_BOUND
                    cap = {**params, "max_tokens": grammar_max_tokens} if capped else params
                    contenders[peer_name(mode)] = peer.contender(mode, cap)
                try:
                    outcomes, warmup = measure(contenders, receipts, label)
                finally:
                    peer.close()
        else:
            outcomes, warmup = measure(contenders, receipts, label)
        flush()
        spans = common.stored_spans(folder / ".tether" / "tether.db", "local:smollm2")
    return {
        "numbers": [number for number, _ in receipts],
        "outcomes": {name: [asdict(o) for o in found] for name, found in outcomes.items()},
        "warmup": warmup,
        "spans": spans,
    }


def run_workers(
    workers: int, receipts: list[dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    """The receipts dealt round-robin to ``workers`` child processes of this script, each with
    its own model, server and peer, merged back into file order."""
    folder = Path(tempfile.mkdtemp(prefix="sroie-workers-"))
    children = []
    for shard in range(workers):
        out = folder / f"{shard}.json"
        command = [
            sys.executable,
            __file__,
            "--shard",
            f"{shard}/{workers}",
            "--shard-out",
            str(out),
        ]
        command += ["--limit", str(len(receipts)), "--max-tokens", str(args.max_tokens)]
        if args.data is not None:
            command += ["--data", str(args.data)]
        if args.grammar_max_tokens is not None:
            command += ["--grammar-max-tokens", str(args.grammar_max_tokens)]
        command += ["--threads", str(args.threads or 1), "--peer-modes", ",".join(args.peer_modes)]
        command += ["--skip", ",".join(args.skip)] + (["--no-peer"] if args.no_peer else [])
        children.append((subprocess.Popen(command), out))
    parts = []
    for child, out in children:
        if child.wait() != 0:
            raise SystemExit(f"a worker failed (exit {child.returncode}); see its output above")
        parts.append(json.loads(out.read_text("utf-8")))
    merged: dict[str, Any] = {"outcomes": {}, "warmup": {}, "spans": 0}
    order = sorted(
        (number, part_index, position)
        for part_index, part in enumerate(parts)
        for position, number in enumerate(part["numbers"])
    )
    for name in parts[0]["outcomes"]:
        merged["outcomes"][name] = [
            parts[p]["outcomes"][name][position] for _, p, position in order
        ]
        merged["warmup"][name] = max(part["warmup"][name] for part in parts)
    merged["spans"] = sum(part["spans"] for part in parts)
    return merged


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


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def rows_for(figures: dict[str, dict[str, Any]], settings: str, slice_run: bool) -> list[Row]:
    """tether's strategies against the unconstrained baseline (the peer's rows: peer_rows)."""
    base = figures["unconstrained"]
    others = [name for name in figures if name != "unconstrained" and not name.endswith(PEER)]
    rows = [
        Row(
            case=f"{name}: schema-valid rate",
            settings=settings,
            tether=100 * figures[name]["valid"],
            anchor=100 * base["valid"],
            unit="%",
            ratio=ratio(figures[name]["valid"], base["valid"]),
            target=f"= {VALID_TARGET:.0%}" if name in ("grammar", PLAIN) else "-",
            passed=figures[name]["valid"] >= VALID_TARGET if name in ("grammar", PLAIN) else None,
        )
        for name in others
    ]
    decode = ratio(figures["grammar"]["cached_tokens_per_s"], base["cached_tokens_per_s"])
    rows.append(
        Row(
            case="grammar: decoding tokens/s (prompt cached)",
            settings=settings,
            tether=figures["grammar"]["cached_tokens_per_s"],
            anchor=base["cached_tokens_per_s"],
            unit="tok/s",
            ratio=decode,
            target=f">= {SPEED_TARGET}",
            passed=decode >= SPEED_TARGET if decode is not None else None,
            # a slice times a handful of receipts each: too few to judge a speed by
            judged=not slice_run,
        )
    )
    for case, key, unit, fmt in (
        ("output tokens/s, all time", "tokens_per_s", "tok/s", ".1f"),
        ("mean latency per receipt", "mean_latency_s", "s", ".2f"),
    ):
        for name in others:
            rows.append(
                Row(
                    case=f"{name}: {case}",
                    settings=settings,
                    tether=figures[name][key],
                    anchor=base[key],
                    unit=unit,
                    ratio=ratio(figures[name][key], base[key]),
                    target="-",
                    passed=None,
                    fmt=fmt,
                )
            )
    for name in others:
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


def peer_rows(
    outcomes: dict[str, list[Outcome]], figures: dict[str, dict[str, Any]], settings: str
) -> list[Row]:
    """grammar against each peer mode, the best first (highest valid rate in this run, then
    lowest latency). Speed is compared on the receipts where grammar went first, so that its
    prompt was processed as each peer's is: like for like."""
    peers = [name for name in figures if name.endswith(PEER)]
    peers.sort(key=lambda name: (-figures[name]["valid"], figures[name]["mean_latency_s"]))
    first = [i for i, o in enumerate(outcomes["grammar"]) if not o.cached]

    def speed(name: str) -> tuple[float, float]:
        chosen = [outcomes[name][i] for i in first]
        seconds = sum(o.seconds for o in chosen)
        return seconds / len(chosen), sum(o.output_tokens for o in chosen) / seconds

    grammar = figures["grammar"]
    rows = []
    for rank, name in enumerate(peers):
        label = f"grammar vs {name}{' (best)' if rank == 0 else ''}"
        (g_latency, g_rate), (p_latency, p_rate) = speed("grammar"), speed(name)
        valid = figures[name]["valid"]
        for case, mine, theirs, unit, fmt in (
            ("schema-valid rate", 100 * grammar["valid"], 100 * valid, "%", ".1f"),
            ("mean latency, prompt processed", g_latency, p_latency, "s", ".2f"),
            ("output tokens/s, prompt processed", g_rate, p_rate, "tok/s", ".1f"),
        ):
            rows.append(
                Row(
                    case=f"{label}: {case}",
                    settings=f"{settings}, n={len(first)}" if unit != "%" else settings,
                    tether=mine,
                    anchor=theirs,
                    unit=unit,
                    ratio=ratio(mine, theirs),
                    target="-",
                    passed=None,
                    fmt=fmt,
                )
            )
    return rows


def settings_line(n: int, max_tokens: int, grammar_max_tokens: int | None) -> str:
    grammar = "unset" if grammar_max_tokens is None else grammar_max_tokens
    return f"N={n} max_tokens={max_tokens} (grammar: {grammar}) T=0"


def report(path: Path) -> int:
    """Print the tables of a saved run (bench/results/NAME.json) again, with today's rows."""
    saved = json.loads(path.read_text("utf-8"))
    n, max_tokens = saved["settings"]["n"], saved["settings"]["max_tokens"]
    grammar_max_tokens = saved["settings"].get("grammar_max_tokens", max_tokens)
    outcomes = read_back(saved["samples"]["per_receipt"])
    figures = {name: scores(found) for name, found in outcomes.items()}
    print_strategies(f"{NAME}: SROIE, {SPLIT}, N={n}, from {path} ({saved['at']})", figures)
    settings = settings_line(n, max_tokens, grammar_max_tokens)
    rows = rows_for(figures, settings, saved["settings"]["slice"])
    rows += peer_rows(outcomes, figures, settings)
    notes = [f"measured {saved['at']} at git {saved['git_revision']}; printed again from {path}"]
    common.print_table(f"{NAME}: tether strategies vs the unconstrained baseline", rows, notes)
    return 0


def comma_list(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


def arguments() -> argparse.Namespace:
    p = common.parser(__doc__.splitlines()[0], runs=1, quick_runs=1)
    p.add_argument(
        "--limit",
        type=int,
        default=None,
        help=f"first N receipts (default all; --quick: {QUICK_LIMIT})",
    )
    p.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: its own)")
    p.add_argument(
        "--max-tokens", type=int, default=160, help="cap for repair, unconstrained and the peer"
    )
    p.add_argument(
        "--grammar-max-tokens",
        type=int,
        default=None,
        help="cap for grammar (default none: the schema's bounded strings end its answer)",
    )
    p.add_argument("--workers", type=int, default=1, help="processes sharing the receipts")
    p.add_argument(
        "--peer-modes",
        type=comma_list,
        default=list(PEER_MODES),
        help=f"Instructor modes to run, comma-separated (default {','.join(PEER_MODES)})",
    )
    p.add_argument("--no-peer", action="store_true", help="leave out the Instructor peer")
    p.add_argument(
        "--skip",
        type=comma_list,
        default=[],
        help=f"tether contenders to leave out, comma-separated ({','.join(OPTIONAL)})",
    )
    p.add_argument("--report", type=Path, default=None, help="print a saved result again")
    p.add_argument("--shard", default=None, help=argparse.SUPPRESS)  # I/N, for a worker
    p.add_argument("--shard-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if unknown := [mode for mode in args.peer_modes if mode not in PEER_MODES]:
        p.error(f"unknown --peer-modes {','.join(unknown)}; choose from {','.join(PEER_MODES)}")
    if unknown := [name for name in args.skip if name not in OPTIONAL]:
        p.error(f"cannot --skip {','.join(unknown)}; choose from {','.join(OPTIONAL)}")
    return args


def notes_for(
    args: argparse.Namespace, figures: dict[str, dict[str, Any]], run: dict[str, Any]
) -> list[str]:
    g, base = figures["grammar"], figures["unconstrained"]
    modes = ", ".join(run["peer_modes"]) or "left out (--no-peer)"
    skipped = [OPTIONAL[name] for name in args.skip]
    return [
        "anchor = the unconstrained baseline: model.generate() asking for JSON, parsed once",
        "grammar: strategy='grammar', attempts=1; repair: strategy='repair', attempts=2; "
        f"peer: {INSTRUCTOR} on llama-cpp-python's server, max_retries=0, modes {modes}",
        "Receipt: four strings, max_length company 64, date 16, address 144, total 16 (above "
        "every gold value); plain Receipt: the same four strings with no bounds at all, under "
        "tether's default Bounds (1,000 characters per string, runaway guard on)",
        f"prompt: a fixed instruction + the OCR text cut to its first {OCR_CHARS} characters; "
        f"temperature 0, seed 0, max_tokens {args.max_tokens} for repair, unconstrained and "
        "the peer's JSON and MD_JSON (a small model asked for JSON without a schema's grammar "
        "often runs on until the cap); grammar and the peer's TOOLS and JSON_SCHEMA: "
        + (
            "no cap, as the schema bounds every string, so the grammar ends the answer"
            if args.grammar_max_tokens is None
            else f"max_tokens {args.grammar_max_tokens}"
        ),
        f"llama.cpp threads {run['threads']} for tether's model and the peer's server alike",
        "exact match: strip, casefold, collapse whitespace; total compared as a number when "
        "both parse; an invalid answer counts as a miss; the denominator is the receipts with "
        "that gold field",
        "decoding tokens/s (judged on a full run): output tokens / call time over the "
        "receipts where the contender's prompt was already in llama.cpp's cache (it went second: "
        f"grammar {g['cached_receipts']}, unconstrained {base['cached_receipts']} receipts); "
        "all time: every receipt, prompt processing included, which weighs more on grammar's "
        "shorter answers",
        "grammar vs the peer: speed on the receipts where grammar went first, its prompt "
        "processed as every peer prompt is; the best mode is the one with the highest valid "
        "rate in this run",
        "latency = the whole call, retries included",
        f"left out (--skip): {', '.join(skipped) or 'none'}",
        "errors seen: "
        + "; ".join(f"{n}: {', '.join(f['errors']) or 'none'}" for n, f in figures.items()),
        f"tracing on: {run['spans']} spans stored",
        "order per receipt: grammar and unconstrained swap places (the second reuses the "
        "first's cached prompt), then the plain Receipt (the same prompt, cached), then repair "
        "(its own system prompt), then the peer's TOOLS "
        "and JSON_SCHEMA, then its JSON and MD_JSON, swapping places (one system prompt)",
        "warm-up (first receipt, once each): "
        + ", ".join(f"{n} {s:.1f} s" for n, s in run["warmup"].items()),
    ]


def main() -> int:
    args = arguments()
    if args.report is not None:
        return report(args.report)
    data = common.data_file(args, DATA_FILE)
    limit = args.limit if args.limit is not None else (QUICK_LIMIT if args.quick else None)
    receipts = load_receipts(data, limit)
    params = {"max_tokens": args.max_tokens, "temperature": 0.0, "seed": 0}
    numbered = list(enumerate(receipts))
    peer_modes = [] if args.no_peer else args.peer_modes
    # llama-cpp-python's own default, named, so that the peer's server gets the same
    threads = args.threads or max((os.cpu_count() or 2) // 2, 1)
    if args.shard:  # a worker of --workers: its slice, its samples to a file, no table
        shard, workers = (int(x) for x in args.shard.split("/"))
        part = run_here(
            numbered[shard::workers], params, args.grammar_max_tokens, threads, peer_modes,
            args.skip, f"[{shard}] ",
        )  # fmt: skip
        Path(args.shard_out).write_text(json.dumps(part), "utf-8")
        return 0

    started = time.perf_counter()
    print(f"data set: SROIE 2019 key information extraction ({data})")
    print(f"split: {SPLIT}; N = {len(receipts)}; workers = {args.workers}")
    if peer_modes:
        peer_python()  # made once here, not by each worker at the same time
    if args.workers > 1:
        run = run_workers(args.workers, receipts, args)
        threads = args.threads or 1
    else:
        run = run_here(numbered, params, args.grammar_max_tokens, threads, peer_modes, args.skip)
    run.update(threads=threads, peer_modes=peer_modes)
    outcomes = {name: [Outcome(**o) for o in found] for name, found in run["outcomes"].items()}
    figures = {name: scores(found) for name, found in outcomes.items()}
    settings = settings_line(len(receipts), args.max_tokens, args.grammar_max_tokens)
    print_strategies(
        f"{NAME}: SROIE, {SPLIT}, N={len(receipts)}, SmolLM2-135M Q4_1 (local:smollm2)",
        figures,
    )
    rows = rows_for(figures, settings, limit is not None)
    rows += peer_rows(outcomes, figures, settings)
    notes = notes_for(args, figures, run)
    notes.append(
        f"wall time of the benchmark: {time.perf_counter() - started:.1f} s "
        f"({args.workers} worker process(es))"
    )
    common.print_table(f"{NAME}: tether strategies vs the unconstrained baseline", rows, notes)
    # a slice gets its own file (in bench/results/scratch/): never the full run's result
    common.write_result(
        NAME if limit is None else f"{NAME}-first{len(receipts)}",
        args,
        rows,
        settings={
            **params,
            "grammar_max_tokens": args.grammar_max_tokens,
            "threads": threads,
            "workers": args.workers,
            "data": str(data),
            "split": SPLIT,
            "n": len(receipts),
            "slice": limit is not None,
            "ocr_chars": OCR_CHARS,
            "instruction": INSTRUCTION,
            "peer": INSTRUCTOR if peer_modes else None,
            "peer_modes": peer_modes,
            "skipped": [OPTIONAL[name] for name in args.skip],
            "spans": run["spans"],
        },
        samples={
            "figures": figures,
            "warmup_s": run["warmup"],
            "per_receipt": stored(outcomes, receipts),
        },
    )
    return common.finish(args, rows)


if __name__ == "__main__":
    sys.exit(main())
