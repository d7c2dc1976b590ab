"""Samples fanned out over a Ray cluster: ``tether eval run NAME --backend ray``.

The run itself stays where it was started: the driver keeps the concurrency bound, stores
each result the moment its worker hands it back, and resumes as the local runner does. Each
sample is one Ray task running the same ``run_sample`` the local runner awaits, so results
are the same; a task whose worker dies (killed, out of memory, a lost node) is run again by
Ray, up to ``RETRIES`` times, and its result is stored once, when it arrives.

Workers run in the folder the run was started from (where it exists on them), so a task
that builds its own models finds the same tether.toml and project database, and they open
the project's call cache from the settings they are sent: so on one machine
(a local cluster, which ``address=None`` starts with one worker per CPU) they share the
cache and an unchanged re-run costs nothing; on several machines, give them the project
folder on a shared filesystem, or each node caches for itself. The suite travels to the
workers pickled: its task and scorers by reference to their module (importable there: on a
local cluster the driver's import path is passed on; a suite file from evals/ is loaded on
the worker from its path, once a process, as discovery loaded it), models built by
``tether.model`` as their id and settings, built anew on the worker. Rate limits hold per
worker process: on a cluster of N workers, give each model 1/N of its budget.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

from tether.config import Settings
from tether.errors import ConfigError
from tether.evals.dataset import Sample
from tether.evals.discover import MODULE_PREFIX, load
from tether.evals.store import Result
from tether.evals.suite import Suite

RETRIES = 3  # runs of a task after its worker died, before the sample is an error

_suites: dict[str, Suite] = {}  # a worker's suite by run id, unpickled once per process
_caches: dict[Path, Any] = {}  # a worker's call cache, opened once per process
_limits: dict[tuple[tuple[str, float], ...], Any] = {}  # its rate limiters, likewise


def require() -> None:
    """Ray importable, or a ConfigError that says how to get it."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--backend ray needs Ray: pip install 'tether[ray]' (or pip install ray)"
        ) from None


def connect(address: str | None) -> None:
    """Join the cluster at ``address`` (``auto``, ``ray://host:10001``, ...), or start a
    local one when None; once per process."""
    require()
    import ray

    if ray.is_initialized():
        return
    env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)} if address is None else {}
    ray.init(
        address=address,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": env} if env else None,
    )


def _on_worker(
    suite: bytes,
    files: dict[str, str],
    settings: Settings,
    cache: bool,
    run_id: str,
    folder: str,
    rate_limits: dict[str, float],
    sample: Sample,
    epoch: int,
) -> Result:
    from tether.evals.runner import run_sample
    from tether.models.middleware.limits import limiters, limiting

    if Path(folder).is_dir() and os.getcwd() != folder:
        # Where the run started, so that what the task builds itself (tether.model(...),
        # tether.index(...)) finds the same tether.toml and project database.
        os.chdir(folder)
    if run_id not in _suites:
        _suites[run_id] = _unpickle(suite, files)
    from tether.models.middleware.cache import CallCache

    calls = None
    if cache:
        if settings.db_path not in _caches:
            _caches[settings.db_path] = CallCache(settings.db_path)
        calls = _caches[settings.db_path]
    key = tuple(sorted(rate_limits.items()))
    if key not in _limits:
        _limits[key] = limiters(rate_limits)  # one budget a worker process, across its tasks
    with limiting(_limits[key]):
        suite_there = _suites[run_id]
        result = asyncio.run(
            run_sample(suite_there, sample, epoch, cache=calls, settings=settings, run_id=run_id)
        )
    from tether.tracing.setup import flush

    flush()  # the sample's spans reach the project database before the worker moves on
    return result


def _unpickle(suite: bytes, files: dict[str, str]) -> Suite:
    """The suite, its suite files loaded first where the worker lacks them (they are not on
    any import path: discovery loads them by file)."""
    import ray.cloudpickle

    while True:
        try:
            found: Suite = ray.cloudpickle.loads(suite)
            return found
        except ModuleNotFoundError as exc:
            if exc.name not in files or exc.name in sys.modules:
                raise
            load(Path(files[exc.name]))


class RayExecutor:
    """Awaitable ``(sample, epoch) -> Result``, each call one Ray task."""

    def __init__(
        self,
        suite: Suite,
        settings: Settings,
        cache: bool,
        run_id: str,
        address: str | None,
        rate_limits: dict[str, float] | None = None,
    ) -> None:
        import ray
        import ray.cloudpickle

        connect(address)
        self._ray = ray
        self._suite_here = suite
        pickled = ray.cloudpickle.dumps(suite)  # type: ignore[no-untyped-call]
        self._suite = ray.put(pickled)  # sent once, not with each sample
        self._files = {  # the suite files the suite may need, for workers to load
            name: str(module.__file__)
            for name, module in list(sys.modules.items())
            if name.startswith(MODULE_PREFIX) and getattr(module, "__file__", None)
        }
        # Workers need not start where the driver did: the project's folder, absolutely.
        self._settings = settings.model_copy(update={"home": settings.home.resolve()})
        self._cache = cache
        self._run_id = run_id
        self._folder = os.getcwd()
        self._rate_limits = dict(rate_limits or {})
        self._remote = ray.remote(max_retries=RETRIES, retry_exceptions=False)(_on_worker)

    async def __call__(self, sample: Sample, epoch: int) -> Result:
        ref = self._remote.remote(
            self._suite,
            self._files,
            self._settings,
            self._cache,
            self._run_id,
            self._folder,
            self._rate_limits,
            sample,
            epoch,
        )
        try:
            result: Result = await ref
        except asyncio.CancelledError:
            self._ray.cancel(ref, force=True)  # an interrupted run stops its workers too
            raise
        except self._ray.exceptions.RayError as exc:
            from tether.evals.runner import score_all
            from tether.evals.scorers.base import Outcome

            reason = _last_line(str(exc)) or repr(exc)
            if isinstance(exc, self._ray.exceptions.RayTaskError):  # raised there, not retried
                error = f"on its Ray worker: {reason}"
            else:  # its worker died every time it ran
                error = f"{type(exc).__name__} on Ray, {RETRIES + 1} tries: {reason}"
            outcome = Outcome(error=error)
            scores = await score_all(self._suite_here.scorers, sample, outcome)
            return Result(sample_id=sample.id, epoch=epoch, outcome=outcome, scores=scores)
        return result


def _last_line(message: str) -> str:
    """The line of a Ray error that says what went wrong (its first only names the task)."""
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", message).splitlines()]
    return next((line for line in reversed(lines) if line and set(line) != {"^"}), "")
