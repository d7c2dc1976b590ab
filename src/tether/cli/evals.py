"""``tether eval``: list the suites in evals/, run one (with gates for CI), show a stored run,
compare two. The work is the library's (tether.evals); this parses and prints."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tether.cli.common import JsonFlag, out, write

if TYPE_CHECKING:
    from tether.evals.gates import Verdict
    from tether.evals.runner import Run
    from tether.evals.stats import Comparison
    from tether.evals.summary import Summary

app = typer.Typer(no_args_is_help=True, help="Evals: run suites, compare runs, gate CI.")

FolderOption = Annotated[str, typer.Option("--dir", help="The folder holding the suites (*.py).")]


@app.command("list")
def list_suites(folder: FolderOption = "evals", as_json: JsonFlag = False) -> None:
    """The suites in evals/ and their recent runs."""
    from tether.config import load_settings
    from tether.evals.discover import discover
    from tether.evals.store import RunStore

    suites = discover(folder)
    store = RunStore(load_settings().db_path)
    try:
        runs = store.runs(limit=200)
    finally:
        store.close()
    rows: list[dict[str, Any]] = [
        {
            "suite": name,
            "samples": len(suite.dataset),
            "scorers": [s.name for s in suite.scorers],
            "runs": [r.run_id for r in runs if r.suite == name][:5],
        }
        for name, suite in sorted(suites.items())
    ]
    if as_json:
        write(json.dumps(rows, indent=2) + "\n")
        return
    if not rows:
        out.print(f"no suites in {folder}/")
    for row in rows:
        recent = ", ".join(row["runs"]) or "no runs yet"
        out.print(
            f"[bold]{row['suite']}[/]  {row['samples']} samples, scored by "
            f"{', '.join(row['scorers'])}  [dim]runs: {recent}[/]"
        )


@app.command("run")
def run_suite(
    name: Annotated[str, typer.Argument(help="The suite's name.")],
    folder: FolderOption = "evals",
    limit: Annotated[int | None, typer.Option(help="Only the first N samples.")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Samples at once.")] = None,
    resume: Annotated[str | None, typer.Option(help="Finish an interrupted run.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Call every model again.")] = False,
    gate: Annotated[
        list[str] | None,
        typer.Option("--gate", help='A threshold, e.g. "exact>=0.8" (repeatable).'),
    ] = None,
    baseline: Annotated[
        str | None, typer.Option(help="A run to compare with; a significant drop fails.")
    ] = None,
    max_drop: Annotated[float, typer.Option(help="The drop a baseline allows.")] = 0.0,
    backend: Annotated[
        str, typer.Option(help="Where samples run: local, or ray (a Ray cluster).")
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="The Ray cluster (auto, ray://head:10001); none starts a local one."),
    ] = None,
    rate_limit: Annotated[
        list[str] | None,
        typer.Option(
            "--rate-limit", help='Requests a minute for a model, "openai:gpt-4.1=500" (repeatable).'
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a suite and print its figures; exit 1 when a gate fails."""
    from rich.progress import Progress

    from tether.config import load_settings
    from tether.evals.discover import find
    from tether.evals.gates import Gate, check
    from tether.evals.runner import BACKENDS, Runner
    from tether.evals.runner import Run as RunRecord
    from tether.evals.store import RunStore
    from tether.evals.summary import compare_runs, summarize

    if backend not in BACKENDS:
        raise typer.BadParameter(
            f"{backend!r}: choose {' or '.join(BACKENDS)}", param_hint="--backend"
        )
    if address is not None and backend != "ray":
        raise typer.BadParameter("--address names a Ray cluster: add --backend ray")
    limits = rate_limits(rate_limit or [])
    suite = find(name, folder)
    # The suite's own gates and the command's; a bad one fails before any sample runs.
    gates = [Gate.parse(g) for g in [*suite.gates, *(gate or [])]]
    settings = load_settings()
    runner = Runner(suite, settings=settings, concurrency=concurrency, cache=not no_cache,
                    limit=limit, backend=backend, address=address, rate_limits=limits)  # type: ignore[arg-type]  # fmt: skip
    total = len(runner.dataset) * suite.epochs
    try:
        with Progress(disable=as_json, transient=True) as progress:
            bar = progress.add_task(f"{name}", total=total)
            done = runner.run_sync(resume=resume, advance=lambda _: progress.advance(bar))
    finally:
        runner.close()
    summary = summarize(done, samples=runner.dataset.samples, scorers=suite.scorers)
    comparisons: list[Comparison] = []
    if baseline is not None:
        store = RunStore(settings.db_path)
        try:
            before = store.run(baseline)
            base = RunRecord(before, db_path=settings.db_path)
        finally:
            store.close()
        comparisons = compare_runs(base, done)
    verdicts = check(summary, gates, comparisons, max_drop=max_drop)
    if as_json:
        payload = {
            "summary": summary.model_dump(mode="json"),
            "gates": [v.model_dump() for v in verdicts],
        }
        write(json.dumps(payload, indent=2) + "\n")
    else:
        print_summary(summary)
        print_verdicts(verdicts)
    if not all(v.passed for v in verdicts):
        raise typer.Exit(1)


def rate_limits(given: list[str]) -> dict[str, float]:
    """``MODEL=RPM`` options as a mapping; a model id may hold ':' but not '='."""
    out: dict[str, float] = {}
    for text in given:
        model, _, rpm = text.rpartition("=")
        try:
            value = float(rpm)
        except ValueError:
            value = 0.0
        if not model or not value > 0:
            raise typer.BadParameter(
                f"{text!r}: write MODEL=REQUESTS_PER_MINUTE, e.g. openai:gpt-4.1-mini=500",
                param_hint="--rate-limit",
            )
        out[model] = value
    return out


@app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="A run id (a unique prefix will do).")],
    folder: FolderOption = "evals",
    as_json: JsonFlag = False,
) -> None:
    """A stored run's figures."""
    summary = _summary(run_id, folder)
    if as_json:
        write(summary.model_dump_json(indent=2) + "\n")
        return
    print_summary(summary)


@app.command("compare")
def compare(
    run_a: Annotated[str, typer.Argument(help="The earlier run (the baseline).")],
    run_b: Annotated[str, typer.Argument(help="The later run.")],
    as_json: JsonFlag = False,
) -> None:
    """Run B against run A, sample by sample: difference, interval, significant or not."""
    from tether.evals.summary import compare_runs

    comparisons = compare_runs(_load(run_a), _load(run_b))
    if as_json:
        write(json.dumps([c.model_dump() for c in comparisons], indent=2) + "\n")
        return
    from rich.table import Table

    table = Table("metric", "A", "B", "B - A", "95% CI", "test", "p", "")
    for c in comparisons:
        table.add_row(
            c.metric,
            f"{c.a:.3f}",
            f"{c.b:.3f}",
            f"{c.difference:+.3f}",
            f"{c.low:+.3f} to {c.high:+.3f}",
            c.test,
            f"{c.p_value:.3g}",
            "significant" if c.significant else "within noise",
        )
    out.print(table)


def _load(run_id: str) -> Run:
    from tether.config import load_settings
    from tether.evals.runner import Run as RunRecord
    from tether.evals.store import RunStore

    db_path = load_settings().db_path
    store = RunStore(db_path)
    try:
        return RunRecord(store.run(run_id), db_path=db_path)  # its results read when needed
    finally:
        store.close()


def _summary(run_id: str, folder: str) -> Summary:
    from tether.errors import ConfigError
    from tether.evals.discover import discover
    from tether.evals.summary import summarize

    run = _load(run_id)
    try:
        suite = discover(folder).get(run.info.suite)
    except ConfigError:
        suite = None  # a run can be shown without its suite: no per-category figures then
    if suite is None:
        return summarize(run)
    return summarize(run, samples=suite.dataset.samples, scorers=suite.scorers)


def print_summary(summary: Summary) -> None:
    from rich.table import Table

    title = f"{summary.suite}, run {summary.run_id}: {summary.samples} samples"
    if summary.epochs > 1:
        title += f" x {summary.epochs} epochs"
    table = Table("metric", "mean", "95% CI", "errors", title=title, title_justify="left")
    for metric in summary.metrics.values():
        est = metric.estimate
        table.add_row(metric.name, f"{est.mean:.3f}", f"{est.low:.3f}-{est.high:.3f}",
                      str(metric.errors) if metric.errors else "")  # fmt: skip
        if metric.pass_at_k is not None:
            table.add_row(f"  pass@{summary.epochs}", f"{metric.pass_at_k:.3f}", "", "")
            table.add_row(f"  pass^{summary.epochs}", f"{metric.pass_all_k or 0:.3f}", "", "")
        for category, cat in metric.by_category.items():
            table.add_row(f"  {category}", f"{cat.mean:.3f}", f"{cat.low:.3f}-{cat.high:.3f}",
                          f"n={cat.n}")  # fmt: skip
    for key, value in summary.extra.items():
        if isinstance(value, (int, float)):
            table.add_row(key, f"{value:.3f}", "", "")
    out.print(table)
    cost = "unpriced calls" if summary.cost_usd is None else f"${summary.cost_usd:.4f}"
    latency = f", {summary.latency_s.mean:.2f} s a sample" if summary.latency_s else ""
    errors = f", {summary.task_errors} task errors" if summary.task_errors else ""
    out.print(
        f"[dim]{summary.input_tokens} in / {summary.output_tokens} out tokens, {cost}"
        f"{latency}{errors}[/]"
    )


def print_verdicts(verdicts: list[Verdict]) -> None:
    for v in verdicts:
        mark = "[green]PASS[/]" if v.passed else "[red]FAIL[/]"
        value = f" = {v.value:.3f}" if v.value is not None else ""
        out.print(f"{mark} {v.what}{value} [dim]{v.detail}[/]")


@app.command("report")
def report(
    run_id: Annotated[str, typer.Argument(help="A run id (a unique prefix will do).")],
    html: Annotated[str | None, typer.Option("--html", help="Write an HTML report here.")] = None,
    baseline: Annotated[
        str | None, typer.Option(help="A run to diff with, sample by sample.")
    ] = None,
    folder: FolderOption = "evals",
    as_json: JsonFlag = False,
) -> None:
    """A run's report: JSON on stdout (--json), or one self-contained HTML file (--html)."""
    from pathlib import Path

    from tether.config import load_settings
    from tether.evals.report import html_report, to_json
    from tether.evals.store import RunStore

    run = _load(run_id)
    summary = _summary(run.id, folder)
    if as_json or html is None:
        write(to_json(summary, run) + "\n")
    if html is not None:
        store = RunStore(load_settings().db_path)
        try:
            earlier = [
                r for r in reversed(store.runs(run.info.suite, limit=20))
                if r.started_ns < run.info.started_ns
            ]  # fmt: skip
        finally:
            store.close()
        history = [_load(r.run_id) for r in earlier]
        base = _load(baseline) if baseline is not None else None
        Path(html).write_text(html_report(summary, run, history=history, baseline=base), "utf-8")
        if not as_json:
            out.print(f"wrote {html}")
