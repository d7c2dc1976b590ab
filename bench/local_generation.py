"""Output tokens/s of the embedded local model through tether against raw llama-cpp-python.

tether: ``tether.model("local:smollm2").generate(...)`` and ``.stream(...)``, tracing on (the
default) into a temporary project. Anchor: ``llama_cpp.Llama(...).create_chat_completion``
(plain and ``stream=True``) on the same GGUF, prompt, settings and thread count, in the same
process and on the same OS thread as tether's model: llama.cpp's OpenMP team belongs to the
thread that calls it, and two teams in one process steal each other's cores (both halve).
Each run alternates the contenders after one warm-up each; tokens/s is completion
tokens over the wall time of the whole call. Target: tether/raw >= 0.97.

    .venv/bin/python bench/local_generation.py [--runs N] [--quick] [--threads T]
"""

from __future__ import annotations

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


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], runs=15, quick_runs=2)
    p.add_argument(
        "--threads", type=int, default=None, help="llama.cpp threads for both (default: its own)"
    )
    p.add_argument("--max-tokens", type=int, default=128)
    args = p.parse_args()
    runs = common.runs_of(args)
    params = {"max_tokens": args.max_tokens, "temperature": 0.0, "seed": 0}
    started = time.perf_counter()

    env = {"TETHER_LOCAL_THREADS": str(args.threads)} if args.threads else {}
    with common.temp_project(**env) as folder:
        import llama_cpp

        import tether
        from tether.models.local import LocalProvider, load, resolve_path
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
        model = tether.model("local:smollm2")
        loop = asyncio.new_event_loop()
        # Raw gets the sampling tether gives the embedded model where the caller sets none
        # (its repetition penalty above all), so both write the same text.
        raw_params = {**LocalProvider("smollm2").text_defaults(), **params}
        contenders = {
            **raw_contenders(llama, raw_params, thread),
            **tether_contenders(model, params, loop),
        }
        groups = [
            ("raw generate", "tether generate"),
            ("raw stream", "tether stream", "tether astream"),
        ]
        try:
            rates, tokens, texts, warmup = measure(contenders, groups, runs)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
        flush()
        spans = common.stored_spans(folder / ".tether" / "tether.db", "local:smollm2")

    settings = f"max_tokens={args.max_tokens} T=0 seed=0 threads={args.threads or 'default'}"
    rows = []
    pairs = [(group[0], mine) for group in groups for mine in group[1:]]
    for anchor, mine in pairs:
        # Each run times the pair back to back, so the per-run ratio cancels the machine's
        # load drifting between runs; the median of those ratios is the figure judged.
        ratio = common.paired_ratio(rates[mine], rates[anchor])
        rows.append(
            Row(
                case=f"{mine.split()[1]}: {PROMPT[:28]}...",
                settings=settings,
                tether=common.median(rates[mine]),
                anchor=common.median(rates[anchor]),
                unit="tok/s",
                ratio=ratio,
                target=f">= {TARGET}",
                passed=ratio >= TARGET,
                extra={
                    "anchor": anchor,
                    "tether": mine,
                    "ratio_of_medians": common.median(rates[mine]) / common.median(rates[anchor]),
                },
            )
        )
    same = len({texts[name] for name in contenders}) == 1
    expected_spans = 3 * (runs + 1)
    notes = [
        f"median of {runs} runs after one warm-up each; each run times raw and its tether "
        "twins back to back (order rotating); ratio = median over runs of tether/raw",
        "stream = the sync twin model.stream(); astream = model.astream() on the caller's loop",
        "ratio of medians: "
        + ", ".join(f"{r.extra['tether']} {r.extra['ratio_of_medians']:.3f}" for r in rows),
        f"completion tokens per call: { {k: sorted(set(v)) for k, v in tokens.items()} }",
        f"same text from raw and tether: {'yes' if same else 'NO'}",
        f"tracing on: {spans} spans stored for {expected_spans} tether calls",
        f"raw Llama load {load_s:.1f} s; warm-up calls (tether's loads its model): "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in warmup.items()),
        f"wall time of the benchmark: {time.perf_counter() - started:.1f} s",
    ]
    common.print_table(f"{NAME}: tether vs raw llama-cpp-python (SmolLM2-135M Q4_1)", rows, notes)
    common.write_result(
        NAME,
        args,
        rows,
        settings={**params, "threads": args.threads, "prompt": PROMPT, "spans": spans},
        samples={
            "tokens_per_s": rates,
            "completion_tokens": tokens,
            "same_text": same,
            "warmup_s": warmup,
            "raw_load_s": load_s,
        },
    )
    return common.finish(args, rows)


if __name__ == "__main__":
    sys.exit(main())
