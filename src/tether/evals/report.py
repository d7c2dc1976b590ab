"""Reports of eval runs: JSON for machines, and one self-contained HTML file for people.

The HTML needs nothing beside it (no script, no stylesheet, no font to fetch): plots are
inline SVG drawn here, so the file opens offline and can be attached to a CI run. It holds
each metric's mean and interval, the distribution of its per-sample scores, per-category
bars, the trend over the suite's earlier runs, and, given a baseline, the per-sample diff
of the two runs with regressions first.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from tether.evals.runner import Run
from tether.evals.summary import Summary, compare_runs, per_sample

WIDTH, BAR_HEIGHT = 360, 18
STYLE = """
body{font:14px system-ui,sans-serif;margin:2rem;color:#1d2430;max-width:1100px}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0} td,th{padding:.25rem .6rem;text-align:left;
border-bottom:1px solid #dde2ea} th{background:#f3f5f8}
.num{text-align:right;font-variant-numeric:tabular-nums} .bad{color:#b42318} .good{color:#067647}
.plots{display:flex;flex-wrap:wrap;gap:1.5rem} figure{margin:0} figcaption{color:#5b6472}
code{background:#f3f5f8;padding:0 .2rem}
"""


def to_json(summary: Summary, run: Run) -> str:
    return json.dumps(
        {
            "summary": summary.model_dump(mode="json"),
            "run": run.info.model_dump(mode="json"),
            "results": [r.model_dump(mode="json") for r in run.results],
        },
        indent=2,
    )


def _e(value: Any) -> str:
    return html.escape(str(value))


def histogram(values: Sequence[float], bins: int = 10) -> str:
    """An SVG histogram of values in 0..1 (clipped), one bar per tenth."""
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int(v * bins)))] += 1
    top = max(counts) or 1
    w, h = WIDTH, 120
    bar = w / bins
    rects = []
    for i, count in enumerate(counts):
        height = (h - 20) * count / top
        rects.append(
            f'<rect x="{i * bar + 1:.1f}" y="{h - 15 - height:.1f}" width="{bar - 2:.1f}" '
            f'height="{height:.1f}" fill="#4f7cff"><title>{i / bins:.1f}-{(i + 1) / bins:.1f}: '
            f"{count}</title></rect>"
        )
    labels = "".join(
        f'<text x="{min(i * bar, w - 16):.1f}" y="{h - 2}" font-size="10">{i / bins:.1f}</text>'
        for i in range(0, bins + 1, 2)
    )
    return (
        f'<svg class="histogram" width="{w}" height="{h}" role="img" '
        f'aria-label="score distribution">{"".join(rects)}{labels}</svg>'
    )


def bars(items: Sequence[tuple[str, float, float, float]]) -> str:
    """Horizontal bars (label, mean, low, high) with interval whiskers, on a 0..1 scale."""
    h = BAR_HEIGHT * len(items) + 10
    left, span = 140, WIDTH - 150
    parts = []
    for row, (label, mean, low, high) in enumerate(items):
        y = row * BAR_HEIGHT + 5
        parts.append(
            f'<text x="0" y="{y + 12}" font-size="11">{_e(label[:22])}</text>'
            f'<rect x="{left}" y="{y}" width="{span * max(0.0, min(1.0, mean)):.1f}" '
            f'height="{BAR_HEIGHT - 5}" fill="#7aa2ff"><title>{mean:.3f}</title></rect>'
            f'<line x1="{left + span * low:.1f}" x2="{left + span * high:.1f}" '
            f'y1="{y + 6}" y2="{y + 6}" stroke="#1d2430"/>'
        )
    return (
        f'<svg class="bars" width="{WIDTH}" height="{h}" role="img" '
        f'aria-label="per-category means">{"".join(parts)}</svg>'
    )


def trend(points: Sequence[tuple[str, float]]) -> str:
    """A line of a metric's mean over runs, oldest first."""
    w, h = WIDTH, 120
    if len(points) < 2:
        return '<p class="note">one run so far: the trend shows from the second</p>'
    step = (w - 20) / (len(points) - 1)
    xy = [(10 + i * step, 10 + (h - 30) * (1 - max(0.0, min(1.0, v)))) for i, (_, v) in
          enumerate(points)]  # fmt: skip
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#4f7cff"><title>{_e(run)}: {v:.3f}'
        f"</title></circle>"
        for (x, y), (run, v) in zip(xy, points, strict=True)
    )
    # Each run's mean beside its dot, and the scale's ends: a line alone has no units.
    values = "".join(
        f'<text x="{min(x + 4, w - 30):.1f}" y="{y - 5:.1f}" font-size="10">{v:.3f}</text>'
        for (x, y), (_, v) in zip(xy, points, strict=True)
    )
    scale = (
        f'<text x="0" y="14" font-size="9" fill="#5b6577">1</text>'
        f'<text x="0" y="{h - 16}" font-size="9" fill="#5b6577">0</text>'
    )
    return (
        f'<svg class="trend" width="{w}" height="{h}" role="img" aria-label="trend">{scale}'
        f'<polyline points="{line}" fill="none" stroke="#4f7cff"/>{dots}{values}</svg>'
    )


def html_report(
    summary: Summary,
    run: Run,
    *,
    history: Sequence[Run] = (),
    baseline: Run | None = None,
    limit_diff: int = 200,
) -> str:
    """The whole report as one HTML string. ``history``: the suite's earlier runs, oldest
    first (for the trend); ``baseline``: a run to diff against, sample by sample."""
    values = per_sample(run)
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{_e(summary.suite)} {_e(summary.run_id)}</title><style>{STYLE}</style>",
        "</head><body>",
        f"<h1>{_e(summary.suite)}: run <code>{_e(summary.run_id)}</code></h1>",
        f"<p>{summary.samples} samples x {summary.epochs} epoch(s) on dataset "
        f"<code>{_e(run.info.dataset)}</code> version <code>{_e(run.info.dataset_version)}"
        f"</code>; models: {_e(', '.join(run.info.config.get('models', [])) or 'none')}; "
        f"{summary.input_tokens} in / {summary.output_tokens} out tokens; cost "
        f"{'unpriced' if summary.cost_usd is None else f'${summary.cost_usd:.4f}'}.</p>",
        "<table><tr><th>metric</th><th>mean</th><th>95% CI</th><th>errors</th></tr>",
    ]
    for m in summary.metrics.values():
        e = m.estimate
        out.append(
            f"<tr><td>{_e(m.name)}</td><td class='num'>{e.mean:.3f}</td><td class='num'>"
            f"{e.low:.3f}-{e.high:.3f}</td><td class='num'>{m.errors or ''}</td></tr>"
        )
    out.append("</table>")
    numeric = {k: v for k, v in summary.extra.items() if isinstance(v, (int, float))}
    if numeric:
        out.append("<table><tr><th>run-level</th><th>value</th></tr>")
        out += [
            f"<tr><td>{_e(k)}</td><td class='num'>{v:.3f}</td></tr>" for k, v in numeric.items()
        ]
        out.append("</table>")
    for key, value in summary.extra.items():
        if key.endswith("warning"):
            out.append(f"<p class='bad'>{_e(value)}</p>")
    means = [(r, per_sample(r)) for r in [*history, run]]
    for name, metric in summary.metrics.items():
        out.append(f"<h2>{_e(name)}</h2><div class='plots'>")
        out.append(
            f"<figure>{histogram(list(values.get(name, {}).values()))}"
            "<figcaption>per-sample scores</figcaption></figure>"
        )
        if metric.by_category:
            items = [(c, e.mean, e.low, e.high) for c, e in metric.by_category.items()]
            out.append(f"<figure>{bars(items)}<figcaption>by category</figcaption></figure>")
        points = [(r.id, sum(v[name].values()) / len(v[name])) for r, v in means if v.get(name)]
        out.append(f"<figure>{trend(points)}<figcaption>over runs</figcaption></figure></div>")
    if baseline is not None:
        out.append(_diff(baseline, run, limit_diff))
    out.append("</body></html>")
    return "\n".join(out)


def _diff(baseline: Run, run: Run, limit: int) -> str:
    comparisons = compare_runs(baseline, run)
    before, after = per_sample(baseline), per_sample(run)
    outputs = {r.sample_id: r.outcome.output for r in run.results if r.epoch == 0}
    old_outputs = {r.sample_id: r.outcome.output for r in baseline.results if r.epoch == 0}
    rows = []
    for c in comparisons:
        for sid in set(before[c.metric]) & set(after[c.metric]):
            change = after[c.metric][sid] - before[c.metric][sid]
            if change:
                rows.append((change, c.metric, sid))
    rows.sort()  # regressions (most negative) first
    out = [
        f"<h2>Against run <code>{_e(baseline.id)}</code></h2>",
        "<table><tr><th>metric</th><th>B - A</th><th>95% CI</th><th>test</th><th>p</th>"
        "<th></th></tr>",
    ]
    for c in comparisons:
        verdict = "significant" if c.significant else "within noise"
        cls = "bad" if c.significant and c.difference < 0 else "good" if c.significant else ""
        out.append(
            f"<tr class='{cls}'><td>{_e(c.metric)}</td><td class='num'>{c.difference:+.3f}"
            f"</td><td class='num'>{c.low:+.3f} to {c.high:+.3f}</td><td>{c.test}</td>"
            f"<td class='num'>{c.p_value:.3g}</td><td>{verdict}</td></tr>"
        )
    out.append("</table>")
    out.append(
        "<table class='diff'><tr><th>sample</th><th>metric</th><th>change</th>"
        "<th>before</th><th>after</th></tr>"
    )
    for change, metric, sid in rows[:limit]:
        cls = "bad" if change < 0 else "good"
        out.append(
            f"<tr class='{cls}'><td>{_e(sid)}</td><td>{_e(metric)}</td><td class='num'>"
            f"{change:+.2f}</td><td>{_e(str(old_outputs.get(sid, ''))[:200])}</td>"
            f"<td>{_e(str(outputs.get(sid, ''))[:200])}</td></tr>"
        )
    if not rows:
        out.append("<tr><td colspan='5'>no sample changed</td></tr>")
    out.append("</table>")
    return "\n".join(out)
