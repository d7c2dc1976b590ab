"""What every benchmark shares: arguments, the data sets, statistics, the result table and file,
a temporary project folder, and a llama.cpp server on a free port.

Timings on a shared machine are noisy, so a benchmark never reports an absolute time alone:
it alternates tether and its anchor in one process and reports medians and their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
# The full data sets: --data, else $TETHER_DATA, else ../shared/data beside the checkout (the
# rule tests/data_sets.py follows for the tests).
DATA_ENV = "TETHER_DATA"
DATA_DEFAULT = ROOT.parent / "shared" / "data"
DATA_HOW = "tests/fixtures/README.md says where each data set comes from"
PACKAGES = ("tether", "openai", "httpx2", "llama_cpp_python", "opentelemetry-sdk", "pydantic")

# Settings that would leak the caller's project, cassettes or base URL into a benchmark.
CLEARED_ENV = (
    "TETHER_MODEL", "TETHER_HOME", "TETHER_CONFIG", "TETHER_TRACING", "TETHER_TRACE_CONTENT",
    "TETHER_TRACE_MAX_CHARS", "TETHER_RECORD", "TETHER_REPLAY", "TETHER_LOCAL_N_CTX",
    "TETHER_LOCAL_THREADS", "OPENAI_BASE_URL",
)  # fmt: skip


# -- arguments ---------------------------------------------------------------------------


def parser(description: str, runs: int, quick_runs: int) -> argparse.ArgumentParser:
    """The flags every benchmark takes: --runs, --quick (a CI smoke run) and --strict."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--runs", type=int, default=None, help=f"runs per contender (default {runs})")
    p.add_argument(
        "--quick", action="store_true", help=f"a small smoke run (runs={quick_runs}), < 60 s"
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"the full data sets (default: ${DATA_ENV}, else ../shared/data beside the checkout)",
    )
    p.set_defaults(default_runs=runs, quick_runs=quick_runs)
    return p


def runs_of(args: argparse.Namespace) -> int:
    if args.runs is not None:
        return int(args.runs)
    return int(args.quick_runs if args.quick else args.default_runs)


# -- the data sets -----------------------------------------------------------------------


def data_file(args: argparse.Namespace, relative: str) -> Path:
    """The file ``relative`` under the data folder. Where it is missing, the benchmark ends
    with one line saying so: exit 0 when the folder is the default one (a clone without the
    data), exit 1 when --data or $TETHER_DATA named it (asked-for data that is not there)."""
    given = args.data or os.environ.get(DATA_ENV)
    root = Path(given).expanduser() if given else DATA_DEFAULT
    found = root / relative
    if found.is_file():
        return found
    named = f"named by {'--data' if args.data else '$' + DATA_ENV}" if given else "the default"
    print(
        f"{Path(sys.argv[0]).name}: not run: it needs {relative} from the full data sets, not in "
        f"{root} ({named}); put them there, or point --data or ${DATA_ENV} at them ({DATA_HOW})",
        file=sys.stderr,
    )
    raise SystemExit(1 if given else 0)


# -- statistics --------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "median": median(values),
        "p10": percentile(values, 10),
        "p90": percentile(values, 90),
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


def median_interval(
    values: Sequence[float], confidence: float = 0.95
) -> tuple[float, float] | None:
    """A distribution-free confidence interval for the median: the order statistics the
    binomial (sign-test) distribution puts around it, so one run spoilt by a load spike moves
    it no more than any other. None when there are too few values (fewer than 6 at 95%)."""
    n = len(values)
    tail = (1 - confidence) / 2
    below, k = 0.0, 0  # P(Binomial(n, 1/2) < k+1), growing while it stays within the tail
    while k < n // 2:
        below += math.comb(n, k) / 2**n
        if below > tail:
            break
        k += 1
    if k == 0:
        return None
    ordered = sorted(values)
    return ordered[k - 1], ordered[n - k]


def verdict_of(
    interval: tuple[float, float] | None, target: float, *, higher_is_better: bool
) -> bool | None:
    """PASS (True) when the whole interval meets the target, MISS (False) when none of it
    does, None (undecided) when it straddles the target or there is no interval."""
    if interval is None:
        return None
    low, high = interval
    if higher_is_better:
        return True if low >= target else False if high < target else None
    return True if high <= target else False if low > target else None


def timed(call: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """Wall seconds of one call, and its result."""
    started = time.perf_counter()
    result = call(*args, **kwargs)
    return time.perf_counter() - started, result


# -- results -----------------------------------------------------------------------------


@dataclass
class Row:
    """One line of a result table: tether's figure against its anchor's, and the target."""

    case: str
    settings: str
    tether: float | None
    anchor: float | None
    unit: str
    ratio: float | None
    target: str
    passed: bool | None  # None: no target, not available, or undecided (below)
    fmt: str = ".1f"
    added: float | None = None  # tether minus anchor, where that difference is the figure
    extra: dict[str, Any] = field(default_factory=dict)
    interval: tuple[float, float] | None = None  # 95% confidence interval of the judged figure
    undecided: bool = False  # the interval straddles the target (or too few runs for one)
    judged: bool = True  # False: on a smoke run (--quick, a slice), too noisy to judge by

    @property
    def verdict(self) -> str:
        word = {True: "PASS", False: "MISS", None: "-"}[self.passed]
        if self.undecided:
            word = "UNDECIDED"
        return word if self.judged or word == "-" else f"({word})"

    @property
    def failed(self) -> bool:
        """A judged target this run did not show met: missed, or undecided."""
        return self.judged and (self.passed is False or self.undecided)


def smoke(args: argparse.Namespace) -> bool:
    """A smoke run (--quick, or a slice of a data set): only targets robust there are judged."""
    return bool(args.quick or getattr(args, "limit", None) is not None)


def _cell(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def print_table(title: str, rows: Sequence[Row], notes: Sequence[str] = ()) -> None:
    headers = ["case", "settings", "tether", "anchor", "unit", "ratio", "target", "result"]
    cells = [
        [
            r.case,
            r.settings,
            _cell(r.tether, r.fmt),
            _cell(r.anchor, r.fmt),
            r.unit,
            _cell(r.ratio, ".3f"),
            r.target,
            r.verdict,
        ]
        for r in rows
    ]
    if any(r.interval is not None for r in rows):
        headers.insert(6, "95% CI")
        for c, r in zip(cells, rows, strict=True):
            low_high = r.interval
            c.insert(6, "" if low_high is None else f"{low_high[0]:.3f}-{low_high[1]:.3f}")
    if any(r.added is not None for r in rows):
        headers.insert(5, "added")
        for c, r in zip(cells, rows, strict=True):
            c.insert(5, "" if r.added is None else format(r.added, "+" + r.fmt))
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print(line)
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))
    for note in notes:
        print(f"  {note}")
    if any(not r.judged and r.verdict != "-" for r in rows):
        print("  (in parentheses): not counted on a smoke run (--quick, a slice), too noisy there")
    print()


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_revision() -> str | None:
    """The checked-out commit, read from .git's files (no git process)."""
    git = ROOT / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        if (git / ref).is_file():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        return None
    return None


def write_result(
    name: str,
    args: argparse.Namespace,
    rows: Sequence[Row],
    settings: dict[str, Any],
    samples: dict[str, Any] | None = None,
) -> Path:
    """Write the run's rows, settings, samples and machine to bench/results/NAME.json, the
    file a quoted figure is committed with; a smoke run (--quick, a slice) writes to
    bench/results/scratch/ instead (git-ignored), so it never replaces a quoted run."""
    folder = RESULTS / "scratch" if smoke(args) else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": bool(args.quick),
        "runs": runs_of(args),
        "settings": settings,
        "rows": [{**asdict(r), "verdict": r.verdict} for r in rows],
        "all_passed": not any(r.failed for r in rows),
        "samples": samples or {},
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "versions": {p: _version(p) for p in PACKAGES},
        "git_revision": git_revision(),
    }
    path = folder / f"{name}.json"
    path.write_text(compact_json(payload) + "\n", "utf-8")
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1024:.0f} KiB)")
    return path


def compact_json(value: Any, indent: str = "") -> str:
    """JSON that stays small enough to commit and readable in a diff: one key per line, a
    list of plain values on one line, floats to 6 significant digits."""
    inner = indent + " "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(k))}: {compact_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list | tuple) and any(isinstance(v, dict | list | tuple) for v in value):
        items = [inner + compact_json(v, inner) for v in value]
        return "[\n" + ",\n".join(items) + f"\n{indent}]"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(compact_json(v) for v in value) + "]"
    if isinstance(value, float) and math.isfinite(value):
        return json.dumps(float(f"{value:.6g}"))
    return json.dumps(value, default=str, ensure_ascii=False)


def finish(args: argparse.Namespace, rows: Sequence[Row]) -> int:
    """The exit status: 1 under --strict when a judged target was missed or left undecided."""
    missed = [r.case for r in rows if r.failed]
    if missed:
        print(f"missed or undecided: {', '.join(missed)}")
    return 1 if (args.strict and missed) else 0


# -- a throwaway project -----------------------------------------------------------------


@contextlib.contextmanager
def temp_project(config: str | None = None, **env: str) -> Iterator[Path]:
    """A temporary TETHER_HOME (and tether.toml, if given) so a run never writes into the repo."""
    saved = {k: os.environ.get(k) for k in (*CLEARED_ENV, *env)}
    folder = Path(tempfile.mkdtemp(prefix="tether-bench-"))
    try:
        for name in CLEARED_ENV:
            os.environ.pop(name, None)
        os.environ["TETHER_HOME"] = str(folder / ".tether")
        if config is not None:
            (folder / "tether.toml").write_text(config, "utf-8")
            os.environ["TETHER_CONFIG"] = str(folder / "tether.toml")
        os.environ.update(env)
        yield folder
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(folder, ignore_errors=True)


# -- the llama.cpp server ----------------------------------------------------------------


def llama_server(threads: int = 2, n_ctx: int = 2048, timeout: float = 90) -> Any:
    """llama-cpp-python's OpenAI-compatible server on the embedded GGUF; yields its base URL."""
    from tether.testing.servers import llama_server as serve

    return serve("smollm2", n_ctx=n_ctx, threads=threads, timeout=timeout)


# -- tracing ---------------------------------------------------------------------------


def stored_spans(db_path: Path, model: str | None = None) -> int:
    """How many spans the trace store holds (for ``model``, if given): proof tracing ran."""
    import sqlite3

    if not db_path.is_file():
        return 0
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        if model is None:
            (count,) = db.execute("SELECT count(*) FROM spans").fetchone()
        else:
            (count,) = db.execute("SELECT count(*) FROM spans WHERE model = ?", (model,)).fetchone()
    return int(count)
