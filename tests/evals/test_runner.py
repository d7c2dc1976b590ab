"""The runner: scores and stores every sample, survives bad tasks and scorers, resumes
without losing or repeating a sample, caches model calls, and compares runs."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

import tether
from tether.errors import ConfigError
from tether.evals import Dataset, ExactMatch, Sample, scorer
from tether.evals.runner import run
from tether.evals.suite import Suite
from tether.evals.summary import compare_runs, summarize

ROWS = [
    {"id": str(i), "input": word, "expected": word.upper(), "category": cat}
    for i, (word, cat) in enumerate(
        [("a", "x"), ("b", "x"), ("c", "y"), ("d", "y"), ("e", "y"), ("f", "x")]
    )
]


def data(rows: list[dict[str, Any]] = ROWS) -> Dataset:
    return Dataset.from_list(rows, name="letters")


def upper_but_d(text: str) -> str:
    return text.lower() if text == "d" else text.upper()


def test_a_run_scores_stores_and_summarises_every_sample(project: Path) -> None:
    suite = Suite("letters", data(), upper_but_d, [ExactMatch(normalized=False)])
    result = run(suite)
    assert result.info.status == "finished" and len(result.results) == 6
    summary = summarize(result, samples=suite.dataset.samples, scorers=suite.scorers)
    accuracy = summary.metrics["exact_raw"]
    assert accuracy.estimate.mean == pytest.approx(5 / 6) and accuracy.estimate.method == "wilson"
    assert accuracy.by_category["category=y"].mean == pytest.approx(2 / 3)
    assert summary.task_errors == 0 and summary.samples == 6
    db = sqlite3.connect(project / ".tether" / "tether.db")
    query = "SELECT count(*) FROM eval_results WHERE run_id = ?"
    (count,) = db.execute(query, (result.id,)).fetchone()
    assert count == 6
    (versions,) = db.execute("SELECT count(*) FROM eval_datasets").fetchone()
    assert versions == 1 and result.info.config["scorers"] == ["exact_raw"]


def test_a_raising_scorer_a_raising_task_and_a_slow_task_are_that_samples_errors(
    project: Path,
) -> None:
    @scorer
    def fragile(output: str, sample: Sample) -> bool:
        if sample.id == "1":
            raise KeyError("boom")
        return True

    async def task(text: str) -> str:
        if text == "c":
            raise RuntimeError("the task broke")
        if text == "e":
            await asyncio.sleep(5)
        return text.upper()

    suite = Suite("letters", data(), task, [ExactMatch(), fragile], timeout=0.5)
    started = time.monotonic()
    result = run(suite)
    assert time.monotonic() - started < 4  # the slow sample was cut at its timeout
    by_id = {r.sample_id: r for r in result.results}
    assert by_id["1"].scores["fragile"].error == "scorer fragile raised KeyError: 'boom'"
    assert by_id["1"].scores["exact"].value == 1.0  # the other scorer still scored it
    assert by_id["2"].outcome.error == "RuntimeError: the task broke"
    assert "longer than 0.5 s" in (by_id["4"].outcome.error or "")
    assert by_id["4"].scores["exact"].error is not None
    summary = summarize(result)
    assert summary.task_errors == 2 and summary.metrics["fragile"].errors == 3


class Interrupt(BaseException):
    """Stands for Ctrl-C: not an error of the task, the end of the process."""


def test_a_run_interrupted_twice_and_resumed_loses_and_repeats_nothing(project: Path) -> None:
    calls: list[str] = []
    stop_at = {"c", "e"}

    async def task(text: str) -> str:
        if text in stop_at:
            stop_at.discard(text)
            raise Interrupt
        calls.append(text)
        return text.upper()

    suite = Suite("letters", data(), task, [ExactMatch()], concurrency=1)
    with pytest.raises(Interrupt):
        run(suite)
    db = sqlite3.connect(project / ".tether" / "tether.db")
    (run_id, status) = db.execute("SELECT run_id, status FROM eval_runs").fetchone()
    assert status == "interrupted" and calls == ["a", "b"]
    with pytest.raises(Interrupt):
        run(suite, resume=run_id)
    finished = run(suite, resume=run_id[:6])  # a prefix names it
    assert finished.id == run_id and finished.info.status == "finished"
    assert sorted(calls) == ["a", "b", "c", "d", "e", "f"]  # each sample's task ran once
    ids = sorted(r.sample_id for r in finished.results)
    assert ids == ["0", "1", "2", "3", "4", "5"]


def test_resuming_on_another_dataset_version_and_comparing_across_versions_are_refused(
    project: Path,
) -> None:
    first = run(Suite("letters", data(), upper_but_d, [ExactMatch()]))
    changed = [dict(r) for r in ROWS]
    changed[0]["expected"] = "Z"
    suite = Suite("letters", data(changed), upper_but_d, [ExactMatch()])
    with pytest.raises(ConfigError, match=r"version .* start a new run"):
        run(suite, resume=first.id)
    second = run(suite)
    with pytest.raises(ConfigError, match="different versions of dataset 'letters'"):
        compare_runs(first, second)
    with pytest.raises(ConfigError, match="no eval run 'nope'"):
        run(suite, resume="nope")


def test_epochs_give_pass_at_k_and_pass_hat_k(project: Path) -> None:
    seen: dict[str, int] = {}

    def flaky(text: str) -> str:  # "a" right every time, "b" once in three, others never
        seen[text] = seen.get(text, 0) + 1
        if text == "a" or (text == "b" and seen[text] == 2):
            return text.upper()
        return "?"

    rows = ROWS[:3]
    result = run(Suite("letters", data(rows), flaky, [ExactMatch()], epochs=3), cache=False)
    assert len(result.results) == 9
    metric = summarize(result).metrics["exact"]
    assert metric.estimate.mean == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert metric.pass_at_k == pytest.approx(2 / 3) and metric.pass_all_k == pytest.approx(1 / 3)


def test_compare_two_versions_of_a_task_sample_by_sample(project: Path) -> None:
    rows = [{"id": str(i), "input": f"w{i}", "expected": f"W{i}"} for i in range(200)]
    good = run(Suite("words", data(rows), str.upper, [ExactMatch()]))
    worse = run(Suite("words", data(rows), lambda t: "x" if t.endswith("7") else t.upper(),
                      [ExactMatch()]))  # fmt: skip
    (comparison,) = compare_runs(good, worse)
    assert comparison.difference == pytest.approx(-0.1) and comparison.significant
    assert comparison.test == "mcnemar" and comparison.n == 200


def test_an_unchanged_rerun_on_the_local_model_is_answered_from_the_cache(project: Path) -> None:
    model = tether.model("local:smollm2")

    def task(text: str) -> str:
        return model.generate(f"Repeat: {text}", max_tokens=6, temperature=0.0).text

    suite = Suite("echo", data(ROWS[:3]), task, [ExactMatch()], concurrency=2)
    first = run(suite)
    started = time.perf_counter()
    second = run(suite)
    took = time.perf_counter() - started
    assert [r.outcome.output for r in sorted(first.results, key=lambda r: r.sample_id)] == [
        r.outcome.output for r in sorted(second.results, key=lambda r: r.sample_id)
    ]
    assert all(r.outcome.output_tokens > 0 for r in second.results)  # counted, as cached
    assert summarize(second).cost_usd == 0.0
    assert second.info.config["models"] == ["local:smollm2"]
    db = sqlite3.connect(project / ".tether" / "tether.db")
    (cached,) = db.execute("SELECT count(*) FROM call_cache").fetchone()
    assert cached == 3 and took < 5


def test_the_run_records_the_tether_toml_it_ran_with(project: Path) -> None:
    (project / "tether.toml").write_text('default_model = "local:smollm2"\n')
    result = run(Suite("letters", data(ROWS[:2]), str.upper, [ExactMatch()]))
    assert result.info.config["tether_toml"] == 'default_model = "local:smollm2"\n'
    assert result.info.config["epochs"] == 1 and result.info.config["limit"] is None


def test_a_concurrency_below_one_is_refused_before_anything_runs(project: Path) -> None:
    with pytest.raises(ConfigError, match="concurrency must be 1 or more"):
        run(Suite("letters", data(), str.upper, [ExactMatch()]), concurrency=-2)
    path = project / ".tether" / "tether.db"
    assert not path.exists() or sqlite3.connect(path).execute(
        "SELECT count(*) FROM eval_runs"
    ).fetchone() == (0,)


def test_the_ray_backend_without_ray_says_how_to_get_it(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r"pip install 'tether\[ray\]'"):
        run(Suite("letters", data(), str.upper, [ExactMatch()]), backend="ray")
    with pytest.raises(ConfigError, match="not one of local, ray"):
        run(Suite("letters", data(), str.upper, [ExactMatch()]), backend="spark")  # type: ignore[arg-type]
    path = project / ".tether" / "tether.db"
    assert not path.exists() or sqlite3.connect(path).execute(
        "SELECT count(*) FROM eval_runs"
    ).fetchone() == (0,)


def test_a_large_run_is_read_back_page_by_page_and_summarised_as_a_loaded_one(
    project: Path,
) -> None:
    """The returned run holds no results until asked: they stream from the store in pages,
    in the order they were stored, and its summary equals the one of the run held whole."""
    from tether.evals import Classification
    from tether.evals.runner import Run
    from tether.evals.store import RunStore

    rows = [{"id": str(i), "input": f"w{i % 7}", "expected": "w0"} for i in range(1203)]
    suite = Suite("many", Dataset.from_list(rows, name="many"), str, [Classification()], epochs=2)
    done = run(suite, concurrency=4)
    store = RunStore(project / ".tether" / "tether.db")
    paged = list(store.iter_results(done.id, page=100))
    store.close()
    assert len(paged) == 2 * 1203
    assert len({(r.sample_id, r.epoch) for r in paged}) == 2 * 1203
    streamed = summarize(done, samples=suite.dataset.samples, scorers=suite.scorers)
    held = Run(done.info, results=paged)
    whole = summarize(held, samples=suite.dataset.samples, scorers=suite.scorers)
    assert streamed == whole
    assert streamed.samples == 1203 and streamed.epochs == 2
    assert streamed.metrics["accuracy"].estimate.mean == pytest.approx(172 / 1203)
    assert streamed.metrics["accuracy"].pass_at_k == pytest.approx(172 / 1203)
    assert set(streamed.extra) == {"accuracy.macro_f1", "accuracy.confusion"}
    db = sqlite3.connect(project / ".tether" / "tether.db")
    db.execute("DELETE FROM eval_results WHERE run_id = ? AND sample_id = '0'", (done.id,))
    db.commit()
    assert len(done.results) == 2 * 1202  # read from the store when asked, not before
