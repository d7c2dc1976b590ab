"""A Suite: a dataset, a task that answers each sample, and the scorers that judge it.

The task is any callable, sync or async: it receives the sample's ``input``, or the whole
Sample when its first parameter is named ``sample``. It may be a prompt file's ``run``, a
``tether.extract`` call, a retrieval pipeline: whatever the application does. Model calls it
makes through tether are cached, metered and traced per sample by the runner.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tether.evals.dataset import Dataset, Sample
from tether.evals.scorers.base import FunctionScorer, Scorer

Task = Callable[..., Any]


class Suite:
    def __init__(
        self,
        name: str,
        dataset: Dataset,
        task: Task,
        scorers: Sequence[Scorer | Callable[..., Any]],
        *,
        epochs: int = 1,
        timeout: float | None = None,
        concurrency: int = 8,
        gates: Sequence[str] = (),
        metadata: dict[str, Any] | None = None,
        rate_limits: Mapping[str, float] | None = None,
    ) -> None:
        if epochs < 1:
            raise ValueError(f"epochs must be 1 or more, not {epochs}")
        if not scorers:
            raise ValueError(f"suite {name!r} has no scorers; give at least one")
        self.name = name
        self.dataset = dataset
        self.task = task
        self.scorers = [s if isinstance(s, Scorer) else FunctionScorer(s) for s in scorers]
        names = [s.name for s in self.scorers]
        if len(set(names)) != len(names):
            raise ValueError(f"suite {name!r} has two scorers named alike ({names}); rename one")
        self.epochs = epochs
        self.timeout = timeout
        self.concurrency = concurrency
        self.metadata = metadata or {}
        self.gates = list(gates)  # "exact>=0.8": checked by `tether eval run` and by pytest
        # Requests per minute by model id ("*": any other): the whole run shares each budget.
        self.rate_limits = dict(rate_limits or {})
        self._wants_sample = _first_parameter(task) == "sample"

    def argument(self, sample: Sample) -> Any:
        return sample if self._wants_sample else sample.input

    def __repr__(self) -> str:
        return f"Suite({self.name!r}, {len(self.dataset)} samples, {len(self.scorers)} scorers)"


def _first_parameter(fn: Callable[..., Any]) -> str | None:
    try:
        parameters = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return None
    return parameters[0] if parameters else None
