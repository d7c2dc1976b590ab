"""Per-model rate limits: calls spaced at the model's requests per minute inside a
``limiting`` block, shared by every sample of an eval run; other models never wait; a
limit that is not a positive rate is refused."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli.main import app
from tether.errors import ConfigError
from tether.evals import Dataset, ExactMatch
from tether.evals.runner import run
from tether.evals.suite import Suite
from tether.models.middleware.limits import RateLimited, limiters, limiting
from tether.testing import FunctionModel
from tether.types import Request


def stamped() -> tuple[RateLimited, list[float]]:
    """A model that notes when each call reached it."""
    starts: list[float] = []

    def answer(request: Request) -> str:
        starts.append(time.monotonic())
        return "ok"

    return RateLimited(FunctionModel(answer), alias="fast"), starts


def gaps(starts: list[float]) -> list[float]:
    ordered = sorted(starts)
    return [b - a for a, b in itertools.pairwise(ordered)]


async def test_calls_are_spaced_at_the_rate_and_only_for_their_model() -> None:
    model, starts = stamped()
    other, other_starts = stamped()
    other.names = ["other:model"]
    with limiting(limiters({"fast": 600})):  # one call every 0.1 s
        await asyncio.gather(*(model.agenerate("hi") for _ in range(5)))
        await asyncio.gather(*(other.agenerate("hi") for _ in range(5)))
    assert len(starts) == 5 and min(gaps(starts)) >= 0.095  # never faster than the limit
    # a model not named waits for nothing: its five calls all start at once
    assert max(other_starts) - min(other_starts) < 0.09
    with limiting(limiters({"*": 600})):  # "*" names every model
        await asyncio.gather(*(other.agenerate("hi") for _ in range(3)))
    assert min(gaps(other_starts[5:])) >= 0.095


def test_an_eval_run_shares_one_budget_per_model_across_its_samples(project: Path) -> None:
    model, starts = stamped()

    async def task(text: str) -> str:
        return (await model.agenerate(text)).text

    rows = [{"id": str(i), "input": str(i), "expected": "ok"} for i in range(6)]
    suite = Suite("limited", Dataset.from_list(rows, name="n"), task, [ExactMatch()],
                  concurrency=6, rate_limits={"fast": 300})  # fmt: skip
    result = run(suite)
    assert len(result.results) == 6 and min(gaps(starts)) >= 0.19  # 300/min: 0.2 s apart
    assert result.info.config["rate_limits"] == {"fast": 300}
    starts.clear()
    run(suite, rate_limits={"fast": 6000})  # the run's own limit overrides the suite's
    assert len(starts) == 6 and max(starts) - min(starts) < 0.19 * 5


@pytest.mark.parametrize("rpm", [0, -5, float("nan")])
def test_a_rate_that_is_not_positive_is_refused_before_anything_runs(
    project: Path, rpm: float
) -> None:
    suite = Suite("x", Dataset.from_list([{"input": "a"}], name="n"), str.upper, [ExactMatch()])
    with pytest.raises(ConfigError, match="requests per minute, above 0"):
        run(suite, rate_limits={"fast": rpm})
    path = project / ".tether" / "tether.db"
    assert not path.exists() or sqlite3.connect(path).execute(
        "SELECT count(*) FROM eval_runs"
    ).fetchone() == (0,)


@pytest.mark.parametrize("option", ["openai:gpt-4.1", "openai:gpt-4.1=fast", "=500", "m=0"])
def test_the_cli_says_how_to_write_a_rate_limit(project: Path, option: str) -> None:
    result = CliRunner().invoke(app, ["eval", "run", "any", "--rate-limit", option])
    assert result.exit_code == 2 and "MODEL=REQUESTS_PER_MINUTE" in result.output
