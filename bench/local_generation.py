"""Output tokens/s of the embedded local model through tether against raw llama-cpp-python,
and what tether's stream path costs per token.

tether: ``tether.model("local:smollm2").generate(...)``, ``.stream(...)`` and ``.astream(...)``,
tracing on (the default) into a temporary project. Anchor: ``llama_cpp.Llama(...)
.create_chat_completion`` (plain and ``stream=True``) on the same GGUF, prompt, settings and
thread count, in the same process and on the same OS thread as tether's model: llama.cpp's
OpenMP team belongs to the thread that calls it, and two teams in one process steal each
other's cores (both halve). Each run times the contenders back to back, order rotating, after
one warm-up each; tokens/s is completion tokens over the wall time of the whole call. The
figure is the median over runs of tether/raw, with a 95% confidence interval (the
distribution-free interval for a median). Target: tether/raw >= 0.97, judged on the interval:
PASS when all of it is at or above, MISS when all of it is below, UNDECIDED otherwise.

The stream path alone: the chunks of one real raw stream replayed, with no model behind them,
through tether's whole stack (a stand-in for the provider's chunk source) and through the raw
loop over them; the time per chunk is the slope between a short and a long replay, so per-call
work cancels out. Target: tether adds at most 1% of a token's time at the raw stream's speed.

    .venv/bin/python bench/local_generation.py [--runs N] [--quick] [--threads T]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

import _common as common
from _common import Row

NAME = "local_generation"
PROMPT = "Write a short story about a lighthouse keeper."
TARGET = 0.97
PATH_TARGET = 0.01  # of one token's time at the raw stream's speed
PATH_SIZES = (64, 1024)  # chunks in the short and the long replay
PATH_RUNS = 20  # replays are cheap: at least this many runs, whatever --runs says

Contender = Callable[[], tuple[int, str]]  # a call answering (completion tokens, text)


def raw_contenders(llama: Any, params: dict[str, Any], thread: Any) -> dict[str, Contender]:
    """Raw calls, each run whole on ``thread`` (tether's model thread; see the docstring)."""
    messages = [{"role": "user", "content": PROMPT}]

    def generate() -> tuple[int, str]:
        result = llama.create_chat_completion(messages=messages, **params)
        return result["usage"]["completion_tokens"], result["choices"][0]["message"]["content"]

    def stream() -> tuple[int, str]:
        # llama-cpp-python reports no usage in streams; it sends one chunk per token.
        tokens, text = 0, []
        for chunk in llama.create_chat_completion(messages=messages, stream=True, **params):
            if content := chunk["choices"][0]["delta"].get("content"):
                tokens += 1
                text.append(content)
        return tokens, "".join(text)

    return {
        "raw generate": lambda: thread.submit(generate).result(),
        "raw stream": lambda: thread.submit(stream).result(),
    }


def tether_contenders(
    model: Any, params: dict[str, Any], loop: asyncio.AbstractEventLoop
) -> dict[str, Contender]:
    """generate and stream (the sync twins), and astream run on ``loop`` as an async app would."""
    from tether.types import ResponseEvent

    def generate() -> tuple[int, str]:
        response = model.generate(PROMPT, **params)
        return response.usage.output_tokens, response.message.text

    def stream() -> tuple[int, str]:
        final = None
        for event in model.stream(PROMPT, **params):
            if isinstance(event, ResponseEvent):
                final = event.response
        assert final is not None, "the stream ended without a Response"
        return final.usage.output_tokens, final.message.text

    async def consume() -> tuple[int, str]:
        final = None
        async for event in model.astream(PROMPT, **params):
            if isinstance(event, ResponseEvent):
                final = event.response
        assert final is not None, "the stream ended without a Response"
        return final.usage.output_tokens, final.message.text

    def astream() -> tuple[int, str]:
        return loop.run_until_complete(consume())

    return {"tether generate": generate, "tether stream": stream, "tether astream": astream}


def measure(
    contenders: dict[str, Contender], groups: list[tuple[str, ...]], runs: int
) -> tuple[dict[str, list[float]], dict[str, list[int]], dict[str, str], dict[str, float]]:
    """Time each group (an anchor and its tether twins) back to back, rotating the order."""
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    tokens: dict[str, list[int]] = {name: [] for name in contenders}
    texts: dict[str, str] = {}
    warmup: dict[str, float] = {}
    for name, call in contenders.items():  # warm-up: loads, first-call caches
        warmup[name], (_, texts[name]) = common.timed(call)
    for run in range(runs):
        for group in groups:
            shift = run % len(group)
            for name in group[shift:] + group[:shift]:
                seconds, (count, text) = common.timed(contenders[name])
                rates[name].append(count / seconds)
                tokens[name].append(count)
                texts[name] = text
    return rates, tokens, texts, warmup


# -- the stream path alone ---------------------------------------------------------------


def content_of(chunk: dict[str, Any]) -> str | None:
    return chunk["choices"][0]["delta"].get("content")


def replayed(chunks: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """``n`` content chunks of a real stream, cycled, between its opening and closing chunks."""
    content = [c for c in chunks if content_of(c)]
    head = [c for c in chunks[:1] if not content_of(c)]
    tail = [c for c in chunks[-1:] if c["choices"][0].get("finish_reason")]
    return head + [content[i % len(content)] for i in range(n)] + tail


def path_contenders(
    model: Any, thread: Any, loop: asyncio.AbstractEventLoop, replay: list[Any]
) -> dict[str, Callable[[], Any]]:
    """The raw loop over ``replay[0]``'s chunks, and tether's stream and astream over them.

    ``model`` is a tether.model() of its own, whose provider reads its chunks from the replay
    instead of llama.cpp: every layer above the chunk source (the thread hand-over, the chunk
    reader, the accumulator, tracing, cassette, retry, the sync twin) runs as in a real call.
    """
    from tether.models.base import ProviderModel
    from tether.types import Usage

    bottom = model
    while not isinstance(bottom, ProviderModel):
        bottom = bottom.inner

    def chunks_from_replay(loaded: Any, request: Any) -> Callable[[], Any]:
        def chunks_then_usage() -> Any:
            yield from replay[0]
            yield Usage(input_tokens=1, output_tokens=len(replay[0]))

        return chunks_then_usage

    bottom.provider._chunks = chunks_from_replay  # LocalProvider's one source of chunks

    def raw_loop() -> tuple[int, str]:  # the raw stream contender's loop, on the model's thread
        tokens, text = 0, []
        for chunk in replay[0]:
            if content := chunk["choices"][0]["delta"].get("content"):
                tokens += 1
                text.append(content)
        return tokens, "".join(text)

    def stream() -> None:
        for _ in model.stream(PROMPT):
            pass

    async def consume() -> None:
        async for _ in model.astream(PROMPT):
            pass

    return {
        "raw": lambda: thread.submit(raw_loop).result(),
        "tether stream": stream,
        "tether astream": lambda: loop.run_until_complete(consume()),
    }


def measure_path(
    calls: dict[str, Callable[[], Any]], chunks: list[Any], replay: list[Any], runs: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per run and contender: seconds per chunk (the slope between the two replay sizes) and
    the seconds of the short replay less its chunks' share (the per-call part)."""
    short, long = (replayed(chunks, n) for n in PATH_SIZES)
    per_chunk: dict[str, list[float]] = {name: [] for name in calls}
    per_call: dict[str, list[float]] = {name: [] for name in calls}
    replay[0] = short
    for call in calls.values():
        call()  # warm-up
    names = list(calls)
    for run in range(runs):
        seconds: dict[tuple[str, int], float] = {}
        for size, chunk_list in zip(PATH_SIZES, (short, long), strict=True):
            replay[0] = chunk_list
            shift = run % len(names)
            for name in names[shift:] + names[:shift]:
                seconds[name, size] = common.timed(calls[name])[0]
        for name in names:
            slope = (seconds[name, PATH_SIZES[1]] - seconds[name, PATH_SIZES[0]]) / (
                PATH_SIZES[1] - PATH_SIZES[0]
            )
            per_chunk[name].append(slope)
            per_call[name].append(seconds[name, PATH_SIZES[0]] - PATH_SIZES[0] * slope)
    return per_chunk, per_call


def path_rows(per_chunk: dict[str, list[float]], raw_rate: float) -> list[Row]:
    """What tether's stream path adds per chunk (one token), against 1% of a token's time."""
    limit_us = PATH_TARGET * 1e6 / raw_rate
    rows = []
    for twin in ("stream", "astream"):
        mine, raw = per_chunk[f"tether {twin}"], per_chunk["raw"]
        added = [(m - r) * 1e6 for m, r in zip(mine, raw, strict=True)]
        interval = common.median_interval(added)
        passed = common.verdict_of(interval, limit_us, higher_is_better=False)
        rows.append(
            Row(
                case=f"{twin}: stream path per token (replayed chunks, no model)",
                settings=f"{PATH_SIZES[0]} vs {PATH_SIZES[1]} chunks, n={len(added)}",
                tether=common.median(mine) * 1e6,
                anchor=common.median(raw) * 1e6,
                unit="µs/token",
                ratio=None,  # the raw loop's own cost per chunk is all but nil: read "added"
                target=f"added <= {limit_us:.0f} µs (1% of a token)",
                passed=passed,
                added=common.median(added),
                interval=interval,
                undecided=passed is None,
                extra={"added_us": added, "limit_us": limit_us},
            )
        )
    return rows


def ratio_rows(
    rates: dict[str, list[float]], groups: list[tuple[str, ...]], settings: str, quick: bool
) -> list[Row]:
    """tether/raw per twin: the median of per-run ratios (each run times the pair back to
    back, so its ratio cancels the load drifting between runs) and its 95% interval."""
    rows = []
    for anchor, mine in [(group[0], mine) for group in groups for mine in group[1:]]:
        ratios = [m / a for m, a in zip(rates[mine], rates[anchor], strict=True)]
        interval = common.median_interval(ratios)
        passed = common.verdict_of(interval, TARGET, higher_is_better=True)
        rows.append(
            Row(
                case=f"{mine.split()[1]}: {PROMPT[:28]}...",
                settings=settings,
                tether=common.median(rates[mine]),
                anchor=common.median(rates[anchor]),
                unit="tok/s",
                ratio=common.median(ratios),
                target=f">= {TARGET}",
                passed=passed,
                interval=interval,
                undecided=passed is None,
                judged=not quick,  # a few short runs cannot decide a 3% margin
                extra={
                    "anchor": anchor,
                    "tether": mine,
                    "ratio_of_medians": common.median(rates[mine]) / common.median(rates[anchor]),
                },
            )
        )
    return rows


def run_all(args: argparse.Namespace, runs: int, params: dict[str, Any]) -> dict[str, Any]:
    """The model runs, then the stream path over replayed chunks, in one temporary project."""
    env = {"TETHER_LOCAL_THREADS": str(args.threads)} if args.threads else {}
    with common.temp_project(**env) as folder:
        import llama_cpp

        import tether
        from tether.models.local import LocalProvider
        from tether.models.local_files import resolve_path
        from tether.models.local_llama import load
        from tether.tracing.setup import flush

        path = resolve_path("smollm2")
        thread = load(path, 2048, args.threads).thread  # the one tether.model() will use
        load_s, llama = common.timed(
            lambda: thread.submit(
                llama_cpp.Llama,
                model_path=str(path),
                n_ctx=2048,
                n_threads=args.threads,
                verbose=False,
            ).result()
        )
        loop = asyncio.new_event_loop()
        # Raw gets the sampling tether gives the embedded model where the caller sets none
        # (its repetition penalty above all), so both write the same text.
        raw_params = {**LocalProvider("smollm2").text_defaults(), **params}
        contenders = {
            **raw_contenders(llama, raw_params, thread),
            **tether_contenders(tether.model("local:smollm2"), params, loop),
        }
        messages = [{"role": "user", "content": PROMPT}]
        chunks = thread.submit(
            lambda: list(llama.create_chat_completion(messages=messages, stream=True, **params))
        ).result()
        replay: list[Any] = [[]]
        calls = path_contenders(tether.model("local:smollm2"), thread, loop, replay)
        try:
            rates, tokens, texts, warmup = measure(contenders, GROUPS, runs)
            per_chunk, per_call = measure_path(calls, chunks, replay, max(runs, PATH_RUNS))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
        flush()
        spans = common.stored_spans(folder / ".tether" / "tether.db", "local:smollm2")
    return {
        "rates": rates,
        "tokens": tokens,
        "same_text": len(set(texts.values())) == 1,
        "warmup": warmup,
        "load_s": load_s,
        "spans": spans,
        "per_chunk": per_chunk,
        "per_call": per_call,
    }


GROUPS = [("raw generate", "tether generate"), ("raw stream", "tether stream", "tether astream")]


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], runs=30, quick_runs=3)
    p.add_argument(
        "--threads", type=int, default=None, help="llama.cpp threads for both (default: its own)"
    )
    p.add_argument(
        "--max-tokens", type=int, default=None, help="answer length (default 512; --quick 128)"
    )
    args = p.parse_args()
    runs = common.runs_of(args)
    max_tokens = args.max_tokens or (128 if args.quick else 512)
    params = {"max_tokens": max_tokens, "temperature": 0.0, "seed": 0}
    started = time.perf_counter()
    run = run_all(args, runs, params)
    rates, per_chunk = run["rates"], run["per_chunk"]

    settings = f"max_tokens={max_tokens} T=0 seed=0 threads={args.threads or 'default'}"
    rows = ratio_rows(rates, GROUPS, settings, args.quick)
    raw_rate = common.median(rates["raw stream"])
    rows += path_rows(per_chunk, raw_rate)
    per_call_ms = {
        name: common.median([(t - r) * 1e3 for t, r in zip(v, run["per_call"]["raw"], strict=True)])
        for name, v in run["per_call"].items()
        if name != "raw"
    }
    notes = [
        f"{runs} runs after one warm-up each; each run times raw and its tether twins back to "
        "back (order rotating); ratio = median over runs of tether/raw, 95% CI: the "
        "distribution-free interval of that median; verdict on the interval",
        "stream = the sync twin model.stream(); astream = model.astream() on the caller's loop",
        "ratio of medians: "
        + ", ".join(f"{r.extra['tether']} {r.extra['ratio_of_medians']:.3f}" for r in rows[:3]),
        f"completion tokens per call: { {k: sorted(set(v)) for k, v in run['tokens'].items()} }",
        f"same text from raw and tether: {'yes' if run['same_text'] else 'NO'}",
        f"stream path: the {len(per_chunk['raw'])} runs' chunks of one real raw stream replayed "
        f"with no model; a token at the raw stream's median {raw_rate:.0f} tok/s takes "
        f"{1e6 / raw_rate:.0f} µs; per call (the replays' intercept) tether adds "
        + ", ".join(f"{name} {ms:+.2f} ms" for name, ms in per_call_ms.items()),
        f"tracing on: {run['spans']} spans stored for "
        f"{3 * (runs + 1) + 2 * (2 * len(per_chunk['raw']) + 1)} tether calls",
        f"raw Llama load {run['load_s']:.1f} s; warm-up calls (tether's loads its model): "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in run["warmup"].items()),
        f"wall time of the benchmark: {time.perf_counter() - started:.1f} s",
    ]
    common.print_table(f"{NAME}: tether vs raw llama-cpp-python (SmolLM2-135M Q4_1)", rows, notes)
    common.write_result(
        NAME,
        args,
        rows,
        settings={**params, "threads": args.threads, "prompt": PROMPT, "spans": run["spans"]},
        samples={
            "tokens_per_s": rates,
            "completion_tokens": run["tokens"],
            "same_text": run["same_text"],
            "warmup_s": run["warmup"],
            "raw_load_s": run["load_s"],
            "path_s_per_chunk": per_chunk,
            "path_s_per_call": run["per_call"],
        },
    )
    return common.finish(args, rows)


if __name__ == "__main__":
    sys.exit(main())
