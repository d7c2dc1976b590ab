"""Statistics for eval runs: confidence intervals, paired comparisons, regression gates.

- A metric's 95% interval: Wilson's score interval when every value is 0 or 1 (a pass
  rate; exact enough at the ends, where the normal approximation gives intervals outside
  0..1), else a percentile bootstrap of the mean.
- Two runs on the same samples compare pairwise, sample by sample: McNemar's exact test on
  the samples where pass/fail differs (for 0/1 metrics), a paired bootstrap otherwise; the
  interval of the difference is always the paired bootstrap's.
- A gate fails on a regression only when the drop is larger than the allowed one *and*
  statistically significant, so noise between two equal versions does not fail CI.

numpy only (already a core dependency); resampling is seeded, so a report is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

CONFIDENCE = 0.95
RESAMPLES = 5000
DRAWN_AT_ONCE = 1 << 18  # resampled values in memory at a time (2 MiB), whatever n is
Z95 = 1.959963984540054


class Estimate(BaseModel):
    """A metric's mean over samples, with its confidence interval."""

    mean: float
    low: float
    high: float
    n: int
    method: str  # "wilson" | "bootstrap" | "single"


class Comparison(BaseModel):
    """Run B against run A on the same samples: B - A, its interval, and whether it is
    more than noise."""

    metric: str
    a: float
    b: float
    difference: float
    low: float
    high: float
    p_value: float
    test: str  # "mcnemar" | "paired bootstrap"
    n: int
    significant: bool


def _binary(values: Sequence[float]) -> bool:
    return all(v in (0.0, 1.0) for v in values)


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def estimate(values: Sequence[float], *, seed: int = 0, resamples: int = RESAMPLES) -> Estimate:
    """The mean of ``values`` with its 95% interval."""
    n = len(values)
    if n == 0:
        return Estimate(mean=0.0, low=0.0, high=0.0, n=0, method="single")
    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if n == 1:
        return Estimate(mean=mean, low=mean, high=mean, n=1, method="single")
    if _binary(values):
        low, high = wilson(int(data.sum()), n)
        return Estimate(mean=mean, low=low, high=high, n=n, method="wilson")
    means = resampled_means(data, seed, resamples)
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Estimate(mean=mean, low=float(low), high=float(high), n=n, method="bootstrap")


def resampled_means(data: np.ndarray, seed: int, resamples: int) -> np.ndarray:
    """The means of ``resamples`` bootstrap resamples of ``data``, drawn a block of rows at
    a time: the same draws as one (resamples x n) array, without holding it (at 10,000
    samples that array alone is 400 MB)."""
    n = len(data)
    rng = np.random.default_rng(seed)
    rows = max(1, DRAWN_AT_ONCE // n)
    means = np.empty(resamples)
    for start in range(0, resamples, rows):
        stop = min(resamples, start + rows)
        means[start:stop] = data[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return means


def mcnemar(a: Sequence[float], b: Sequence[float]) -> float:
    """McNemar's exact two-sided p-value: of the samples one run passes and the other fails,
    is the split further from even than chance would make it?"""
    only_a = sum(1 for x, y in zip(a, b, strict=True) if x == 1.0 and y == 0.0)
    only_b = sum(1 for x, y in zip(a, b, strict=True) if x == 0.0 and y == 1.0)
    discordant = only_a + only_b
    if discordant == 0:
        return 1.0
    smaller = min(only_a, only_b)
    tail = sum(math.comb(discordant, i) for i in range(smaller + 1)) / (1 << discordant)
    return min(1.0, 2 * tail)


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], *, seed: int = 0, resamples: int = RESAMPLES
) -> tuple[float, float, float]:
    """The 95% interval of mean(B - A) over resampled samples, and a two-sided p-value
    (twice the share of resamples on the other side of zero from the observed difference)."""
    diffs = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    means = resampled_means(diffs, seed, resamples)
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    observed = float(diffs.mean())
    if observed == 0 and not diffs.any():
        return float(low), float(high), 1.0
    crossing = float((means <= 0).mean() if observed > 0 else (means >= 0).mean())
    return float(low), float(high), min(1.0, 2 * crossing)


def compare(
    metric: str, a: Sequence[float], b: Sequence[float], *, seed: int = 0, alpha: float = 0.05
) -> Comparison:
    """Run B against run A, sample by sample (``a[i]`` and ``b[i]`` are the same sample)."""
    if len(a) != len(b):
        raise ValueError(f"paired values differ in length ({len(a)} and {len(b)})")
    if not a:
        raise ValueError(f"no samples to compare on {metric}")
    low, high, p_boot = paired_bootstrap(a, b, seed=seed)
    binary = _binary(a) and _binary(b)
    p = mcnemar(a, b) if binary else p_boot
    mean_a, mean_b = float(np.mean(a)), float(np.mean(b))
    return Comparison(
        metric=metric,
        a=mean_a,
        b=mean_b,
        difference=mean_b - mean_a,
        low=low,
        high=high,
        p_value=p,
        test="mcnemar" if binary else "paired bootstrap",
        n=len(a),
        significant=p < alpha,
    )


def regressed(comparison: Comparison, max_drop: float, *, higher_is_better: bool = True) -> bool:
    """True when B is worse than A by more than ``max_drop`` and the change is significant."""
    drop = -comparison.difference if higher_is_better else comparison.difference
    return comparison.significant and drop > max_drop
