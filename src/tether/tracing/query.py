"""Reading the trace store back: recent calls and recorded losses, for ``tether logs``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.store.db import connect_readonly
from tether.tracing.setup import store_processor
from tether.tracing.store import loss_file

COLUMNS = (
    "span_id", "trace_id", "name", "start_ns", "end_ns", "status", "model", "provider", "alias",
    "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens", "cost_usd",
    "latency_ms", "error", "prompt", "completion",
)  # fmt: skip


@dataclass
class Losses:
    count: int
    reasons: list[str]


def recent_calls(db_path: Path, limit: int = 20, model: str | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` traced calls, newest first."""
    db = connect_readonly(db_path)
    if db is None:
        return []
    try:
        where, args = ("WHERE model = ?", [model]) if model else ("", [])
        rows = db.execute(
            f"SELECT {', '.join(COLUMNS)} FROM spans {where} ORDER BY start_ns DESC LIMIT ?",
            [*args, limit],
        ).fetchall()
    finally:
        db.close()
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]


def losses(db_path: Path) -> Losses:
    """Spans that could not be stored: those recorded in the database and in the loss file
    beside it, and those this process could record in neither (an unwritable folder)."""
    count, reasons = 0, []
    db = connect_readonly(db_path)
    if db is not None:
        try:
            for n, reason in db.execute("SELECT count, reason FROM trace_losses"):
                count += n
                reasons.append(reason)
        except Exception:  # an older or damaged database: report what the file holds
            pass
        finally:
            db.close()
    path = loss_file(db_path)
    if path.is_file():
        for line in path.read_text("utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            count += int(record.get("count", 0))
            reasons.append(str(record.get("reason", "")))
    processor = store_processor(db_path)
    if processor is not None and processor.unrecorded_loss:
        count += processor.unrecorded_loss
        reasons.append(processor.last_error)
    return Losses(count=count, reasons=reasons)
