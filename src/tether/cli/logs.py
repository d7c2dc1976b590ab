"""``tether logs``: the calls traced into the project database, newest first.

It also says when spans were lost (a full queue, an unwritable database): a trace store that
silently drops calls would make every figure read from it wrong without anyone knowing.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tether.cli.common import JsonFlag, err, format_cost, out, write

if TYPE_CHECKING:
    from rich.table import Table

PREVIEW_CHARS = 40

LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, help="How many calls.")]
ModelFilter = Annotated[
    str | None, typer.Option("-m", "--model", help="Only calls to this model id.")
]


def _messages(stored: str | None) -> list[tuple[str, str]]:
    """(role, text) for each message of a stored prompt or completion (JSON of Messages).

    Content cut short by ``content = "truncated"`` is no longer JSON: it comes back whole,
    as one piece with an empty role.
    """
    if not stored:
        return []
    try:
        value = json.loads(stored)
    except json.JSONDecodeError:
        return [("", stored)]
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, dict) for item in items):
        return [("", stored)]
    messages = []
    for item in items:
        pieces = []
        for part in item.get("content", []):
            if "text" in part:
                pieces.append(str(part["text"]))
            elif "name" in part:
                pieces.append(f"{part['name']}({part.get('arguments', '')})")
            elif "content" in part:
                pieces.append(f"[tool result] {part['content']}")
        messages.append((str(item.get("role", "")), " ".join(pieces)))
    return messages


def _last_text(stored: str | None) -> str:
    """The last message: for a prompt, what changed since the previous call."""
    messages = _messages(stored)
    return messages[-1][1] if messages else ""


def _preview(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _number(value: Any) -> str:
    return "" if value is None else str(value)


def _when(start_ns: int) -> str:
    started = datetime.fromtimestamp(start_ns / 1e9)
    today = started.date() == datetime.now().date()
    return started.strftime("%H:%M:%S" if today else "%Y-%m-%d %H:%M:%S")


def _figures(call: dict[str, Any]) -> list[str]:
    """in, out, cost, ms: blank where the call recorded none (a failed call has no usage)."""
    cost = call["cost_usd"]
    latency = call["latency_ms"]
    return [
        _number(call["input_tokens"]),
        _number(call["output_tokens"]),
        "" if cost is None else format_cost(cost),
        "" if latency is None else f"{latency:.0f}",
    ]


def _answer(call: dict[str, Any]) -> str:
    """The completion's text, or the error of a failed call."""
    return _last_text(call["completion"]) if call["status"] == "ok" else call["error"] or ""


def calls_table(calls: list[dict[str, Any]]) -> Table:
    """A Rich table of traced calls, one line each, as ``recent_calls`` returns them."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("time", "model", "status"):
        table.add_column(name, no_wrap=True)
    for name in ("in", "out", "cost", "ms"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("prompt")
    table.add_column("answer")
    for call in calls:
        ok = call["status"] == "ok"
        previews = [_preview(_last_text(call["prompt"])), _preview(_answer(call))]
        table.add_row(
            _when(call["start_ns"]),
            call["model"] or "",
            Text(call["status"], style="green" if ok else "red"),
            *_figures(call),
            # the columns may shrink to fit the terminal; each call still keeps one line
            *(Text(text, no_wrap=True, overflow="ellipsis") for text in previews),
        )
    return table


def print_full(calls: list[dict[str, Any]]) -> None:
    """Each call as a heading line, then its whole prompt and answer, message by message."""
    from rich.rule import Rule

    for call in calls:
        tokens_in, tokens_out, cost, ms = _figures(call)
        heading = (
            f"{_when(call['start_ns'])}  {call['model']}  {call['status']}  "
            f"{tokens_in} in / {tokens_out} out  {cost}  {ms} ms"
        )
        out.print(Rule(heading, align="left", style="dim"))
        for role, text in _messages(call["prompt"]):
            out.print(f"[bold]{role or 'prompt'}:[/] ", end="")
            out.print(text, markup=False)
        style = "green" if call["status"] == "ok" else "red"
        out.print(f"[bold {style}]answer:[/] ", end="")
        out.print(_answer(call), markup=False)


def report_losses(db_path: Path) -> None:
    """A yellow warning when spans could not be stored, with the reasons recorded."""
    from tether.tracing.query import losses

    lost = losses(db_path)
    if lost.count:
        reasons = "; ".join(dict.fromkeys(r for r in lost.reasons if r)) or "reason unknown"
        noun = "span" if lost.count == 1 else "spans"
        err.print(
            f"{lost.count} {noun} could not be stored ({reasons})",
            style="yellow",
            markup=False,
            soft_wrap=True,
        )


def logs(
    limit: LimitOption = 20,
    model: ModelFilter = None,
    as_json: JsonFlag = False,
    full: Annotated[bool, typer.Option("--full", help="Show whole prompts and answers.")] = False,
) -> None:
    """Show recent model calls from the trace store: tokens, cost, latency, text."""
    from tether.config import load_settings
    from tether.tracing.query import recent_calls
    from tether.tracing.setup import flush

    settings = load_settings()
    flush()  # calls made earlier in this process may still sit on the writer's queue
    calls = recent_calls(settings.db_path, limit=limit, model=model)
    if as_json:
        write(json.dumps(calls, indent=2) + "\n")
    elif calls and full:
        print_full(calls)
    elif calls:
        out.print(calls_table(calls))
    else:
        err.print(f"no calls traced yet in {settings.db_path}", style="dim")
    report_losses(settings.db_path)
