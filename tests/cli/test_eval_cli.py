"""``tether eval``, in-process: suites from evals/, gates that fail CI only when they should."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from tether.cli.main import app

SUITE = """
from tether.evals import Dataset, ExactMatch
from tether.evals.suite import Suite

rows = [
    {"id": str(i), "input": f"w{i}", "expected": f"W{i}", "category": "even" if i % 2 else "odd"}
    for i in range(60)
]
data = Dataset.from_list(rows, name="words")


def good(text):
    return text.upper()


def worse(text):
    return "?" if text.endswith(("3", "7")) else text.upper()


words = Suite("words", data, good, [ExactMatch()])
words_worse = Suite("words-worse", data, worse, [ExactMatch()])
"""


def tether(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def suites(project: Path) -> None:
    (project / "evals").mkdir()
    (project / "evals" / "words.py").write_text(SUITE)


def test_list_run_show_and_a_passing_gate(project: Path) -> None:
    suites(project)
    listed = tether("eval", "list")
    assert listed.exit_code == 0 and "words  60 samples, scored by exact" in listed.stdout
    ran = tether("eval", "run", "words", "--gate", "exact>=0.9", "--json")
    assert ran.exit_code == 0, ran.output
    payload = json.loads(ran.stdout)
    assert payload["summary"]["metrics"]["exact"]["estimate"]["mean"] == 1.0
    assert payload["gates"][0]["passed"] is True
    run_id = payload["summary"]["run_id"]
    shown = tether("eval", "show", run_id[:5])
    assert shown.exit_code == 0 and "category=even" in shown.stdout and "exact" in shown.stdout


def test_a_missed_threshold_and_a_significant_regression_exit_1(project: Path) -> None:
    suites(project)
    base = json.loads(tether("eval", "run", "words", "--json").stdout)["summary"]["run_id"]
    # 12 of 60 worse (20 points): far beyond the allowed drop and beyond noise.
    worse = tether("eval", "run", "words-worse", "--baseline", base, "--max-drop", "0.02")
    assert worse.exit_code == 1
    assert "FAIL exact against the baseline" in worse.stdout and "mcnemar" in worse.stdout
    missed = tether("eval", "run", "words-worse", "--gate", "exact>=0.9")
    assert missed.exit_code == 1 and "FAIL exact>=0.9 = 0.800" in missed.stdout
    same = tether("eval", "run", "words", "--baseline", base, "--max-drop", "0.02")
    assert same.exit_code == 0 and "PASS exact against the baseline" in same.stdout
    later = json.loads(tether("eval", "run", "words-worse", "--json").stdout)["summary"]
    compared = tether("eval", "compare", base, later["run_id"], "--json")
    assert compared.exit_code == 0
    (row,) = json.loads(compared.stdout)
    assert round(row["difference"], 6) == -0.2 and row["significant"] and row["test"] == "mcnemar"
    table = tether("eval", "compare", base, later["run_id"])
    assert table.exit_code == 0 and "-0.200" in table.stdout


def test_bad_gates_and_names_are_clear_errors_before_anything_runs(project: Path) -> None:
    suites(project)
    unknown = tether("eval", "run", "words", "--gate", "accuracy>=0.8")
    assert unknown.exit_code == 1
    assert "metric 'accuracy', which this run does not have; its metrics: exact" in unknown.stderr
    garbled = tether("eval", "run", "words", "--gate", "exact is high")
    assert garbled.exit_code == 1 and "write METRIC OP NUMBER" in garbled.stderr
    missing = tether("eval", "run", "nope")
    assert missing.exit_code == 1 and "no suite named 'nope'" in missing.stderr
    assert "words, words-worse" in missing.stderr
    no_run = tether("eval", "show", "zzzz")
    assert no_run.exit_code == 1 and "no eval run 'zzzz'" in no_run.stderr


def test_without_an_evals_folder_it_says_where_suites_go(project: Path) -> None:
    result = tether("eval", "list")
    assert result.exit_code == 1 and "put suites in evals/*.py" in result.stderr


def test_a_backend_that_is_not_one_and_an_address_without_ray_are_refused(
    project: Path,
) -> None:
    wrong = tether("eval", "run", "letters", "--backend", "spark")
    assert wrong.exit_code == 2 and "choose local or ray" in wrong.output
    lonely = tether("eval", "run", "letters", "--address", "auto")
    assert lonely.exit_code == 2 and "--backend ray" in lonely.output
