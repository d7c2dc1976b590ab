"""The Ray backend on a real local cluster of two workers: the local runner's results, its
cache and its resume; a worker killed mid-run loses no sample and counts none twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import tether
from tether.evals import Dataset, ExactMatch, Sample
from tether.evals.runner import run
from tether.evals.suite import Suite
from tether.tracing.setup import flush

pytestmark = pytest.mark.slow

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
local_model = None


def rows() -> Dataset:
    return Dataset.from_list(
        [{"id": str(i), "input": w, "expected": w.upper()} for i, w in enumerate(WORDS)],
        name="words",
    )


def echo(text: str) -> str:
    """A task on the embedded model, built once per process (driver or worker)."""
    global local_model
    if local_model is None:
        local_model = tether.model("local:smollm2")
    return local_model.generate(f"Say: {text}", max_tokens=5, temperature=0.0).text


def where(text: str) -> str:
    return f"{text.upper()}:{os.getpid()}"


def dies_once(sample: Sample) -> str:
    """Kills its own worker (SIGKILL, as an OOM killer or an operator would) the first
    time it meets sample 3; the marker file outlives the process."""
    marker = Path(sample.metadata["marker"])
    if sample.id == "3" and not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return str(sample.input).upper()


def always_dies(sample: Sample) -> str:
    if sample.id == "2":
        os.kill(os.getpid(), signal.SIGKILL)
    return str(sample.input).upper()


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    import ray

    ray.init(
        num_cpus=2,  # two workers
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}},
    )
    yield
    ray.shutdown()


def by_sample(result: object) -> dict[tuple[str, int], object]:
    return {(r.sample_id, r.epoch): r for r in result.results}  # type: ignore[attr-defined]


def test_ray_answers_as_the_local_runner_and_shares_its_call_cache(
    cluster: None, project: Path
) -> None:
    suite = Suite("echo", rows(), echo, [ExactMatch()], concurrency=4)
    on_ray = run(suite, backend="ray")
    assert on_ray.info.status == "finished" and on_ray.info.config["backend"] == "ray"
    assert len(on_ray.results) == len(WORDS)
    db = sqlite3.connect(project / ".tether" / "tether.db")
    (cached,) = db.execute("SELECT count(*) FROM call_cache").fetchone()
    assert cached == len(WORDS)  # the workers wrote the project's cache
    here = run(suite)  # the local runner: every call a hit on what the workers cached
    (still,) = db.execute("SELECT count(*) FROM call_cache").fetchone()
    assert still == cached
    mine, theirs = by_sample(here), by_sample(on_ray)
    assert mine.keys() == theirs.keys()
    for key, result in mine.items():
        assert result.outcome.output == theirs[key].outcome.output  # type: ignore[attr-defined]
        assert result.scores == theirs[key].scores  # type: ignore[attr-defined]
    assert on_ray.info.config["models"] == ["local:smollm2"]
    # each sample's span reached the project's traces from its worker, its id on the outcome
    trace_ids = {r.outcome.trace_id for r in on_ray.results}
    assert None not in trace_ids and len(trace_ids) == len(WORDS)
    flush()
    spans = db.execute(
        "SELECT trace_id, name FROM spans WHERE name = 'eval.sample' OR model IS NOT NULL"
    ).fetchall()
    for trace_id in trace_ids:
        names = {name for t, name in spans if t == trace_id}
        assert "eval.sample" in names and len(names) == 2, names  # the sample and its call


def test_samples_spread_over_both_workers_and_a_resume_finishes_the_run(
    cluster: None, project: Path
) -> None:
    suite = Suite("where", rows(), where, [ExactMatch()], concurrency=2)
    first = run(suite, limit=3, backend="ray")
    assert first.info.status == "finished"
    # a run left half done is finished on Ray: only the samples it lacked are run
    db = sqlite3.connect(project / ".tether" / "tether.db")
    db.execute("DELETE FROM eval_results WHERE run_id = ? AND sample_id IN ('1', '2')", (first.id,))
    db.execute("UPDATE eval_runs SET status = 'interrupted' WHERE run_id = ?", (first.id,))
    db.commit()
    kept = by_sample(first)[("0", 0)].outcome.output  # type: ignore[attr-defined]
    resumed = run(suite, limit=3, resume=first.id, backend="ray")
    assert resumed.info.status == "finished" and len(resumed.results) == 3
    assert by_sample(resumed)[("0", 0)].outcome.output == kept  # type: ignore[attr-defined]
    full = run(Suite("where", rows(), where, [ExactMatch()], concurrency=4), backend="ray")
    pids = {str(r.outcome.output).split(":")[1] for r in full.results}
    assert len(pids) == 2 and str(os.getpid()) not in pids  # two workers, none of it here


def test_a_worker_killed_mid_run_loses_no_sample_and_counts_none_twice(
    cluster: None, project: Path
) -> None:
    marker = project / "killed"
    data = Dataset.from_list(
        [
            {"id": str(i), "input": w, "expected": w.upper(), "marker": str(marker)}
            for i, w in enumerate(WORDS)
        ],
        name="words",
    )
    result = run(Suite("dies", data, dies_once, [ExactMatch()], concurrency=2), backend="ray")
    assert marker.exists()  # a worker was killed, holding sample 3
    assert result.info.status == "finished"
    assert sorted(r.sample_id for r in result.results) == [str(i) for i in range(len(WORDS))]
    assert all(r.outcome.error is None and r.scores["exact"].value == 1.0 for r in result.results)
    db = sqlite3.connect(project / ".tether" / "tether.db")
    (stored,) = db.execute(
        "SELECT count(*) FROM eval_results WHERE run_id = ?", (result.id,)
    ).fetchone()
    assert stored == len(WORDS)


def test_a_sample_whose_worker_always_dies_is_that_samples_error(
    cluster: None, project: Path
) -> None:
    result = run(Suite("doomed", rows(), always_dies, [ExactMatch()]), backend="ray")
    assert result.info.status == "finished" and len(result.results) == len(WORDS)
    failed = {r.sample_id: r for r in result.results if r.outcome.error is not None}
    assert list(failed) == ["2"]
    assert "4 tries" in (failed["2"].outcome.error or "")
    assert failed["2"].scores["exact"].error is not None


SUITE_FILE = """
import os
import threading

from tether.evals import Dataset, ExactMatch
from tether.evals.suite import Suite

_lock = threading.Lock()  # module state: cannot be pickled, must not need to be
_loads: list[int] = []
_loads.append(os.getpid())


def shout(text: str) -> str:
    with _lock:
        return f"{text.upper()}:{len(_loads)}"


words = Dataset.from_list(
    [{"id": str(i), "input": w, "expected": w.upper() + ":1"} for i, w in enumerate(WORDS)],
    name="words",
)
loud = Suite("loud", words, shout, [ExactMatch()], concurrency=2)
"""


def test_a_suite_discovered_from_evals_runs_on_the_workers(cluster: None, project: Path) -> None:
    """Its file is on no import path: the workers load it by file, once a process, and its
    module state (a lock) stays theirs."""
    from tether.evals.discover import find

    (project / "evals").mkdir()
    (project / "evals" / "loud.py").write_text(f"WORDS = {WORDS!r}\n{SUITE_FILE}")
    result = run(find("loud", project / "evals"), backend="ray")
    assert [r.outcome.error for r in result.results] == [None] * len(WORDS)
    assert all(r.scores["exact"].value == 1.0 for r in result.results)


def test_a_worker_that_cannot_load_the_suite_says_why(cluster: None, project: Path) -> None:
    from tether.evals.discover import find

    (project / "evals").mkdir()
    path = project / "evals" / "gone.py"
    path.write_text(f"WORDS = {WORDS!r}\n{SUITE_FILE}".replace('"loud"', '"gone"'))
    suite = find("gone", project / "evals")
    path.unlink()  # as on a node that lacks the project's files
    result = run(suite, backend="ray")
    errors = {r.outcome.error for r in result.results}
    (error,) = errors
    assert str(error).startswith("on its Ray worker: ") and "gone.py" in str(error)
