"""What a scorer is: a callable ``(sample, outcome) -> Score``, sync or async.

A Score carries a ``value`` (a number, usually 0..1; True/False count as 1/0) and an
``explanation`` a person can read when a sample fails. ``Outcome`` is what the task produced
for one sample, with how long it took and what it cost, so latency and cost are scored like
anything else. A scorer that raises gives that sample an error score, never a crashed run.

``@scorer`` turns a plain function of ``(output, sample)`` returning a number, a bool or a
Score into a scorer; ``Scorer`` subclasses may also ``aggregate`` a whole run into metrics
that are not a mean of per-sample values (macro-F1, a confusion matrix, calibration error).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from tether.evals.dataset import Sample


class Outcome(BaseModel):
    """What the task returned for one sample, and what it took."""

    output: Any = None
    error: str | None = None  # the task raised or timed out: why
    latency_s: float = 0.0
    cost_usd: float | None = None  # None: some call had no price
    input_tokens: int = 0
    output_tokens: int = 0
    trace_id: str | None = None  # the sample's span: its model calls are children of it
    models: list[str] = Field(default_factory=list)  # the models the task called
    prompts: list[str] = Field(default_factory=list)  # "name@version" of its prompt files

    @property
    def text(self) -> str:
        """The output as text: strings as they are, anything else as JSON."""
        if self.output is None:
            return ""
        if isinstance(self.output, str):
            return self.output
        if isinstance(self.output, BaseModel):
            return self.output.model_dump_json()
        import json

        return json.dumps(self.output, default=str, ensure_ascii=False)


class Score(BaseModel):
    value: float
    explanation: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None  # the scorer raised: the value is 0 and this says why

    @classmethod
    def of(cls, value: float | bool, explanation: str = "", **metadata: Any) -> Score:
        return cls(value=float(value), explanation=explanation, metadata=metadata)


class Scorer:
    """A named scorer; subclasses implement ``score`` (sync or async)."""

    name: str = "score"

    def score(self, sample: Sample, outcome: Outcome) -> Score | Awaitable[Score]:
        raise NotImplementedError

    def aggregate(self, samples: Sequence[Sample], scores: Sequence[Score]) -> dict[str, Any]:
        """Run-level metrics beyond the mean of the values (none by default)."""
        return {}

    async def ascore(self, sample: Sample, outcome: Outcome) -> Score:
        result = self.score(sample, outcome)
        if inspect.isawaitable(result):
            result = await result
        assert isinstance(result, Score)
        return result

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


UserFn = Callable[[Any, Sample], "float | bool | Score | Awaitable[float | bool | Score]"]


class FunctionScorer(Scorer):
    def __init__(self, fn: UserFn, name: str | None = None) -> None:
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", "score"))

    async def score(self, sample: Sample, outcome: Outcome) -> Score:
        result = self.fn(outcome.output, sample)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, Score):
            return result
        if isinstance(result, (bool, int, float)):
            return Score.of(result)
        raise TypeError(
            f"scorer {self.name} returned {type(result).__name__}; return a number, a bool "
            "or a tether.evals.Score"
        )


def scorer(fn: UserFn | None = None, *, name: str | None = None) -> Any:
    """``@scorer`` (or ``@scorer(name=...)``) over ``fn(output, sample)``."""
    if fn is None:
        return lambda f: FunctionScorer(f, name)
    return FunctionScorer(fn, name)
