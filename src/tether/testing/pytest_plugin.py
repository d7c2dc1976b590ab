"""pytest fixtures that make a test suite deterministic and offline with cassettes.

``tether_cassette`` replays ``cassettes/<test module>/<test name>.json`` beside the test
file, and fails the test when a call is not on the cassette or a recorded call goes unused.
Record missing cassettes with ``pytest --tether-record=missing`` (``all`` re-records).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.models.middleware.cassette import Cassette, use


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--tether-record",
        choices=("none", "missing", "all"),
        default="none",
        help="tether cassettes: record the missing ones, or all of them (default: replay only)",
    )


def cassette_path(request: pytest.FixtureRequest) -> Path:
    test_file = Path(str(request.node.path))
    name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    return test_file.parent / "cassettes" / test_file.stem / f"{name}.json"


@pytest.fixture
def tether_cassette(request: pytest.FixtureRequest) -> Iterator[Cassette]:
    """Every model call in the test answers from (or is recorded to) this test's cassette."""
    path = cassette_path(request)
    option = request.config.getoption("--tether-record")
    recording = option == "all" or (option == "missing" and not path.exists())
    if not recording and not path.exists():
        pytest.fail(
            f"no cassette at {path}; record it once with `pytest --tether-record=missing`",
            pytrace=False,
        )
    cassette = Cassette(path, "record" if recording else "replay")
    if recording:
        cassette.save()
    with use(cassette):
        yield cassette
    if not recording and (unused := cassette.unused()):
        pytest.fail(
            f"{len(unused)} recorded calls in {path} were never made; the code under test "
            "changed: re-record with `pytest --tether-record=all`",
            pytrace=False,
        )
