"""Spans into the project database, off the call path.

``StoreProcessor`` is an OpenTelemetry span processor: ending a span only puts it on a
bounded queue; a background thread writes batches to SQLite. A full queue, a locked database
or a read-only disk never blocks or fails a model call: the spans are dropped, counted, and
the loss is recorded (in the database once it is writable again, else in a file beside it)
so ``tether logs`` can report it. Spans arrive already redacted (the Traced middleware makes
them); the reasons given for a loss are redacted here, as they quote exceptions.
"""

from __future__ import annotations

import contextlib
import json
import queue
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from tether.redaction import redact
from tether.store.db import connect, transaction
from tether.tracing import semconv

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import Span


def loss_file(db_path: Path) -> Path:
    """Where losses go when the database itself cannot be written: beside it, in the
    project folder (never a shared temporary directory, where anyone may read or plant it)."""
    return db_path.with_name(f"{db_path.stem}-trace-losses.jsonl")


def _row(span: ReadableSpan) -> tuple[Any, ...]:
    attrs = dict(span.attributes or {})
    context = span.context
    assert context is not None  # a finished SDK span always has one
    parent = span.parent.span_id if span.parent else None
    error = None
    if span.status.status_code.name == "ERROR":
        kind = attrs.get(semconv.ERROR_TYPE, "error")
        error = f"{kind}: {span.status.description}"
    prompt = attrs.pop(semconv.INPUT_MESSAGES, None)
    completion = attrs.pop(semconv.OUTPUT_MESSAGES, None)
    latency = attrs.get(semconv.LATENCY)
    return (
        f"{context.span_id:016x}",
        f"{context.trace_id:032x}",
        f"{parent:016x}" if parent else None,
        span.name,
        span.start_time or 0,
        span.end_time or 0,
        "error" if error else "ok",
        attrs.get(semconv.REQUEST_MODEL),
        attrs.get(semconv.PROVIDER),
        attrs.get(semconv.ALIAS),
        attrs.get(semconv.USAGE_INPUT),
        attrs.get(semconv.USAGE_OUTPUT),
        attrs.get(semconv.USAGE_CACHE_READ),
        attrs.get(semconv.USAGE_REASONING),
        attrs.get(semconv.COST),
        latency * 1000 if isinstance(latency, int | float) else None,
        error,
        str(prompt) if prompt is not None else None,
        str(completion) if completion is not None else None,
        json.dumps(attrs, default=str),
    )


INSERT = f"INSERT OR REPLACE INTO spans VALUES ({', '.join('?' * 20)})"


class StoreProcessor(SpanProcessor):
    """An OpenTelemetry SpanProcessor that stores finished spans in the project database."""

    def __init__(self, db_path: Path, *, queue_size: int = 10_000, batch: int = 256) -> None:
        self.db_path = db_path
        self.batch = batch
        # None on the queue tells the writer to stop, after the spans queued before it.
        self.queue: queue.Queue[ReadableSpan | None] = queue.Queue(maxsize=queue_size)
        self._loss_lock = threading.Lock()  # drops are counted from callers' threads too
        self.lost = 0
        self.unrecorded_loss = 0
        self.last_error = ""
        self._idle = threading.Condition()
        self._pending = 0
        self._stopped = False
        self._warned = False
        self._db: sqlite3.Connection | None = None
        # A daemon, so that a writer stuck behind a locked database never holds up an exit;
        # shutdown() stops it cleanly in every other case.
        self._thread = threading.Thread(target=self._run, name="tether-trace-store", daemon=True)
        self._thread.start()

    # -- the OpenTelemetry SpanProcessor interface --------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def _on_ending(self, span: Span) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        with self._idle:
            accepted = not self._stopped
            if accepted:
                self._pending += 1
        if not accepted:
            self._count_loss(1, "the span ended after the trace store was shut down")
            return
        try:
            self.queue.put_nowait(span)
        except queue.Full:
            self._count_loss(1, "the trace queue was full")
            self._done(1)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Store what is queued, then stop the writer thread and close its connection, within
        ``timeout`` seconds. Spans that end afterwards are counted as lost."""
        deadline = time.monotonic() + timeout
        with self._idle:
            if self._stopped:
                return
            self._stopped = True
        self.force_flush(int(timeout * 1000))
        try:
            self.queue.put(None, timeout=max(0.0, deadline - time.monotonic()))
        except queue.Full:
            return  # the writer is stuck behind a lock; as a daemon it cannot hold up an exit
        self._thread.join(max(0.0, deadline - time.monotonic()))

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Wait until every queued span is written (or given up on)."""
        deadline = time.monotonic() + timeout_millis / 1000
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    # -- the writer thread --------------------------------------------------------------

    def _done(self, count: int) -> None:
        with self._idle:
            self._pending -= count
            self._idle.notify_all()

    def _count_loss(self, count: int, reason: str) -> None:
        reason = redact(reason)  # it may quote an exception, which may quote anything
        with self._loss_lock:
            self.lost += count
            self.unrecorded_loss += count
            self.last_error = reason

    def _take_unrecorded(self) -> tuple[int, str]:
        with self._loss_lock:
            count, self.unrecorded_loss = self.unrecorded_loss, 0
            return count, self.last_error

    def _give_back(self, count: int) -> None:
        with self._loss_lock:
            self.unrecorded_loss += count

    def _run(self) -> None:
        stop = False
        while not stop:
            spans, stop = self._take_batch()
            if spans:
                self._store(spans)
        self._close()

    def _close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):  # a broken connection is dropped all the same
                self._db.close()
            self._db = None

    def _take_batch(self) -> tuple[list[ReadableSpan], bool]:
        """Up to ``batch`` spans, waiting for the first; True once the stop sentinel is read."""
        spans: list[ReadableSpan] = []
        item = self.queue.get()
        while item is not None:
            spans.append(item)
            if len(spans) == self.batch:
                return spans, False
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return spans, False
        return spans, True

    def _store(self, spans: list[ReadableSpan]) -> None:
        try:
            self._write(spans)
        except Exception as exc:  # a trace must never break the program it traces
            self._count_loss(len(spans), f"{type(exc).__name__}: {exc}")
            self._record_loss_elsewhere()
            self._close()
        finally:
            self._done(len(spans))

    def _write(self, spans: list[ReadableSpan]) -> None:
        if self._db is None:
            self._db = connect(self.db_path, timeout=1.0)
        rows = [_row(span) for span in spans]
        unrecorded, reason = self._take_unrecorded()
        try:
            with transaction(self._db):
                self._db.executemany(INSERT, rows)
                if unrecorded:
                    self._db.execute(
                        "INSERT INTO trace_losses VALUES (?, ?, ?)",
                        (time.time_ns(), unrecorded, reason),
                    )
        except BaseException:
            self._give_back(unrecorded)
            raise

    def _record_loss_elsewhere(self) -> None:
        count, reason = self._take_unrecorded()
        record = {"at_ns": time.time_ns(), "count": count, "reason": reason}
        try:
            with loss_file(self.db_path).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        except OSError:
            self._give_back(count)
            if not self._warned:  # once: a read-only disk would otherwise print every call
                self._warned = True
                print(
                    f"tether: trace spans are being lost: neither {self.db_path} nor the file "
                    f"beside it can be written ({reason}); make {self.db_path.parent} a "
                    "writable folder",
                    file=sys.stderr,
                )
