"""The full data sets for the tests that need them: ``--data DIR``, else ``TETHER_DATA``, else
``../shared/data`` beside the checkout (the rule bench/_common.py follows for benchmarks).

A test asks for a file with the ``data_sets`` fixture: ``data_sets.path("sroie/x.jsonl")``.
Where the data sits at the default place and a file is missing there, the test is skipped
and the run ends with one line naming what is missing and how to get it. Where ``--data`` or
``TETHER_DATA`` named the place, a missing file fails the test: asked-for data that is not
there is an error, so a CI run cannot pass by skipping.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data"
ENV = "TETHER_DATA"
HOW = "see tests/fixtures/README.md for where each data set comes from"
_missing = pytest.StashKey[set[str]]()


@dataclass(frozen=True)
class DataSets:
    root: Path
    named: bool  # given by --data or TETHER_DATA, not the default place
    config: pytest.Config

    def path(self, relative: str) -> Path:
        """The file ``relative`` under the data folder; skips the test (or fails it, when the
        folder was named) if the file is not there."""
        found = self.root / relative
        if found.is_file():
            return found
        if self.named:
            pytest.fail(
                f"{relative} is not in {self.root} (named by --data or {ENV}); put the data "
                f"sets there or point --data at them ({HOW})",
                pytrace=False,
            )
        self.config.stash[_missing].add(relative)
        pytest.skip(f"needs {relative} from the full data sets, not in {self.root}")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--data",
        default=None,
        metavar="DIR",
        help=f"the full data sets (default: ${ENV}, else ../shared/data beside the checkout)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_missing] = set()


def located(option: str | None) -> tuple[Path, bool]:
    """The data folder and whether it was named (flag or environment) rather than defaulted."""
    given = option or os.environ.get(ENV)
    return (Path(given).expanduser(), True) if given else (DEFAULT, False)


@pytest.fixture(scope="session")
def data_sets(request: pytest.FixtureRequest) -> DataSets:
    root, named = located(request.config.getoption("--data"))
    return DataSets(root, named, request.config)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    missing = terminalreporter.config.stash.get(_missing, set())
    if missing:
        terminalreporter.write_line(
            f"skipped the tests that need the full data sets: {', '.join(sorted(missing))} "
            f"not in {DEFAULT}; put them there, or point --data or {ENV} at them ({HOW})"
        )
