"""Reports: JSON that reads back, and one HTML file with its plots and the diff of two runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from tether.cli.main import app
from tether.evals import Dataset, ExactMatch
from tether.evals.report import html_report, to_json
from tether.evals.runner import run
from tether.evals.suite import Suite
from tether.evals.summary import summarize

ROWS = [
    {"id": f"s{i}", "input": f"w{i}", "expected": f"W{i}", "category": "a" if i % 2 else "b"}
    for i in range(30)
]


def test_the_html_report_stands_alone_with_plots_and_regressions_first(project: Path) -> None:
    data = Dataset.from_list(ROWS, name="words")
    # The baseline gets the 3s wrong, the new run the 7s: three regressions, three fixes.
    first = run(Suite("words", data, lambda t: "?" if t.endswith("3") else t.upper(),
                      [ExactMatch()]))  # fmt: skip
    worse = run(Suite("words", data, lambda t: "<b>?</b>" if t.endswith("7") else t.upper(),
                      [ExactMatch()]))  # fmt: skip
    summary = summarize(worse, samples=data.samples)
    page = html_report(summary, worse, history=[first], baseline=first)
    assert page.startswith("<!doctype html>") and "<script" not in page
    assert not re.search(r"""(src|href)=["']?https?:""", page)  # nothing to fetch
    for plot in ("histogram", "bars", "trend"):
        assert f'<svg class="{plot}"' in page
    assert "&lt;b&gt;?&lt;/b&gt;" in page and "<b>?</b>" not in page  # outputs are escaped
    diff = page.split("<table class='diff'>")[1].split("</table>")[0]
    changes = re.findall(r"<td>(s\d+)</td><td>exact</td><td class='num'>([+-][\d.]+)", diff)
    assert sorted(sid for sid, _ in changes) == ["s13", "s17", "s23", "s27", "s3", "s7"]
    assert [c for _, c in changes] == ["-1.00"] * 3 + ["+1.00"] * 3  # regressions first
    report = json.loads(to_json(summary, worse))
    assert report["summary"]["metrics"]["exact"]["estimate"]["mean"] < 1.0
    assert len(report["results"]) == 30


def test_tether_eval_report_writes_the_file(project: Path) -> None:
    (project / "evals").mkdir()
    (project / "evals" / "w.py").write_text(
        "from tether.evals import Dataset, ExactMatch\nfrom tether.evals.suite import Suite\n"
        f"words = Suite('words', Dataset.from_list({ROWS!r}), str.upper, [ExactMatch()])\n"
    )
    runner = CliRunner()
    ran = json.loads(runner.invoke(app, ["eval", "run", "words", "--json"]).stdout)
    run_id = ran["summary"]["run_id"]
    result = runner.invoke(app, ["eval", "report", run_id, "--html", "r.html"])
    assert result.exit_code == 0, result.output
    page = (project / "r.html").read_text()
    assert "words: run" in page and "category=a" in page
    printed = runner.invoke(app, ["eval", "report", run_id])
    assert json.loads(printed.stdout)["run"]["run_id"] == run_id
