"""Start-up time: ``import tether``, ``tether --help`` and tether's first use, as fresh processes.

Anchors, measured in the same run and alternated with tether: ``python -c "pass"`` (the bare
interpreter) and ``python -c "import openai"`` (the SDK tether keeps lazy). First use, each
against the same done with the raw SDK: building ``tether.model("openai:gpt-4.1-mini")``
(against ``openai.AsyncOpenAI(...)``), a first OpenAI call answered by an in-process mock
transport (tether makes its SDK client at the first call, so building alone flatters it),
building ``tether.model("local:smollm2")`` (against ``import llama_cpp``: neither loads the
model), and a first local call with the model load (against ``llama_cpp.Llama(...)`` and its
first ``create_chat_completion``). Each command runs once to warm the OS caches, then N times
in rotating order; wall time is the whole process. Targets: ``import tether`` < 0.3 s and
``tether --help`` < 0.5 s (medians); first use is reported, not judged.

    .venv/bin/python bench/import_time.py [--runs N] [--quick]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import _common as common
from _common import Row

NAME = "import_time"
TARGET_IMPORT_S = 0.3
TARGET_HELP_S = 0.5
CANNED = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1764000000,
    "model": "gpt-4.1-mini",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
}
MOCK = (
    "httpx2.AsyncClient(transport=httpx2.MockTransport("
    f"lambda request: httpx2.Response(200, json={CANNED!r})))"
)
TETHER_OPENAI_CALL = f"""
import httpx2, tether
model = tether.model("openai:gpt-4.1-mini")
inner = model
while not hasattr(inner, "provider"):
    inner = inner.inner
inner.provider.options["http_client"] = {MOCK}
model.generate("Say hi.", max_tokens=1, temperature=0)
"""
RAW_OPENAI_CALL = f"""
import asyncio, httpx2, openai
client = openai.AsyncOpenAI(api_key="x", max_retries=0, http_client={MOCK})
messages = [{{"role": "user", "content": "Say hi."}}]
asyncio.run(client.chat.completions.create(
    model="gpt-4.1-mini", messages=messages, max_tokens=1, temperature=0
))
"""
TETHER_LOCAL_CALL = """
import tether
tether.model("local:smollm2").generate("Hi", max_tokens=8, temperature=0)
"""


def first_use(gguf: str) -> list[tuple[str, str, str]]:
    """(case, tether's command, the raw SDK's), each run as ``python -c``."""
    raw_local_call = f"""
import llama_cpp
llama = llama_cpp.Llama(model_path={gguf!r}, n_ctx=2048, verbose=False)
llama.create_chat_completion(
    messages=[{{"role": "user", "content": "Hi"}}], max_tokens=8, temperature=0
)
"""
    return [
        (
            "build an openai model",
            "import tether; tether.model('openai:gpt-4.1-mini')",
            "import openai; openai.AsyncOpenAI(api_key='x')",
        ),
        ("first openai call (mock transport)", TETHER_OPENAI_CALL, RAW_OPENAI_CALL),
        (
            "build the local model",
            "import tether; tether.model('local:smollm2')",
            "import llama_cpp",
        ),
        ("first local call (model load included)", TETHER_LOCAL_CALL, raw_local_call),
    ]


def cli_command(python: str) -> list[str] | None:
    """``tether --help`` if the console script works, else ``python -m tether.cli.main``."""
    script = Path(python).with_name("tether")
    candidates = [[str(script), "--help"]] if script.is_file() else []
    candidates.append([python, "-m", "tether.cli.main", "--help"])
    for command in candidates:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode == 0 and "Usage" in done.stdout:
            return command
    return None


def run_once(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    p = common.parser(__doc__.splitlines()[0], runs=20, quick_runs=5)
    args = p.parse_args()
    runs = common.runs_of(args)
    python = sys.executable
    started = time.perf_counter()
    commands = {
        "python -c pass": [python, "-c", "pass"],
        "import openai": [python, "-c", "import openai"],
        "import tether": [python, "-c", "import tether"],
    }
    cli = cli_command(python)
    if cli is not None:
        commands["tether --help"] = cli
    from tether.models.local_files import resolve_path

    cases = first_use(str(resolve_path("smollm2")))
    for case, mine, raw in cases:
        commands[f"tether: {case}"] = [python, "-c", mine]
        commands[f"raw: {case}"] = [python, "-c", raw]

    with common.temp_project(OPENAI_API_KEY="sk-bench"):
        for command in commands.values():
            run_once(command)  # warm-up: page cache, .pyc files
        times: dict[str, list[float]] = {name: [] for name in commands}
        names = list(commands)
        for run in range(runs):
            shift = run % len(names)  # rotate so no command always follows another
            for name in names[shift:] + names[:shift]:
                times[name].append(run_once(commands[name]))

    med = {name: common.median(v) for name, v in times.items()}
    low = {name: min(v) for name, v in times.items()}
    settings = f"n={runs}, fresh process"
    rows = [
        Row(
            "import tether",
            settings,
            med["import tether"],
            med["python -c pass"],
            "s",
            med["import tether"] / med["python -c pass"],
            f"< {TARGET_IMPORT_S} s",
            med["import tether"] < TARGET_IMPORT_S,
            fmt=".3f",
            added=med["import tether"] - med["python -c pass"],
            extra={"anchor": "python -c pass"},
        ),
        Row(
            "import tether vs import openai",
            settings,
            med["import tether"],
            med["import openai"],
            "s",
            med["import tether"] / med["import openai"],
            "-",
            None,
            fmt=".3f",
            added=med["import tether"] - med["import openai"],
            extra={"anchor": "import openai"},
        ),
    ]
    if cli is not None:
        rows.append(
            Row(
                "tether --help",
                f"{settings}: {Path(cli[0]).name} {' '.join(cli[1:])}",
                med["tether --help"],
                med["python -c pass"],
                "s",
                med["tether --help"] / med["python -c pass"],
                f"< {TARGET_HELP_S} s",
                med["tether --help"] < TARGET_HELP_S,
                fmt=".3f",
                # about 0.45 s on an idle machine here: a loaded one pushes it over
                judged=not common.smoke(args),
                added=med["tether --help"] - med["python -c pass"],
                extra={"anchor": "python -c pass"},
            )
        )
    else:
        rows.append(
            Row("tether --help", "CLI not available", None, None, "s", None, "< 0.5 s", None)
        )
    for case, _, _ in cases:
        mine, raw = med[f"tether: {case}"], med[f"raw: {case}"]
        rows.append(
            Row(case, settings, mine, raw, "s", mine / raw, "-", None, fmt=".3f", added=mine - raw)
        )
    notes = [
        "medians; anchor = the bare interpreter for import tether and tether --help; for "
        "first use, the same done with the raw SDK: openai.AsyncOpenAI(api_key=...); the same "
        "call with it on the same mock transport; import llama_cpp; llama_cpp.Llama(...) and "
        "its first create_chat_completion (Hi, max_tokens=8); tether's first local call also "
        "checks the GGUF's sha256",
        "min: " + ", ".join(f"{name} {value:.3f} s" for name, value in low.items()),
        "median: " + ", ".join(f"{name} {value:.3f} s" for name, value in med.items()),
        f"wall time of the benchmark: {time.perf_counter() - started:.1f} s",
    ]
    if cli is None:
        notes.append(
            "tether --help: CLI not available (neither the console script nor "
            "`python -m tether.cli.main --help` answered)"
        )
    common.print_table(f"{NAME}: start-up of tether against the interpreter", rows, notes)
    common.write_result(
        NAME,
        args,
        rows,
        settings={"commands": commands, "cli_available": cli is not None},
        samples=times,
    )
    return common.finish(args, rows)


if __name__ == "__main__":
    sys.exit(main())
