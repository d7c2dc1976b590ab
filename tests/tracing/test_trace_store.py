"""Every call becomes a span in .tether/tether.db; tracing never breaks or blocks a call."""

import asyncio
import json
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan

import tether
from tether.config import load_settings
from tether.models.middleware.traced import Traced
from tether.testing import FunctionModel, ScriptedModel
from tether.tracing import semconv
from tether.tracing.query import losses, recent_calls
from tether.tracing.setup import flush, store_processor
from tether.tracing.store import StoreProcessor, loss_file
from tether.types import Request, StreamEvent, TextDelta


def rows(project: Path) -> list[sqlite3.Row]:
    assert flush()
    db = sqlite3.connect(project / ".tether" / "tether.db")
    db.row_factory = sqlite3.Row
    return db.execute("SELECT * FROM spans ORDER BY start_ns").fetchall()


def test_a_local_call_is_stored_with_genai_attributes(project: Path) -> None:
    response = tether.model("local:smollm2").generate("Hello", max_tokens=4, temperature=0)
    (row,) = rows(project)
    assert row["model"] == "local:smollm2"
    assert row["provider"] == "local"
    assert row["status"] == "ok"
    assert row["input_tokens"] == response.usage.input_tokens
    assert row["output_tokens"] == response.usage.output_tokens
    assert row["cost_usd"] == 0.0
    assert row["latency_ms"] > 0
    assert "Hello" in row["prompt"]
    assert response.text in row["completion"]
    attrs = json.loads(row["attributes"])
    assert attrs[semconv.REQUEST_MODEL] == "local:smollm2"
    assert attrs[semconv.REQUEST_MAX_TOKENS] == 4
    assert attrs[semconv.RESPONSE_FINISH] == [response.finish_reason]


def test_streamed_calls_are_traced_once_with_usage(project: Path) -> None:
    events = list(tether.model("local:smollm2").stream("Hi", max_tokens=4))
    (row,) = rows(project)
    assert row["output_tokens"] == events[-1].response.usage.output_tokens  # type: ignore[union-attr]
    assert json.loads(row["attributes"])[semconv.STREAM] is True


def traced(model: tether.Model, **tracing: object) -> Traced:
    return Traced(model, load_settings(tracing=tracing) if tracing else load_settings())


def test_errors_are_recorded(project: Path) -> None:
    model = traced(ScriptedModel(tether.RateLimited("slow down", retry_after=2)))
    with pytest.raises(tether.RateLimited):
        model.generate("hi")
    (row,) = rows(project)
    assert row["status"] == "error"
    assert "RateLimited" in row["error"] and "slow down" in row["error"]


def test_content_off_and_truncated(project: Path) -> None:
    traced(ScriptedModel("secret answer"), content="off").generate("private prompt")
    traced(ScriptedModel("x" * 500), content="truncated", max_chars=100).generate("p")
    off, truncated = rows(project)
    assert off["prompt"] is None and off["completion"] is None
    assert len(truncated["completion"]) < 200 and "more chars" in truncated["completion"]


def test_api_keys_never_reach_the_store(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    traced(FunctionModel(lambda r: f"your key is {key}")).generate(
        f"my key is {key} and Authorization: Bearer abcdef123456789"
    )
    flush()
    raw = (project / ".tether" / "tether.db").read_bytes()
    wal = project / ".tether" / "tether.db-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    assert key.encode() not in raw
    assert b"abcdef123456789" not in raw
    assert b"[REDACTED]" in raw


def test_unwritable_store_loses_spans_but_not_the_call(project: Path) -> None:
    (project / ".tether").write_text("a file where the project folder should be")
    response = tether.model("local:smollm2").generate("Hi", max_tokens=3)
    assert response.text
    assert flush()
    processor = store_processor(project / ".tether" / "tether.db")
    assert processor is not None and processor.lost >= 1
    db_path = project / ".tether" / "tether.db"
    lost = losses(db_path)  # nowhere to record it: this process still knows
    assert lost.count >= 1
    assert lost.reasons


def test_losses_are_recorded_beside_the_database_not_in_a_shared_folder(
    project: Path,
) -> None:
    import tempfile

    (project / ".tether" / "tether.db").mkdir(parents=True)  # the database cannot be opened
    in_tmp_before = set(Path(tempfile.gettempdir()).glob("tether-trace-losses-*"))
    traced(ScriptedModel("ok")).generate("hi")
    assert flush()
    db_path = project / ".tether" / "tether.db"
    assert loss_file(db_path) == project / ".tether" / "tether-trace-losses.jsonl"
    (record,) = [json.loads(line) for line in loss_file(db_path).read_text().splitlines()]
    assert record["count"] == 1 and record["reason"]
    assert set(Path(tempfile.gettempdir()).glob("tether-trace-losses-*")) == in_tmp_before
    processor = store_processor(db_path)
    assert processor is not None and processor.unrecorded_loss == 0  # the file holds it
    assert losses(db_path).count == 1


def test_locked_store_counts_the_loss_and_records_it_later(project: Path) -> None:
    model = traced(ScriptedModel("one", "two"))
    model.generate("first")
    assert flush()
    locker = sqlite3.connect(project / ".tether" / "tether.db", timeout=0)
    locker.execute("BEGIN EXCLUSIVE")
    model.generate("second")  # the write times out behind the lock; the call does not
    assert flush()
    locker.rollback()
    locker.close()
    traced(ScriptedModel("three")).generate("third")
    assert flush()
    assert losses(project / ".tether" / "tether.db").count >= 1
    models = [row["completion"] for row in recent_calls(project / ".tether" / "tether.db")]
    assert any("three" in (c or "") for c in models)


def test_full_queue_drops_instead_of_blocking(project: Path) -> None:
    model = traced(ScriptedModel(*["a"] * 51), queue_size=1)
    for _ in range(50):
        model.generate("x")
    assert flush()
    model.generate("one more, into an empty queue: its write records the losses")
    assert flush()
    processor = store_processor(project / ".tether" / "tether.db")
    assert processor is not None
    stored = len(rows(project))
    assert stored + processor.lost == 51  # every span is stored or counted, none blocks
    assert losses(project / ".tether" / "tether.db").count == processor.lost


class SlowModel(ScriptedModel):
    """Streams one word every 50 ms, as a real model would."""

    async def request_stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        for _ in range(20):
            await asyncio.sleep(0.05)
            yield TextDelta(text="word ")
        raise AssertionError("the consumer should have stopped long before")


def test_stopping_a_stream_early_is_traced_as_cancelled_not_failed(project: Path) -> None:
    model = traced(SlowModel())
    for _event in model.stream("hi"):
        break
    (row,) = rows(project)
    assert row["status"] == "ok"
    assert json.loads(row["attributes"])[semconv.CANCELLED] is True


def test_request_metadata_is_kept_on_the_span(project: Path) -> None:
    traced(ScriptedModel("ok")).generate(
        "hi", metadata={"prompt.name": "summarize", "prompt.version": "3f2a9c"}
    )
    (row,) = rows(project)
    attrs = json.loads(row["attributes"])
    assert attrs[f"{semconv.METADATA}.prompt.name"] == "summarize"
    assert attrs[f"{semconv.METADATA}.prompt.version"] == "3f2a9c"


def finished_spans(count: int) -> list[ReadableSpan]:
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(shutdown_on_exit=False)
    tracer = provider.get_tracer("test")
    spans = []
    for number in range(count):
        span = tracer.start_span(f"chat {number}")
        span.end()
        spans.append(span)
    return spans


def test_shutdown_stores_what_is_queued_then_stops_the_writer(project: Path) -> None:
    db_path = project / ".tether" / "tether.db"
    processor = StoreProcessor(db_path)
    for span in finished_spans(300):  # more than one batch
        processor.on_end(span)
    processor.shutdown()
    assert not processor._thread.is_alive()
    assert processor._db is None  # its connection closed
    db = sqlite3.connect(db_path)
    assert db.execute("SELECT count(*) FROM spans").fetchone() == (300,)
    processor.on_end(finished_spans(1)[0])  # too late: counted, not queued
    assert processor.lost == 1 and processor.queue.empty()
    assert processor.force_flush(100)
    processor.shutdown()  # a second time does nothing


def test_at_exit_spans_are_stored_and_the_writer_thread_stopped(project: Path) -> None:
    """A program that makes a call and ends: nothing is left running, nothing is lost."""
    import subprocess
    import sys
    import textwrap

    program = textwrap.dedent(
        """
        import atexit, threading

        def check():  # registered first, so it runs after tether's own exit handler
            alive = [t.name for t in threading.enumerate() if t.name == "tether-trace-store"]
            print("writers alive:", alive)

        atexit.register(check)

        from tether.config import load_settings
        from tether.models.middleware.traced import Traced
        from tether.testing import ScriptedModel

        Traced(ScriptedModel(*["ok"] * 50), load_settings()).generate("hi")
        model = Traced(ScriptedModel(*["ok"] * 50), load_settings())
        for _ in range(49):
            model.generate("again")
        """
    )
    source = str(Path(tether.__file__).parents[1])  # this checkout's tether, in the child too
    done = subprocess.run(
        [sys.executable, "-c", program],
        env={**os.environ, "PYTHONPATH": source},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "writers alive: []" in done.stdout, done.stdout + done.stderr
    db = sqlite3.connect(project / ".tether" / "tether.db")
    assert db.execute("SELECT count(*) FROM spans").fetchone() == (50,)
