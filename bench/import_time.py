"""Start-up time: ``import tether`` and ``tether --help`` as fresh processes.

Anchors, measured in the same run and alternated with tether: ``python -c "pass"`` (the bare
interpreter) and ``python -c "import openai"`` (the SDK tether keeps lazy). Each command runs
once to warm the OS caches, then N times in rotating order; wall time is the whole process.
Targets: ``import tether`` < 0.3 s and ``tether --help`` < 0.5 s (medians).

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

    with common.temp_project():
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
                added=med["tether --help"] - med["python -c pass"],
                extra={"anchor": "python -c pass"},
            )
        )
    else:
        rows.append(
            Row("tether --help", "CLI not available", None, None, "s", None, "< 0.5 s", None)
        )
    notes = [
        "medians; anchor = the bare interpreter unless the case names another",
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
