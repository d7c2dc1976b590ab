"""``tether models`` in terminals of different widths: ids and URLs are never broken."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli.main import app


def models_at(width: int) -> str:
    """``tether models --check`` as a terminal ``width`` columns wide shows it."""
    done = subprocess.run(
        [sys.executable, "-m", "tether.cli.main", "models", "--check"],
        env={**os.environ, "COLUMNS": str(width)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def rows(project: Path) -> list[dict[str, str]]:
    """The rows of the project `tether init` writes: an alias, an endpoint, a router."""
    assert CliRunner().invoke(app, ["init"]).exit_code == 0
    listed = CliRunner().invoke(app, ["models", "--json"])
    assert listed.exit_code == 0, listed.output
    return list(json.loads(listed.stdout))


def targets(rows: list[dict[str, str]]) -> list[str]:
    """What the target column holds: an alias's id, an endpoint's URL, a router's routes."""
    found: list[str] = []
    for row in rows:
        if row["kind"] in ("alias", "endpoint"):
            found.append(row["target"])
        elif row["kind"] == "router":
            found += row["target"].split(", ")
    return found


@pytest.mark.parametrize("width", [80, 60, 40])
def test_every_id_shows_whole_on_one_line(rows: list[dict[str, str]], width: int) -> None:
    shown = models_at(width)
    lines = shown.splitlines()
    assert all(len(line) <= width for line in lines), shown
    for row in rows:
        whole = re.compile(rf"(?<!\S){re.escape(row['id'])}(?!\S)")
        assert any(whole.search(line) for line in lines), (row["id"], shown)
    table = shown.split("prices in USD")[0]
    header = next(line.split() for line in lines if line.split()[:1] in (["kind"], ["id"]))
    if "target" in header:  # else the note under the table says it was left out
        for target in targets(rows):
            cut = any(target[:k] + "…" in table for k in range(1, len(target)))
            assert target in table or cut, (target, shown)


def test_a_wide_terminal_leaves_nothing_out(rows: list[dict[str, str]]) -> None:
    shown = models_at(140)
    assert "left out" not in shown
    assert "…" not in shown
    for target in targets(rows):
        assert target in shown
    assert " kind " in shown and " $/M out " in shown


def test_the_default_model_is_named_once_in_the_check_findings(
    rows: list[dict[str, str]],
) -> None:
    shown = models_at(140)
    assert "verified  (local:smollm2)" in shown
