"""Intervals and paired comparisons: right on known cases, and a gate that ignores noise
but catches a real drop."""

from __future__ import annotations

import numpy as np
import pytest

from tether.evals.stats import compare, estimate, mcnemar, regressed, wilson


def test_a_pass_rate_gets_wilsons_interval_inside_zero_and_one() -> None:
    est = estimate([1.0] * 10)
    assert est.method == "wilson" and est.mean == 1.0 and est.high == 1.0
    assert 0.69 < est.low < 0.73  # Wilson's 95% lower bound for 10 of 10 is 0.722
    low, high = wilson(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-3) and high == pytest.approx(0.5962, abs=1e-3)


def test_a_continuous_metric_gets_a_seeded_bootstrap_interval() -> None:
    values = list(np.random.default_rng(3).normal(0.6, 0.1, 400))
    est = estimate(values, seed=1)
    assert est.method == "bootstrap" and est.low < est.mean < est.high
    assert est.high - est.low == pytest.approx(2 * 1.96 * 0.1 / 20, rel=0.2)  # 2 z sd/sqrt(n)
    assert estimate(values, seed=1) == est  # seeded: the same report every time
    assert estimate([]).n == 0 and estimate([0.4]).low == 0.4


def test_mcnemar_exact_on_known_counts() -> None:
    # 10 discordant pairs split 9/1: two-sided exact p = 2 * (1 + 10) / 1024.
    a = [1.0] * 9 + [0.0] * 1 + [1.0] * 5
    b = [0.0] * 9 + [1.0] * 1 + [1.0] * 5
    assert mcnemar(a, b) == pytest.approx(22 / 1024)
    assert mcnemar([1.0, 0.0], [1.0, 0.0]) == 1.0


def flipped(base: np.ndarray, rng: np.random.Generator, down: int, up: int) -> np.ndarray:
    """``base`` with ``down`` passes turned to fails and ``up`` fails to passes."""
    out = base.copy()
    passes, fails = np.flatnonzero(base == 1), np.flatnonzero(base == 0)
    out[rng.choice(passes, down, replace=False)] = 0
    out[rng.choice(fails, up, replace=False)] = 1
    return out


def test_the_gate_passes_equal_versions_at_least_95_of_100_times() -> None:
    failed = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        a = (rng.random(500) < 0.8).astype(float)
        # Version B differs on 30 samples, as many better as worse: no true difference.
        changes = int(rng.binomial(30, 0.5))
        b = flipped(a, rng, changes, 30 - changes)
        failed += regressed(compare("accuracy", list(a), list(b), seed=seed), max_drop=0.02)
    assert failed <= 5


def test_the_gate_fails_a_real_five_point_drop_on_500_samples() -> None:
    caught = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        a = (rng.random(500) < 0.8).astype(float)
        b = flipped(a, rng, 35, 10)  # 25 net samples lost: 5 points
        result = compare("accuracy", list(a), list(b), seed=seed)
        assert result.difference == pytest.approx(-0.05)
        assert result.low < -0.02 and result.high < 0
        caught += regressed(result, max_drop=0.02)
    assert caught == 20


def test_compare_refuses_unpaired_runs() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        compare("f1", [0.1, 0.2], [0.3])
    result = compare("f1", [0.2, 0.4, 0.6] * 20, [0.3, 0.5, 0.7] * 20)
    assert result.test == "paired bootstrap" and result.significant
    assert result.difference == pytest.approx(0.1) and result.low == pytest.approx(0.1)
    assert not regressed(result, 0.0) and regressed(result, 0.0, higher_is_better=False)


def test_the_bootstrap_draws_in_blocks_the_same_resamples_in_bounded_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tracemalloc

    from tether.evals import stats

    values = np.random.default_rng(1).random(4000)
    whole = values[np.random.default_rng(0).integers(0, 4000, size=(5000, 4000))].mean(axis=1)
    tracemalloc.start()
    blocks = stats.resampled_means(values, 0, 5000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert np.array_equal(blocks, whole)
    assert peak < 40 * 2**20  # the (5000 x 4000) draw alone is 160 MB, its values as much
    monkeypatch.setattr(stats, "DRAWN_AT_ONCE", 3 * 4000 + 5)  # blocks of 3 rows, uneven
    assert np.array_equal(stats.resampled_means(values, 0, 5000), whole)
    low, high = np.quantile(whole, [0.025, 0.975])
    found = stats.estimate(list(values))
    assert (found.low, found.high) == pytest.approx((low, high))
