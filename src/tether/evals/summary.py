"""What a run says: each metric's mean with its 95% interval, the scorers' own run-level
metrics, pass@k and pass^k over epochs, a breakdown by category, tokens and cost; and how
two runs on the same samples compare.

A sample's value for a metric is its mean over epochs, so intervals and paired tests count
samples, not repetitions. Error scores (a scorer or the task failed) count as 0 and are
counted apart.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from tether.errors import ConfigError
from tether.evals.dataset import Sample
from tether.evals.runner import Run
from tether.evals.scorers.base import Score, Scorer
from tether.evals.stats import Comparison, Estimate, compare, estimate

CATEGORY_KEYS = ("category", "difficulty")


class Metric(BaseModel):
    name: str
    estimate: Estimate
    errors: int = 0
    pass_at_k: float | None = None  # some epoch passed (unbiased estimator, k = epochs)
    pass_all_k: float | None = None  # every epoch passed (pass^k)
    by_category: dict[str, Estimate] = Field(default_factory=dict)


class Summary(BaseModel):
    run_id: str
    suite: str
    samples: int
    epochs: int
    metrics: dict[str, Metric]
    extra: dict[str, Any] = Field(default_factory=dict)  # scorers' run-level metrics
    task_errors: int = 0
    cost_usd: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: Estimate | None = None


def per_sample(run: Run) -> dict[str, dict[str, float]]:
    """metric -> sample id -> the sample's value, averaged over its epochs."""
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for result in run.iter_results():
        for name, score in result.scores.items():
            sums[name][result.sample_id].append(score.value)
    return _means(sums)


def _means(sums: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    return {
        name: {sid: sum(v) / len(v) for sid, v in by_sample.items()}
        for name, by_sample in sums.items()
    }


def _pass_at(n: int, c: int, k: int) -> float:
    return 1.0 if n - c < k else 1 - math.comb(n - c, k) / math.comb(n, k)


def _pass_all(n: int, c: int, k: int) -> float:
    return math.comb(c, k) / math.comb(n, k)


def summarize(
    run: Run, *, samples: Sequence[Sample] = (), scorers: Sequence[Scorer] = ()
) -> Summary:
    """The run's figures; ``samples`` (for categories) and ``scorers`` (for their
    run-level metrics) are optional, as a stored run may be read without its suite.

    One pass over the results, keeping only the numbers the figures need (and the scores of
    scorers with run-level metrics), so a large run is summarised without holding it."""
    epochs = int(run.info.config.get("epochs", 1))
    aggregating = {s.name: s for s in scorers if type(s).aggregate is not Scorer.aggregate}
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    errors: dict[str, int] = defaultdict(int)
    binary: dict[str, bool] = defaultdict(lambda: True)
    kept: dict[str, list[tuple[str, Score]]] = defaultdict(list)
    sample_ids: set[str] = set()
    task_errors = input_tokens = output_tokens = 0
    cost, unpriced = 0.0, False
    latencies: list[float] = []
    for r in run.iter_results():
        sample_ids.add(r.sample_id)
        task_errors += r.outcome.error is not None
        input_tokens += r.outcome.input_tokens
        output_tokens += r.outcome.output_tokens
        unpriced = unpriced or r.outcome.cost_usd is None
        cost += r.outcome.cost_usd or 0.0
        latencies.append(r.outcome.latency_s)
        for name, score in r.scores.items():
            values[name][r.sample_id].append(score.value)
            errors[name] += score.error is not None
            binary[name] = binary[name] and score.value in (0.0, 1.0)
            if name in aggregating:
                kept[name].append((r.sample_id, score))
    categories = {s.id: _category(s) for s in samples}
    metrics: dict[str, Metric] = {}
    for name, by_sample in _means(values).items():
        metric = Metric(name=name, estimate=estimate(list(by_sample.values())), errors=errors[name])
        if binary[name] and epochs > 1:
            passes = values[name].values()
            at = [_pass_at(len(v), int(sum(v)), epochs) for v in passes if v]
            every = [_pass_all(len(v), int(sum(v)), epochs) for v in passes if len(v) >= epochs]
            metric.pass_at_k = sum(at) / len(at) if at else None
            metric.pass_all_k = sum(every) / len(every) if every else None
        grouped: dict[str, list[float]] = defaultdict(list)
        for sid, value in by_sample.items():
            if (category := categories.get(sid)) is not None:
                grouped[category].append(value)
        metric.by_category = {c: estimate(v) for c, v in sorted(grouped.items())}
        metrics[name] = metric
    extra: dict[str, Any] = {}
    by_id = {s.id: s for s in samples}
    for name, scorer in aggregating.items():
        scores = [score for _, score in kept[name]]
        related = [by_id[sid] for sid, _ in kept[name] if sid in by_id]
        for key, value in scorer.aggregate(related, scores).items():
            extra[f"{name}.{key}" if not key.startswith(name) else key] = value
    return Summary(
        run_id=run.id,
        suite=run.info.suite,
        samples=len(sample_ids),
        epochs=epochs,
        metrics=metrics,
        extra=extra,
        task_errors=task_errors,
        cost_usd=None if unpriced else cost,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        latency_s=estimate(latencies) if latencies else None,
    )


def _category(sample: Sample) -> str | None:
    for key in CATEGORY_KEYS:
        if key in sample.metadata and sample.metadata[key] is not None:
            return f"{key}={sample.metadata[key]}"
    return None


def compare_runs(a: Run, b: Run, *, metrics: Sequence[str] | None = None) -> list[Comparison]:
    """Run B against run A, sample by sample, on every metric both have (or ``metrics``).
    Runs on different versions of the dataset are refused: their samples do not pair."""
    if a.info.dataset_version != b.info.dataset_version:
        raise ConfigError(
            f"runs {a.id} and {b.id} ran on different versions of dataset {a.info.dataset!r} "
            f"({a.info.dataset_version} and {b.info.dataset_version}); their samples do not "
            "pair. Run both versions of the task on one version of the dataset"
        )
    va, vb = per_sample(a), per_sample(b)
    names = list(metrics) if metrics is not None else [m for m in va if m in vb]
    out = []
    for name in names:
        if name not in va or name not in vb:
            known = ", ".join(sorted(set(va) & set(vb))) or "none"
            raise ConfigError(f"metric {name!r} is not in both runs (both have: {known})")
        shared = sorted(set(va[name]) & set(vb[name]))
        out.append(compare(name, [va[name][s] for s in shared], [vb[name][s] for s in shared]))
    return out
