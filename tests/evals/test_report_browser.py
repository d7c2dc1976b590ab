"""The HTML report as a browser draws it: headless Chromium (Debian's, which make installs)
takes a screenshot, and the plots' colours must be on it where the SVGs are."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tether.evals import Dataset, ExactMatch
from tether.evals.report import html_report
from tether.evals.runner import run
from tether.evals.suite import Suite
from tether.evals.summary import summarize

pytestmark = pytest.mark.slow

HISTOGRAM = (0x4F, 0x7C, 0xFF)  # the histogram's bars and the trend's line
CATEGORY = (0x7A, 0xA2, 0xFF)  # the per-category bars


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError(
            "headless Chromium is missing: make installs it (apt-get install chromium)"
        )
    return found


def screenshot(page: Path, out: Path, width: int = 1000, height: int = 2400) -> None:
    command = [
        chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        f"--window-size={width},{height}", f"--screenshot={out}", page.as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and out.is_file(), done.stderr[-2000:]


def test_the_report_renders_its_plots_in_headless_chromium(project: Path) -> None:
    from PIL import Image

    rows = [
        {"id": f"s{i}", "input": f"w{i}", "expected": f"W{i}", "category": f"c{i % 3}"}
        for i in range(30)
    ]
    data = Dataset.from_list(rows, name="words")
    first = run(Suite("words", data, lambda t: "?" if t.endswith("3") else t.upper(),
                      [ExactMatch()]))  # fmt: skip
    second = run(Suite("words", data, lambda t: "?" if t.endswith("7") else t.upper(),
                       [ExactMatch()]))  # fmt: skip
    summary = summarize(second, samples=data.samples)
    page = project / "report.html"
    page.write_text(html_report(summary, second, history=[first], baseline=first), "utf-8")
    shot = project / "report.png"  # look at it: pytest --basetemp keeps it
    screenshot(page, shot)
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert image.shape == (2400, 1000, 3)
    drawn = (image != 255).any(axis=2).mean()
    assert drawn > 0.02  # text, tables and plots, not a blank page
    for colour in (HISTOGRAM, CATEGORY):
        rows, _ = np.nonzero((np.abs(image - colour) <= 12).all(axis=2))
        # Bars are solid areas: thousands of pixels, not a stray anti-aliased edge; and they
        # are drawn below the metrics table, not at the top of the page.
        assert len(rows) > 2_000 and rows.min() > 100, (colour, len(rows))
