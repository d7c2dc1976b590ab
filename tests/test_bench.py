"""The benchmarks' shared statistics and verdicts, their result files, and the structured
extraction benchmark's compact per-receipt samples (bench/ scripts, imported from there)."""

from __future__ import annotations

import argparse
import json
import math
import random
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def common(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/_common.py, with bench/ on the path as when a script runs from there."""
    monkeypatch.syspath_prepend(str(BENCH))
    import _common

    return _common


def binomial_coverage(n: int, k: int) -> float:
    """The chance that [x_(k), x_(n-k+1)] holds the median of a continuous distribution."""
    return 1 - 2 * sum(math.comb(n, j) for j in range(k)) / 2**n


@pytest.mark.parametrize("n", [6, 10, 20, 30, 61])
def test_the_median_interval_covers_at_least_95_percent_and_no_more_than_needed(
    common: ModuleType, n: int
) -> None:
    values = [float(v) for v in range(1, n + 1)]
    random.Random(n).shuffle(values)
    interval = common.median_interval(values)
    assert interval is not None
    low, high = interval
    k = int(low)  # the values are their own ranks
    assert high == n + 1 - k  # symmetric around the median
    assert binomial_coverage(n, k) >= 0.95
    assert binomial_coverage(n, k + 1) < 0.95  # one rank narrower would not do
    if n == 30:
        assert (low, high) == (10, 21)


def test_too_few_values_give_no_interval(common: ModuleType) -> None:
    assert common.median_interval([1.0, 2.0, 3.0, 4.0, 5.0]) is None


def test_how_far_off_one_run_is_does_not_move_the_interval(common: ModuleType) -> None:
    ratios = [0.99, 1.0, 1.01] * 10
    spike = [*ratios[:-1], 0.2]  # a load spike spoilt one run
    just_below = [*ratios[:-1], 0.98]
    assert common.median_interval(spike) == common.median_interval(just_below) == (0.99, 1.0)


def test_a_verdict_on_an_interval_passes_misses_or_stays_undecided(common: ModuleType) -> None:
    verdict = common.verdict_of
    assert verdict((0.98, 1.02), 0.97, higher_is_better=True) is True
    assert verdict((0.90, 0.96), 0.97, higher_is_better=True) is False
    assert verdict((0.95, 1.00), 0.97, higher_is_better=True) is None
    assert verdict((5.0, 9.0), 67.0, higher_is_better=False) is True
    assert verdict((70.0, 90.0), 67.0, higher_is_better=False) is False
    assert verdict((60.0, 70.0), 67.0, higher_is_better=False) is None
    assert verdict(None, 0.97, higher_is_better=True) is None


def row(common: ModuleType, **fields: Any) -> Any:
    base = dict(case="c", settings="s", tether=1.0, anchor=1.0, unit="x", ratio=1.0, target="t")
    return common.Row(**{**base, **fields})


def arguments(quick: bool = False, strict: bool = True, limit: int | None = None) -> Any:
    return argparse.Namespace(
        quick=quick, strict=strict, limit=limit, runs=None, default_runs=5, quick_runs=1
    )


def test_strict_fails_on_a_judged_miss_or_undecided_target_only(common: ModuleType) -> None:
    passed, missed = row(common, passed=True), row(common, passed=False)
    undecided = row(common, passed=None, undecided=True)
    informational = row(common, passed=None)
    noisy_miss = row(common, passed=False, judged=False)
    assert [r.verdict for r in (passed, missed, undecided, informational, noisy_miss)] == [
        "PASS", "MISS", "UNDECIDED", "-", "(MISS)",
    ]  # fmt: skip
    assert common.finish(arguments(), [passed, informational, noisy_miss]) == 0
    assert common.finish(arguments(), [passed, missed]) == 1
    assert common.finish(arguments(), [undecided]) == 1
    assert common.finish(arguments(strict=False), [missed]) == 0


def test_smoke_runs_write_to_scratch_and_full_runs_beside_it(
    common: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(common, "ROOT", tmp_path)
    rows = [row(common, passed=True)]
    assert common.write_result("b", arguments(), rows, {}) == tmp_path / "results" / "b.json"
    quick = common.write_result("b", arguments(quick=True), rows, {})
    assert quick == tmp_path / "results" / "scratch" / "b.json"
    sliced = common.write_result("b", arguments(limit=20), rows, {})
    assert sliced.parent.name == "scratch"


def test_the_result_file_is_json_with_a_list_of_numbers_per_line(common: ModuleType) -> None:
    payload = {"rows": [{"case": "é", "interval": (0.1, 0.2)}], "samples": {"s": [1 / 3, 2, None]}}
    text = common.compact_json(payload)
    assert json.loads(text) == {
        "rows": [{"case": "é", "interval": [0.1, 0.2]}],
        "samples": {"s": [0.333333, 2, None]},
    }
    assert '  "s": [0.333333, 2, null]' in text.splitlines()


def test_extraction_samples_read_back_to_the_same_figures(common: ModuleType) -> None:
    import structured_extraction as bench

    receipts = [
        {"id": "000", "gold": {"company": "A", "date": "1", "address": "X", "total": "9.00"}},
        {"id": "001", "gold": {"company": "B", "date": "2", "total": "RM 3"}},  # no address
    ]
    right = {"company": "a", "date": "1", "address": "Y", "total": "9"}
    outcomes = {
        "grammar": [
            bench.Outcome(1.5, 60, 1, right, cached=False),
            bench.Outcome(2.25, 70, 1, {**right, "total": "3.00"}, cached=True),
        ],
        "unconstrained": [
            bench.Outcome(3.0, 160, 1, None, error="JSONDecodeError: cut"),
            bench.Outcome(3.5, 160, 1, None, error="ValueError: no"),
        ],
    }
    for found in outcomes.values():
        for outcome, receipt in zip(found, receipts, strict=True):
            outcome.hits = bench.hits_of(outcome, receipt)
    assert [o.hits for o in outcomes["grammar"]] == ["1101", "00-1"]
    stored = json.loads(common.compact_json(bench.stored(outcomes, receipts)))
    back = bench.read_back(stored)
    for name, found in outcomes.items():
        assert bench.scores(back[name]) == bench.scores(found)
    assert bench.scores(back["grammar"])["exact"] == {
        "company": 0.5, "date": 0.5, "address": 0.0, "total": 1.0,
    }  # fmt: skip


def test_extraction_pairs_sharing_a_prompt_swap_places_each_receipt(common: ModuleType) -> None:
    import structured_extraction as bench

    names = ["grammar", "repair", "unconstrained"] + [bench.peer_name(m) for m in bench.PEER_MODES]
    even, cached_even = bench.order_for(0, names)
    odd, cached_odd = bench.order_for(1, names)
    json_mode, md_json = bench.peer_name("JSON"), bench.peer_name("MD_JSON")
    assert even[:2] == ["grammar", "unconstrained"] and odd[:2] == ["unconstrained", "grammar"]
    assert even[-2:] == [json_mode, md_json] and odd[-2:] == [md_json, json_mode]
    assert cached_even == {"unconstrained", md_json} and cached_odd == {"grammar", json_mode}
    assert sorted(even) == sorted(odd) == sorted(names)
    alone, cached = bench.order_for(0, ["grammar", "unconstrained", bench.peer_name("TOOLS")])
    assert alone == ["grammar", "unconstrained", bench.peer_name("TOOLS")]
    assert cached == {"unconstrained"}


def test_the_plain_receipt_follows_the_pair_whose_prompt_it_shares(common: ModuleType) -> None:
    import structured_extraction as bench

    names = ["grammar", bench.PLAIN, "repair", "unconstrained"]
    even, cached_even = bench.order_for(0, names)
    odd, cached_odd = bench.order_for(1, names)
    assert even[:3] == ["grammar", "unconstrained", bench.PLAIN]
    assert odd[:3] == ["unconstrained", "grammar", bench.PLAIN]
    assert cached_even == {"unconstrained", bench.PLAIN}  # its prompt is the one just seen
    assert cached_odd == {"grammar", bench.PLAIN}
