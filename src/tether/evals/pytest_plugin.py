"""Eval suites as pytest tests, failing on the same gates as ``tether eval run``.

``pytest --tether-evals evals`` collects every Suite in ``evals/*.py`` as one test that runs
it (``--tether-eval-limit N`` for a slice) and fails when one of the suite's ``gates`` does;
in a test of your own, ``assert_gates(suite, "exact>=0.8")`` does the same. Runs are stored
and their model calls cached as usual, so an unchanged suite re-runs in seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported when used: every pytest run loads this plugin
    from tether.evals.gates import Verdict
    from tether.evals.suite import Suite
    from tether.evals.summary import Summary


class GateFailed(AssertionError):
    def __init__(self, suite: str, verdicts: Sequence[Verdict]) -> None:
        lines = [f"{'PASS' if v.passed else 'FAIL'} {v.what}"
                 + (f" = {v.value:.3f}" if v.value is not None else "")
                 + (f" ({v.detail})" if v.detail else "") for v in verdicts]  # fmt: skip
        super().__init__(f"suite {suite!r} failed its gates:\n" + "\n".join(lines))


def assert_gates(suite: Suite, *gates: str, limit: int | None = None) -> Summary:
    """Run ``suite`` and fail (AssertionError) when one of ``gates`` (and its own) fails."""
    from tether.evals.gates import Gate, check
    from tether.evals.runner import run
    from tether.evals.summary import summarize

    parsed = [Gate.parse(g) for g in [*suite.gates, *gates]]
    result = run(suite, limit=limit)
    summary = summarize(result, samples=suite.dataset.samples, scorers=suite.scorers)
    verdicts = check(summary, parsed)
    if not all(v.passed for v in verdicts):
        raise GateFailed(suite.name, verdicts)
    return summary


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tether evals")
    group.addoption(
        "--tether-evals",
        metavar="DIR",
        default=None,
        help="run the eval suites in DIR/*.py as tests, each failing when a gate of it does",
    )
    group.addoption(
        "--tether-eval-limit",
        type=int,
        default=None,
        metavar="N",
        help="only the first N samples of each suite",
    )


class SuiteItem(pytest.Item):
    def __init__(self, *, suite: Suite, limit: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.limit = limit

    def runtest(self) -> None:
        assert_gates(self.suite, limit=self.limit)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, GateFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"eval suite {self.suite.name}"


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    folder = config.getoption("--tether-evals")
    if folder is None:
        return
    from tether.evals.discover import discover

    limit = config.getoption("--tether-eval-limit")
    for name, suite in sorted(discover(folder).items()):
        items.append(
            SuiteItem.from_parent(
                session, name=f"eval[{name}]", suite=suite, limit=limit, path=Path(folder)
            )
        )
