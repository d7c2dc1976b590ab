"""The Inspect AI peer of eval_runner.py, run by bench/.peer-inspect's interpreter: one job a
JSON line on stdin (the samples, the concurrency, the generation settings), one answer a
JSON line on stdout (the wall time of ``eval()`` and what it finished).

Inspect in its best configuration for this: its llama-cpp-python provider (an OpenAI-
compatible client made for this server), ``max_connections`` and ``max_samples`` both at the
concurrency asked, no display, logs written where it is told (as every Inspect run writes
them), the model cache only when the job asks for it.

    bench/.peer-inspect/bin/python bench/_inspect_peer.py BASE_URL LOG_DIR
    bench/.peer-inspect/bin/python bench/_inspect_peer.py --memory N LOG_DIR
"""

from __future__ import annotations

import json
import sys
import time

from inspect_ai import Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.scorer import includes
from inspect_ai.solver import generate


def run(base_url: str, log_dir: str, job: dict) -> dict:
    samples = [Sample(id=s["id"], input=s["prompt"], target=s["target"]) for s in job["samples"]]
    task = Task(dataset=samples, solver=generate(cache=job["cache"]), scorer=includes())
    concurrency = job["concurrency"]
    started = time.perf_counter()
    logs = eval(
        task,
        model=f"llama-cpp-python/{job['model']}",
        model_base_url=base_url,
        max_connections=concurrency,
        max_samples=concurrency,
        display="none",
        log_dir=log_dir,
        log_level="error",
        temperature=job["temperature"],
        max_tokens=job["max_tokens"],
    )
    seconds = time.perf_counter() - started
    log = logs[0]
    done = [s for s in (log.samples or []) if s.error is None]
    return {"seconds": seconds, "status": log.status, "samples": len(done)}


def memory(n: int, log_dir: str) -> dict:
    """Peak memory of an ``n``-sample eval on Inspect's scripted model (mockllm), and what
    its samples alone hold (resident memory before and after they are made)."""
    before = status_mib("VmRSS:")
    samples = [Sample(id=str(i), input=f"word {i}", target=f"WORD {i}") for i in range(n)]
    dataset_mib = status_mib("VmRSS:") - before
    task = Task(dataset=samples, solver=generate(), scorer=includes())
    started = time.perf_counter()
    eval(task, model="mockllm/model", max_connections=8, max_samples=8, display="none",
         log_dir=log_dir, log_level="error")  # fmt: skip
    seconds = time.perf_counter() - started
    peak = status_mib("VmHWM:")
    return {"n": n, "peak_mib": peak, "dataset_mib": dataset_mib, "seconds": seconds}


def status_mib(field: str) -> float:
    from pathlib import Path

    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no /proc/self/status: peak memory needs Linux")


def main() -> int:
    if sys.argv[1] == "--memory":
        sys.stdout.write(json.dumps(memory(int(sys.argv[2]), sys.argv[3])) + "\n")
        return 0
    base_url, log_dir = sys.argv[1], sys.argv[2]
    for line in sys.stdin:
        answer = run(base_url, log_dir, json.loads(line))
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
