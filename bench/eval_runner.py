"""The eval runner: samples/s against Inspect AI, the cached re-run, memory in the sample
count, and how often a CI gate fails on noise and on a real drop.

1. Throughput. The same suite, the first ``--samples`` (200) messages of banking77's test
   set, each asked "which banking topic is this about?" (max_tokens 8, temperature 0), run by
   tether (``run(suite, concurrency=C, cache=False)``: a task awaiting ``agenerate`` on the
   ``llama:smollm2`` endpoint, scored by ``Includes``, every result stored, every sample a
   span) and by Inspect AI (``eval()`` of a Task with ``generate()`` and ``includes()``, its
   llama-cpp-python provider, ``max_connections`` = ``max_samples`` = C, its log written),
   against one llama.cpp server (llama-cpp-python's), at concurrency 1, 8 and 32, the order
   alternating. Inspect runs in its own environment (bench/.peer-inspect, made on first use)
   as a child process that times ``eval()`` itself, so neither side pays for its imports.
   Figure: tether's samples/s over Inspect's; target >= 1 at every concurrency.
2. Cached re-run: the suite again, model calls cached, in a new project: the second run's
   time against the first's (target >= 50x faster); Inspect's own cache (``generate(cache=
   True)``) measured the same way beside it.
3. Memory: a run of 10,000 samples on a scripted model (FunctionModel, no server) and its
   summary, as ``tether eval run`` makes it, in a child process of its own: its peak
   resident memory (VmHWM) against the same at 1,000 samples, and what the dataset's own
   samples hold (resident memory before and after they are made). Target: flat, the peak
   less the dataset under 1.25x for ten times the samples; the whole peak's growth per
   1,000 samples printed beside Inspect's (its samples measured the same way).
4. Gates: two prompt versions on 500 samples (75% passing), gated with ``--baseline`` as
   ``tether eval run`` does (compare_runs, then check), 100 seeded repetitions each, in two
   models of the outcomes. ``fixed`` (temperature 0, as evals of prompt versions run): each
   sample's outcome fixed per version, the new version breaking 5% of the passing samples
   and fixing failing ones so that the net change is zero, or -5 points. ``sampled``: every
   run draws each outcome anew from the sample's own pass rate (Beta(0.75, 0.25)), the new
   version's rates scaled to lose 5 points. With no true difference the gate must pass in at
   least 95 of 100 (both models); with a real 5-point drop it must fail in at least 95 of 100
   (fixed); the sampled model's power at 500 samples is printed, not judged.

    .venv/bin/python bench/eval_runner.py [--quick] [--samples N] [--runs N] [--no-peer]

``--quick``: 20 samples at concurrency 1 and 8, memory at 200 and 2,000, 20 repetitions.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import _common as common
from _common import Row

# The server's OpenMP threads spin between requests unless told to sleep: then whatever
# the client does between two calls (storing a result, ending a span) runs against two
# spinning threads on two cores, and a runner is timed on how it shares a busy machine, not
# on its own work. Passive, the server's threads sleep when idle; OMP_WAIT_POLICY=ACTIVE
# times the server as shipped.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

NAME = "eval_runner"
PEER_VENV = common.BENCH / ".peer-inspect"
INSPECT = "inspect-ai==0.3.285"
CONCURRENCY = (1, 8, 32)
MAX_TOKENS = 8
CACHED_TARGET = 50.0
MEMORY_TARGET = 1.25
GATE_SAMPLES = 500
PASS_RATE = 0.75
DROP = 0.05
QUICK = {"samples": 20, "concurrency": (1, 8), "memory": (200, 2_000), "repetitions": 20}
FULL = {"samples": 200, "concurrency": CONCURRENCY, "memory": (1_000, 10_000), "repetitions": 100}
PROMPT = "Which banking topic is this customer message about? Answer in a few words.\n\n{text}"


def banking(args: argparse.Namespace, n: int) -> list[dict[str, str]]:
    path = common.data_file(args, "banking77/test.csv")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:n]
    return [
        {"id": str(i), "prompt": PROMPT.format(text=r["text"]), "target": r["category"]}
        for i, r in enumerate(rows)
    ]


# -- tether ------------------------------------------------------------------------------


def tether_run(rows: list[dict[str, str]], concurrency: int, cache: bool) -> tuple[float, int]:
    """Seconds for one run of the suite, and the samples it finished without error."""
    import tether
    from tether.evals import Dataset, Includes
    from tether.evals.runner import run
    from tether.evals.suite import Suite

    model = tether.model("llama:smollm2")

    async def ask(prompt: str) -> str:
        answer = await model.agenerate(prompt, temperature=0.0, max_tokens=MAX_TOKENS)
        return answer.text

    data = Dataset.from_list(
        [{"id": r["id"], "input": r["prompt"], "expected": r["target"]} for r in rows],
        name="banking",
    )
    suite = Suite("banking", data, ask, [Includes()])
    seconds, done = common.timed(run, suite, concurrency=concurrency, cache=cache)
    return seconds, sum(1 for r in done.results if r.outcome.error is None)


# -- Inspect -----------------------------------------------------------------------------


def peer_python() -> Path:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        print(f"making {PEER_VENV.relative_to(common.ROOT)} for the peer: {INSPECT}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    probe = [str(python), "-c", "import inspect_ai, openai"]
    if subprocess.run(probe, capture_output=True).returncode != 0:
        install = [str(python), "-m", "pip", "install", "-q", INSPECT, "openai"]
        subprocess.run(install, check=True)
    return python


class Inspect:
    """Inspect AI in its own environment, one eval() a JSON line (bench/_inspect_peer.py)."""

    def __init__(self, base_url: str, logs: Path) -> None:
        script = common.BENCH / "_inspect_peer.py"
        self.process = subprocess.Popen(
            [str(peer_python()), str(script), base_url, str(logs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, rows: list[dict[str, str]], concurrency: int, cache: bool) -> tuple[float, int]:
        assert self.process.stdin is not None and self.process.stdout is not None
        job = {
            "samples": rows,
            "concurrency": concurrency,
            "cache": cache,
            "model": "smollm2",
            "temperature": 0.0,
            "max_tokens": MAX_TOKENS,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        }
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the Inspect peer process ended; see its output above")
        answer = json.loads(line)
        return float(answer["seconds"]), int(answer["samples"])

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


# -- 1 and 2: against the server ---------------------------------------------------------


def against_server(args: argparse.Namespace, rows: list[dict[str, str]], plan: dict[str, Any]):
    """samples/s of both at each concurrency, and both cached re-runs."""
    speed: dict[int, dict[str, list[float]]] = {}
    cached: dict[str, list[float]] = {}
    with common.llama_server(threads=2) as base_url:
        config = f'[endpoints.llama]\nbase_url = "{base_url}"\n'
        peer = None if args.no_peer else Inspect(base_url, Path(tempfile.mkdtemp("-inspect")))
        try:
            with common.temp_project(config):
                tether_run(rows[:4], 2, cache=False)  # warm: imports, the server's first call
            if peer is not None:
                peer.run(rows[:4], 2, cache=False)
            for concurrency in plan["concurrency"]:
                speed[concurrency] = {"tether": [], "inspect": []}
                for i in range(common.runs_of(args)):
                    order = (
                        ["tether", "inspect"]
                        if (i + concurrency) % 2 == 0
                        else ["inspect", "tether"]
                    )
                    for who in order:
                        if who == "inspect" and peer is None:
                            continue
                        with common.temp_project(config):
                            if who == "tether":
                                seconds, done = tether_run(rows, concurrency, cache=False)
                            else:
                                assert peer is not None
                                seconds, done = peer.run(rows, concurrency, cache=False)
                        if done != len(rows):
                            raise RuntimeError(f"{who} finished {done} of {len(rows)} samples")
                        speed[concurrency][who].append(len(rows) / seconds)
                        rate = len(rows) / seconds
                        print(f"  concurrency {concurrency}, {who}: {rate:.2f}/s", flush=True)
            with common.temp_project(config):
                first, _ = tether_run(rows, 8, cache=True)
                again, done = tether_run(rows, 8, cache=True)
                cached["tether"] = [first, again]
            if peer is not None:
                with tempfile.TemporaryDirectory() as inspect_cache:
                    os.environ["INSPECT_CACHE_DIR"] = inspect_cache
                    # the child reads it at its first cached call: start a fresh one
                    fresh = Inspect(base_url, Path(tempfile.mkdtemp("-inspect")))
                    try:
                        first_i, _ = fresh.run(rows, 8, cache=True)
                        again_i, _ = fresh.run(rows, 8, cache=True)
                    finally:
                        fresh.close()
                        os.environ.pop("INSPECT_CACHE_DIR", None)
                    cached["inspect"] = [first_i, again_i]
        finally:
            if peer is not None:
                peer.close()
    return speed, cached


def speed_rows(speed: dict[int, dict[str, list[float]]], n: int, judged: bool) -> list[Row]:
    rows = []
    for concurrency, both in speed.items():
        mine = common.median(both["tether"])
        theirs = common.median(both["inspect"]) if both["inspect"] else None
        ratios = [a / b for a, b in zip(both["tether"], both["inspect"], strict=False)]
        rows.append(
            Row(
                case=f"samples/s at concurrency {concurrency}",
                settings=f"banking77, {n} samples, llama.cpp server; anchor: Inspect AI",
                tether=mine,
                anchor=theirs,
                unit="samples/s",
                ratio=mine / theirs if theirs else None,
                target=">= 1.0x" if theirs else "",
                passed=(mine / theirs >= 1.0) if theirs else None,
                fmt=".2f",
                extra={"runs_tether": both["tether"], "runs_inspect": both["inspect"]},
                undecided=bool(ratios) and min(ratios) < 1.0 <= max(ratios),
                judged=judged,
            )
        )
    return rows


def cached_rows(cached: dict[str, list[float]], n: int, judged: bool) -> list[Row]:
    first, again = cached["tether"]
    speedup = first / again
    peer = cached.get("inspect")
    return [
        Row(
            case="cached re-run, times faster",
            settings=f"{n} samples, concurrency 8; anchor: Inspect AI's own cache",
            tether=speedup,
            anchor=peer[0] / peer[1] if peer else None,
            unit="x",
            ratio=None,
            target=f">= {CACHED_TARGET:.0f}x",
            passed=speedup >= CACHED_TARGET,
            extra={"tether_s": cached["tether"], "inspect_s": peer},
            judged=judged,
        )
    ]


# -- 3: memory ---------------------------------------------------------------------------


def memory_child(n: int) -> int:
    """One run of ``n`` samples on a scripted model in a new project, summarised as
    ``tether eval run`` summarises it; prints its peak."""
    import tether
    from tether.evals import Dataset, ExactMatch
    from tether.evals.runner import run
    from tether.evals.suite import Suite
    from tether.evals.summary import summarize
    from tether.testing import FunctionModel

    model = FunctionModel(lambda request: request.messages[-1].text.upper())

    async def shout(text: str) -> str:
        answer = (await model.agenerate(text)).text
        model.requests.clear()  # a test double's log of its calls, which mockllm keeps not
        return answer

    before = rss_mib()
    data = Dataset.from_list(
        [{"id": str(i), "input": f"word {i}", "expected": f"WORD {i}"} for i in range(n)],
        name="words",
    )
    dataset_mib = rss_mib() - before  # the caller's samples, held before the run starts
    suite = Suite("words", data, shout, [ExactMatch()])
    with common.temp_project():
        started = time.perf_counter()
        done = run(suite, concurrency=8)
        summary = summarize(done, samples=data.samples, scorers=suite.scorers)
        seconds = time.perf_counter() - started
    assert summary.samples == n and tether is not None
    figures = {"n": n, "peak_mib": peak_mib(), "dataset_mib": dataset_mib, "seconds": seconds}
    print(json.dumps(figures))
    return 0


def peak_mib() -> float:
    return _status_mib("VmHWM:")


def rss_mib() -> float:
    return _status_mib("VmRSS:")


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no /proc/self/status: peak memory needs Linux")


def memory(sizes: tuple[int, int], peer: bool) -> dict[str, list[dict[str, float]]]:
    """Each size in a child process of its own, tether's and (with the peer) Inspect's on
    its scripted model, mockllm."""
    out: dict[str, list[dict[str, float]]] = {"tether": [], "inspect": []}
    for n in sizes:
        command = [sys.executable, str(Path(__file__).resolve()), "--memory-child", str(n)]
        commands = [("tether", command)]
        if peer:
            script = str(common.BENCH / "_inspect_peer.py")
            logs = tempfile.mkdtemp("-inspect")
            commands.append(("inspect", [str(peer_python()), script, "--memory", str(n), logs]))
        for who, line in commands:
            done = subprocess.run(line, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{who}'s {n}-sample run failed:\n{done.stderr[-3000:]}")
            out[who].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"  memory, {who}: {out[who][-1]}", flush=True)
    return out


def memory_rows(measured: dict[str, list[dict[str, float]]], judged: bool) -> list[Row]:
    """The peak at the large size; the peak less what the samples themselves hold (the
    caller's dataset, made before the run), large over small: flat when the runner and the
    summary keep nothing per sample; and the whole peak's growth per 1,000 samples."""
    (small, large), peer = measured["tether"], measured["inspect"]
    added = large["n"] - small["n"]

    def beyond(m: dict[str, float]) -> float:
        return m["peak_mib"] - m.get("dataset_mib", 0.0)

    ratio = beyond(large) / beyond(small)
    peer_ratio = beyond(peer[1]) / beyond(peer[0]) if peer else None
    grown = (large["peak_mib"] - small["peak_mib"]) / added * 1000
    peer_grown = (peer[1]["peak_mib"] - peer[0]["peak_mib"]) / added * 1000 if peer else None
    theirs = peer[1]["peak_mib"] if peer else None
    sizes = f"{int(large['n']):,} against {int(small['n']):,} samples"
    return [
        Row(
            case=f"peak memory, {int(large['n']):,} samples",
            settings="scripted models, concurrency 8, the run then its summary; anchor: "
            "Inspect AI (mockllm)",
            tether=large["peak_mib"],
            anchor=theirs,
            unit="MiB",
            ratio=large["peak_mib"] / theirs if theirs else None,
            target="",
            passed=None,
            fmt=".0f",
            extra={"tether": measured["tether"], "inspect": peer},
        ),
        Row(
            case=f"memory beyond the samples, {sizes}",
            settings="peak less the dataset's own resident memory, large over small",
            tether=ratio,
            anchor=peer_ratio,
            unit="x",
            ratio=None,
            target=f"< {MEMORY_TARGET}x (flat)",
            passed=ratio < MEMORY_TARGET,
            fmt=".2f",
            extra={
                "tether_dataset_mib": [m.get("dataset_mib") for m in measured["tether"]],
                "inspect_dataset_mib": [m.get("dataset_mib") for m in peer],
            },
            judged=judged,
        ),
        Row(
            case=f"peak memory growth, {sizes}",
            settings="MiB more per 1,000 samples, the dataset included",
            tether=grown,
            anchor=peer_grown,
            unit="MiB",
            ratio=grown / peer_grown if peer_grown else None,
            target="",
            passed=None,
            fmt=".1f",
        ),
    ]


# -- 4: gates ----------------------------------------------------------------------------


CHURN = 0.05  # at temperature 0, the share of passing samples a new prompt version breaks


def outcomes(case: str, model: str, rng: np.random.Generator) -> tuple[Any, Any]:
    """One repetition's pass/fail vectors for the baseline and the new version.

    ``fixed``: temperature 0, each sample's outcome fixed for a version; the new version
    breaks some passing samples and fixes some failing ones (CHURN), with a net change of
    zero or of -DROP. ``sampled``: every run draws each outcome anew from the sample's own
    pass rate (Beta(0.75, 0.25): most samples nearly always or nearly never pass), the new
    version's rates scaled down to lose DROP on average.
    """
    drop = DROP if case == "a 5-point drop" else 0.0
    if model == "fixed":
        before = rng.random(GATE_SAMPLES) < PASS_RATE
        broken = CHURN + drop / PASS_RATE * (1 - PASS_RATE) if drop else CHURN
        # fixed share g so that 0.25 g - 0.75 broken = -drop
        fixed = (PASS_RATE * broken - drop) / (1 - PASS_RATE)
        flip = rng.random(GATE_SAMPLES)
        after = np.where(before, flip >= broken, flip < fixed)
        return before, after
    chance = rng.beta(PASS_RATE, 1 - PASS_RATE, GATE_SAMPLES)
    before = rng.random(GATE_SAMPLES) < chance
    after = rng.random(GATE_SAMPLES) < chance * (1 - drop / PASS_RATE)
    return before, after


def gate_repetitions(repetitions: int) -> dict[str, Any]:
    """Per repetition: two runs of GATE_SAMPLES scripted outcomes, gated against each other
    as ``tether eval run --baseline`` gates them."""
    from tether.evals.gates import check
    from tether.evals.runner import Run
    from tether.evals.scorers.base import Outcome, Score
    from tether.evals.store import Result, RunInfo
    from tether.evals.summary import compare_runs, summarize

    def as_run(name: str, passed: Any) -> Run:
        info = RunInfo(run_id=name, suite="gate", dataset="d", dataset_version="v")
        results = [
            Result(
                sample_id=str(i),
                epoch=0,
                outcome=Outcome(output=""),
                scores={"exact": Score(value=float(p))},
            )
            for i, p in enumerate(passed)
        ]
        return Run(info=info, results=results)

    out: dict[str, Any] = {}
    for model in ("fixed", "sampled"):
        for case in ("no difference", "a 5-point drop"):
            fails, p_values, drops = 0, [], []
            for seed in range(repetitions):
                rng = np.random.default_rng([20261203, seed])
                before, after = outcomes(case, model, rng)
                comparisons = compare_runs(as_run("a", before), as_run("b", after))
                verdicts = check(summarize(as_run("b", after)), [], comparisons, max_drop=0.0)
                fails += not all(v.passed for v in verdicts)
                p_values.append(comparisons[0].p_value)
                drops.append(-comparisons[0].difference)
            out[f"{model}: {case}"] = {
                "failed": fails,
                "of": repetitions,
                "p_median": float(np.median(p_values)),
                "drop_mean": float(np.mean(drops)),
            }
            print(f"  gate, {model}, {case}: failed {fails} of {repetitions}", flush=True)
    return out


def gate_rows(gates: dict[str, Any], judged: bool) -> list[Row]:
    rows = []
    for model, what in (("fixed", "temperature 0"), ("sampled", "outcomes drawn anew")):
        calm, drop = gates[f"{model}: no difference"], gates[f"{model}: a 5-point drop"]
        n = calm["of"]
        settings = f"{GATE_SAMPLES} samples, {what}, McNemar, {n} seeded repetitions"
        rows.append(
            Row(
                case=f"gate passes, no true difference ({model})",
                settings=settings,
                tether=n - calm["failed"],
                anchor=n,
                unit="passes",
                ratio=(n - calm["failed"]) / n,
                target=">= 95%",
                passed=(n - calm["failed"]) / n >= 0.95,
                fmt=".0f",
                extra=calm,
                judged=judged,
            )
        )
        # At temperature 0 a 5-point drop must fail the gate; with every outcome drawn anew
        # 500 samples hold too little to see 5 points every time: its power is printed.
        rows.append(
            Row(
                case=f"gate fails, a real 5-point drop ({model})",
                settings=settings,
                tether=drop["failed"],
                anchor=n,
                unit="fails",
                ratio=drop["failed"] / n,
                target=">= 95%" if model == "fixed" else "",
                passed=drop["failed"] / n >= 0.95 if model == "fixed" else None,
                fmt=".0f",
                extra=drop,
                judged=judged,
            )
        )
    return rows


# -- the run -----------------------------------------------------------------------------


def arguments() -> argparse.Namespace:
    p = common.parser(__doc__ or NAME, runs=1, quick_runs=1)
    p.add_argument("--samples", type=int, default=None, help="suite size (200)")
    p.add_argument("--no-peer", action="store_true", help="leave Inspect AI out")
    p.add_argument("--concurrency", default=None, help="comma-separated (1,8,32)")
    p.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    return p.parse_args()


def main() -> int:
    args = arguments()
    if args.memory_child is not None:
        return memory_child(args.memory_child)
    plan = dict(QUICK if args.quick else FULL)
    if args.samples is not None:
        plan["samples"] = args.samples
    if args.concurrency is not None:
        plan["concurrency"] = tuple(int(c) for c in args.concurrency.split(","))
    smoke = args.quick or plan["samples"] < FULL["samples"]
    args.limit = plan["samples"] if smoke else None  # a slice's result file goes to scratch/
    rows_in = banking(args, plan["samples"])
    print(
        f"data: banking77 test, {len(rows_in)} samples; memory at {plan['memory']} samples; "
        f"gates on {GATE_SAMPLES} samples x {plan['repetitions']}",
        flush=True,
    )
    speed, cached = against_server(args, rows_in, plan)
    measured = memory(plan["memory"], not args.no_peer)
    gates = gate_repetitions(plan["repetitions"])
    rows = speed_rows(speed, len(rows_in), not smoke)
    rows += cached_rows(cached, len(rows_in), not smoke)
    rows += memory_rows(measured, not smoke)
    rows += gate_rows(gates, not smoke)
    notes = [
        f"peer: {INSPECT} (llama-cpp-python provider) in bench/.peer-inspect"
        if not args.no_peer
        else "peer left out (--no-peer)",
        "one llama-cpp-python server answers both, one request at a time: the figure is "
        "each runner's own cost on top of the same model time",
    ]
    common.print_table("eval runner", rows, notes)
    settings = {
        "samples": len(rows_in),
        "concurrency": list(plan["concurrency"]),
        "max_tokens": MAX_TOKENS,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "memory_sizes": list(plan["memory"]),
        "gate": {"samples": GATE_SAMPLES, "pass_rate": PASS_RATE, "drop": DROP},
    }
    common.write_result(NAME, args, rows, settings, {"speed": speed, "gates": gates})
    return common.finish(args, rows)


if __name__ == "__main__":
    raise SystemExit(main())
