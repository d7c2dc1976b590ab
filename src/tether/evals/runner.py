"""Running a suite: every sample (times ``epochs``) through the task, scored, stored.

- Concurrency is bounded (``concurrency`` samples at once); a task past ``timeout`` seconds
  is an error for that sample, as is a task that raises, and a scorer that raises is an
  error score: the run always goes on.
- Every model call the task makes is answered from the project's call cache when it was
  made before (salted by epoch), so an unchanged re-run costs nothing; each sample's calls
  are metered, so its tokens and cost are known.
- Each result is stored the moment it is scored. ``run(suite, resume=RUN_ID)`` does only
  the samples that run has not finished, so an interrupted run loses nothing and counts
  nothing twice; resuming on another version of the dataset is refused. The returned
  ``Run`` reads its results back from the store, so nothing per sample is held meanwhile.
- Each sample is a span (``eval.sample``) whose trace id its outcome keeps; its model calls
  are the span's children. Per-model rate limits are one budget for the whole run.
- Samples run here, on a fixed pool of ``concurrency`` workers, or with ``backend="ray"``
  as Ray tasks (evals/ray_backend.py), through the same ``run_sample``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from tether import _sync
from tether.config import Settings, load_settings
from tether.errors import ConfigError
from tether.evals.dataset import Sample
from tether.evals.scorers.base import Outcome, Score, Scorer
from tether.evals.store import Result, RunInfo, RunStore
from tether.evals.suite import Suite
from tether.models.middleware.cache import CallCache, caching
from tether.models.middleware.limits import limiters, limiting
from tether.models.middleware.meter import metering
from tether.tracing import spans

Advance = Callable[[Result], None]


class Run:
    """A run as stored: what it ran with, and its results. A run the runner returns reads
    its results from the store when they are asked for (``iter_results`` page by page), so
    a large run is never held in memory whole unless ``results`` is read."""

    def __init__(
        self,
        info: RunInfo,
        results: list[Result] | None = None,
        *,
        db_path: Path | None = None,
    ) -> None:
        if results is None and db_path is None:
            raise ValueError("a Run needs its results or the database that holds them")
        self.info = info
        self._results = results
        self._db_path = db_path

    @property
    def id(self) -> str:
        return self.info.run_id

    @property
    def results(self) -> list[Result]:
        if self._results is None:
            self._results = list(self.iter_results())
        return self._results

    def iter_results(self) -> Iterator[Result]:
        if self._results is not None or self._db_path is None:
            yield from self.results
            return
        store = RunStore(self._db_path)
        try:
            yield from store.iter_results(self.id)
        finally:
            store.close()

    def __repr__(self) -> str:
        return f"Run({self.id!r}, suite={self.info.suite!r}, status={self.info.status!r})"


def jsonable(value: Any) -> Any:
    """The task's output as something the store can keep (models dumped, else its text)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


async def score_all(scorers: list[Scorer], sample: Sample, outcome: Outcome) -> dict[str, Score]:
    scores: dict[str, Score] = {}
    for scorer in scorers:
        if outcome.error is not None:
            scores[scorer.name] = Score(value=0.0, error=f"the task failed: {outcome.error}")
            continue
        try:
            scores[scorer.name] = await scorer.ascore(sample, outcome)
        except Exception as exc:  # a scorer's bug is that sample's error, not the run's end
            scores[scorer.name] = Score(
                value=0.0, error=f"scorer {scorer.name} raised {type(exc).__name__}: {exc}"
            )
    return scores


async def run_sample(
    suite: Suite,
    sample: Sample,
    epoch: int,
    *,
    cache: CallCache | None,
    settings: Settings,
    run_id: str,
) -> Result:
    """One sample in one epoch: the task in a span of its own (the model calls it makes are
    children of it, and its trace id is kept on the outcome), its calls cached and metered,
    then scored. Where it runs (this process, a Ray worker) is the caller's business."""
    attributes = {
        "tether.eval.suite": suite.name,
        "tether.eval.run": run_id,
        "tether.eval.sample": sample.id,
        "tether.eval.epoch": epoch,
    }
    with metering() as meter, spans.span(settings, "eval.sample", attributes) as span:
        started = time.perf_counter()
        output: Any = None
        error: str | None = None
        try:
            if cache is not None:
                with caching(cache, salt=f"epoch:{epoch}"):
                    output = await _call(suite, sample)
            else:
                output = await _call(suite, sample)
        except TimeoutError:
            error = f"the task took longer than {suite.timeout} s"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        latency = time.perf_counter() - started
        if error is not None:
            span.set_attribute("error.type", "task")
        context = span.get_span_context() if hasattr(span, "get_span_context") else None
    outcome = Outcome(
        output=output,
        error=error,
        latency_s=latency,
        cost_usd=meter.cost,
        input_tokens=meter.input_tokens,
        output_tokens=meter.output_tokens,
        trace_id=f"{context.trace_id:032x}" if context is not None else None,
        models=sorted(meter.models),
        prompts=sorted(meter.prompts),
    )
    scores = await score_all(suite.scorers, sample, outcome)
    stored = outcome.model_copy(update={"output": jsonable(output)})
    return Result(sample_id=sample.id, epoch=epoch, outcome=stored, scores=scores)


async def _call(suite: Suite, sample: Sample) -> Any:
    task = suite.task
    argument = suite.argument(sample)
    if asyncio.iscoroutinefunction(task):
        call: Awaitable[Any] = task(argument)
    else:
        call = asyncio.to_thread(task, argument)
    if suite.timeout is None:
        return await call
    return await asyncio.wait_for(call, suite.timeout)


Backend = Literal["local", "ray"]
BACKENDS = ("local", "ray")


class Runner:
    def __init__(
        self,
        suite: Suite,
        *,
        settings: Settings | None = None,
        concurrency: int | None = None,
        cache: bool = True,
        limit: int | None = None,
        backend: Backend = "local",
        address: str | None = None,
        rate_limits: Mapping[str, float] | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ConfigError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
        if backend == "ray":
            from tether.evals.ray_backend import require

            require()  # before a run is recorded that could not start
        self.suite = suite
        self.settings = settings or load_settings()
        self.concurrency = concurrency or suite.concurrency
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be 1 or more samples at once, not {concurrency}")
        self.cache = CallCache(self.settings.db_path) if cache else None
        self.dataset = suite.dataset.slice(limit)
        self.limit = limit
        self.store = RunStore(self.settings.db_path)
        self.backend = backend
        self.address = address
        self.rate_limits = {**suite.rate_limits, **(rate_limits or {})}
        self.limits = limiters(self.rate_limits)  # checked here, before anything runs

    def _config(self) -> dict[str, Any]:
        from tether.config import find_config

        toml = find_config()
        return {
            "epochs": self.suite.epochs,
            "limit": self.limit,
            "scorers": [s.name for s in self.suite.scorers],
            "timeout": self.suite.timeout,
            "metadata": self.suite.metadata,
            "rate_limits": self.rate_limits,
            "tether_toml": toml.read_text("utf-8") if toml is not None else None,
        }

    def _start(self, resume: str | None) -> RunInfo:
        if resume is None:
            self.store.save_dataset(self.dataset)
            info = RunInfo(
                run_id=uuid.uuid4().hex[:12],
                suite=self.suite.name,
                dataset=self.dataset.name,
                dataset_version=self.dataset.version,
                config=self._config(),
                started_ns=time.time_ns(),
            )
            self.store.create_run(info)
            return info
        info = self.store.run(resume)
        if info.suite != self.suite.name:
            raise ConfigError(
                f"run {info.run_id} is of suite {info.suite!r}, not {self.suite.name!r}"
            )
        if info.dataset_version != self.dataset.version:
            raise ConfigError(
                f"run {info.run_id} ran on dataset {info.dataset!r} version "
                f"{info.dataset_version}, and the dataset is now version "
                f"{self.dataset.version}; start a new run instead of resuming this one"
            )
        info.status = "running"
        self.store.update_run(info)
        return info

    async def arun(self, *, resume: str | None = None, advance: Advance | None = None) -> Run:
        info = self._start(resume)
        done = self.store.finished(info.run_id)
        todo = [
            (sample, epoch)
            for epoch in range(self.suite.epochs)
            for sample in self.dataset.samples
            if (sample.id, epoch) not in done
        ]
        # A fixed pool of workers taking the samples in turn: memory does not grow with
        # the dataset (no task a sample waiting), and after an interrupt nothing new starts.
        pending = iter(todo)
        one = self._executor(info.run_id)

        async def worker() -> None:
            for sample, epoch in pending:
                result = await one(sample, epoch)
                # Stored at once, with no await in between: a sample that finished is never
                # lost to an interrupt, so a resumed run never does it again.
                self.store.add_result(info.run_id, result)
                if advance is not None:
                    advance(result)

        with limiting(self.limits):  # the workers inherit it: one budget a model, shared
            workers = [
                asyncio.ensure_future(worker()) for _ in range(min(self.concurrency, len(todo)))
            ]
        try:
            await asyncio.gather(*workers)
        except BaseException:  # an interrupt: stop every sample still going, keep the rest
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            info.status = "interrupted"
            self.store.update_run(info)
            raise
        info.status = "finished"
        info.finished_ns = time.time_ns()
        info.config["backend"] = self.backend
        info.config["models"] = self.store.used(info.run_id, "models")
        info.config["prompts"] = self.store.used(info.run_id, "prompts")
        self.store.update_run(info)
        return Run(info, db_path=self.store.db_path)

    def _executor(self, run_id: str) -> Callable[[Sample, int], Awaitable[Result]]:
        """Where each sample runs: here, or on a Ray cluster (evals/ray_backend.py)."""
        if self.backend == "ray":
            from tether.evals.ray_backend import RayExecutor

            return RayExecutor(
                self.suite,
                self.settings,
                self.cache is not None,
                run_id,
                self.address,
                self.rate_limits,
            )

        async def here(sample: Sample, epoch: int) -> Result:
            return await run_sample(
                self.suite, sample, epoch, cache=self.cache, settings=self.settings, run_id=run_id
            )

        return here

    def run_sync(self, *, resume: str | None = None, advance: Advance | None = None) -> Run:
        return _sync.run(self.arun(resume=resume, advance=advance))

    def close(self) -> None:
        self.store.close()
        if self.cache is not None:
            self.cache.close()


async def arun(
    suite: Suite,
    *,
    resume: str | None = None,
    limit: int | None = None,
    concurrency: int | None = None,
    cache: bool = True,
    settings: Settings | None = None,
    advance: Advance | None = None,
    backend: Backend = "local",
    address: str | None = None,
    rate_limits: Mapping[str, float] | None = None,
) -> Run:
    """Run ``suite`` (or finish the run ``resume``) and return it as stored: here, or with
    ``backend="ray"`` on a Ray cluster (``address``; None starts a local one)."""
    runner = Runner(
        suite,
        settings=settings,
        concurrency=concurrency,
        cache=cache,
        limit=limit,
        backend=backend,
        address=address,
        rate_limits=rate_limits,
    )
    try:
        return await runner.arun(resume=resume, advance=advance)
    finally:
        runner.close()


def run(suite: Suite, **options: Any) -> Run:
    """Sync twin of arun; works inside a running event loop."""
    return _sync.run(arun(suite, **options))
