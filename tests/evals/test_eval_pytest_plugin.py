"""Suites as pytest tests: a suite passes or fails on its gates, from pytest."""

from __future__ import annotations

import pytest

from tether.evals import Dataset, ExactMatch
from tether.evals.pytest_plugin import GateFailed, assert_gates
from tether.evals.suite import Suite

pytest_plugins = ["pytester"]

SUITES = """
from tether.evals import Dataset, ExactMatch
from tether.evals.suite import Suite

data = Dataset.from_list(
    [{"id": str(i), "input": f"w{i}", "expected": f"W{i}"} for i in range(20)], name="words"
)
good = Suite("good", data, str.upper, [ExactMatch()], gates=["exact>=0.9"])
bad = Suite("bad", data, lambda t: "?" if t.endswith("3") else t.upper(), [ExactMatch()],
            gates=["exact>=0.99"])
"""


def test_each_suite_is_a_test_that_fails_on_its_gates(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    (pytester.path / "evals").mkdir()
    (pytester.path / "evals" / "words.py").write_text(SUITES)
    result = pytester.runpytest("-p", "no:cacheprovider", "--tether-evals", "evals",
                                "--tether-eval-limit", "10")  # fmt: skip
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*suite 'bad' failed its gates:*", "*FAIL exact>=0.99 = 0.900*"])
    plain = pytester.runpytest("-p", "no:cacheprovider")  # without the option: no suites
    assert "eval[" not in plain.stdout.str()


def test_assert_gates_in_a_test_of_your_own(project: object) -> None:
    data = Dataset.from_list([{"input": "a", "expected": "A"}, {"input": "b", "expected": "B"}])
    summary = assert_gates(Suite("s", data, str.upper, [ExactMatch()]), "exact>=1")
    assert summary.metrics["exact"].estimate.mean == 1.0
    with pytest.raises(GateFailed, match=r"FAIL exact_raw>0\.5 = 0\.500"):
        assert_gates(Suite("t", data, lambda t: t.upper() if t == "a" else t,
                           [ExactMatch(normalized=False)]), "exact_raw>0.5")  # fmt: skip
