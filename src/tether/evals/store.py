"""Where eval runs live: the project database (tables eval_datasets, eval_runs,
eval_results). Each result is written in its own transaction the moment it is scored, so an
interrupted run keeps everything it finished and a resumed one redoes nothing."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tether.errors import ConfigError
from tether.evals.dataset import Dataset, Sample
from tether.evals.scorers.base import Outcome, Score
from tether.store.db import connect, transaction


class RunInfo(BaseModel):
    run_id: str
    suite: str
    dataset: str
    dataset_version: str
    config: dict[str, Any] = Field(default_factory=dict)
    status: str = "running"  # running | finished | interrupted
    started_ns: int = 0
    finished_ns: int | None = None


class Result(BaseModel):
    """One sample's outcome in one epoch, with every scorer's score."""

    sample_id: str
    epoch: int
    outcome: Outcome
    scores: dict[str, Score]


class RunStore:
    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = connect(self.db_path)
        return self._db

    def save_dataset(self, dataset: Dataset) -> None:
        samples = json.dumps([s.model_dump(mode="json") for s in dataset.samples])
        with self._lock, transaction(self._conn()) as db:
            db.execute(
                "INSERT OR IGNORE INTO eval_datasets (name, version, samples, created_ns) "
                "VALUES (?,?,?,?)",
                (dataset.name, dataset.version, samples, time.time_ns()),
            )

    def dataset(self, name: str, version: str) -> Dataset | None:
        with self._lock:
            row = (
                self._conn()
                .execute(
                    "SELECT samples FROM eval_datasets WHERE name = ? AND version = ?",
                    (name, version),
                )
                .fetchone()
            )
        if row is None:
            return None
        samples = [Sample.model_validate(s) for s in json.loads(row[0])]
        return Dataset(name=name, samples=samples)

    def create_run(self, info: RunInfo) -> None:
        with self._lock, transaction(self._conn()) as db:
            db.execute(
                "INSERT INTO eval_runs (run_id, suite, dataset, dataset_version, config, status, "
                "started_ns) VALUES (?,?,?,?,?,?,?)",
                (
                    info.run_id,
                    info.suite,
                    info.dataset,
                    info.dataset_version,
                    json.dumps(info.config),
                    info.status,
                    info.started_ns,
                ),
            )

    def update_run(self, info: RunInfo) -> None:
        with self._lock, transaction(self._conn()) as db:
            db.execute(
                "UPDATE eval_runs SET config = ?, status = ?, finished_ns = ? WHERE run_id = ?",
                (json.dumps(info.config), info.status, info.finished_ns, info.run_id),
            )

    def run(self, run_id: str) -> RunInfo:
        """The run ``run_id``; a prefix of it will do when only one run starts so."""
        with self._lock:
            rows = (
                self._conn()
                .execute(
                    "SELECT run_id, suite, dataset, dataset_version, config, status, started_ns, "
                    "finished_ns FROM eval_runs WHERE run_id LIKE ? ORDER BY started_ns",
                    (run_id.replace("%", "") + "%",),
                )
                .fetchall()
            )
        exact = [r for r in rows if r[0] == run_id]
        if exact:
            rows = exact
        if not rows:
            raise ConfigError(f"no eval run {run_id!r}; `tether eval list` shows the runs")
        if len(rows) > 1:
            raise ConfigError(
                f"{run_id!r} names {len(rows)} runs ({', '.join(r[0] for r in rows[:5])}); "
                "give more of the id"
            )
        return _info(rows[0])

    def runs(self, suite: str | None = None, limit: int = 50) -> list[RunInfo]:
        query = (
            "SELECT run_id, suite, dataset, dataset_version, config, status, started_ns, "
            "finished_ns FROM eval_runs"
        )
        args: tuple[Any, ...] = ()
        if suite is not None:
            query += " WHERE suite = ?"
            args = (suite,)
        query += " ORDER BY started_ns DESC LIMIT ?"
        with self._lock:
            rows = self._conn().execute(query, (*args, limit)).fetchall()
        return [_info(r) for r in rows]

    def add_result(self, run_id: str, result: Result) -> None:
        with self._lock, transaction(self._conn()) as db:
            db.execute(
                "INSERT OR REPLACE INTO eval_results (run_id, sample_id, epoch, outcome, scores) "
                "VALUES (?,?,?,?,?)",
                (
                    run_id,
                    result.sample_id,
                    result.epoch,
                    result.outcome.model_dump_json(),
                    json.dumps({k: v.model_dump(mode="json") for k, v in result.scores.items()}),
                ),
            )

    def results(self, run_id: str) -> list[Result]:
        return list(self.iter_results(run_id))

    def iter_results(self, run_id: str, page: int = 500) -> Iterator[Result]:
        """The run's results, fetched ``page`` rows at a time from one query, so a large
        run is never all in memory."""
        with self._lock:
            rows = self._conn().execute(
                "SELECT sample_id, epoch, outcome, scores FROM eval_results WHERE run_id = ?",
                (run_id,),
            )
        while True:
            with self._lock:
                fetched = rows.fetchmany(page)
            for sample_id, epoch, outcome, scores in fetched:
                yield Result(
                    sample_id=sample_id,
                    epoch=epoch,
                    outcome=Outcome.model_validate_json(outcome),
                    scores={k: Score.model_validate(v) for k, v in json.loads(scores).items()},
                )
            if len(fetched) < page:
                return

    def finished(self, run_id: str) -> set[tuple[str, int]]:
        """(sample id, epoch) of every result the run has."""
        with self._lock:
            rows = (
                self._conn()
                .execute("SELECT sample_id, epoch FROM eval_results WHERE run_id = ?", (run_id,))
                .fetchall()
            )
        return {(sample_id, epoch) for sample_id, epoch in rows}

    def used(self, run_id: str, key: str) -> list[str]:
        """The distinct names the run's outcomes list under ``key`` (models, prompts)."""
        with self._lock:
            rows = (
                self._conn()
                .execute(
                    "SELECT DISTINCT j.value FROM eval_results, json_each(outcome, ?) AS j "
                    "WHERE run_id = ? ORDER BY j.value",
                    (f"$.{key}", run_id),
                )
                .fetchall()
            )
        return [value for (value,) in rows]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _info(row: tuple[Any, ...]) -> RunInfo:
    run_id, suite, dataset, version, config, status, started, finished = row
    return RunInfo(
        run_id=run_id,
        suite=suite,
        dataset=dataset,
        dataset_version=version,
        config=json.loads(config),
        status=status,
        started_ns=started,
        finished_ns=finished,
    )
