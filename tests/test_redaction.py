"""Keys never reach a sink: the trace store, an exporter on tether's tracer provider (as an
OTLP exporter would be), a cassette, the loss file or stderr.

Each sink gets keys of every kind tether knows (one it handed out, a key-like environment
variable, sk- and Bearer-shaped strings) planted where a real application would carry them:
in a prompt, in a tool call's arguments, in a provider's error body, and in headers (request
metadata and an error message).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typer.testing import CliRunner

import tether
from tether.cli.main import app
from tether.config import load_settings, secret
from tether.models.base import Model, ProviderModel
from tether.models.middleware.cassette import Cassette, CassetteModel, use
from tether.models.middleware.traced import Traced
from tether.models.openai import OpenAIProvider
from tether.redaction import REDACTED, known_secrets, redact
from tether.testing import FunctionModel, ScriptedModel, record, replay
from tether.tracing.query import losses, recent_calls
from tether.tracing.setup import flush, tracer_provider
from tether.tracing.store import loss_file
from tether.types import Message, Request, TextPart, ToolCallPart, ToolResultPart

HANDED_OUT = "svc-handed-out-0123456789"  # no known shape: only remembering it catches it
FROM_ENV = "acme-env-value-9876543210"
SK = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"
BEARER_TOKEN = "tok_live_abcdefgh12345678"
# What must never be found anywhere a sink writes.
PLANTED = (HANDED_OUT, FROM_ENV, SK, BEARER_TOKEN)
ALL_KEYS = f"{HANDED_OUT} {FROM_ENV} {SK} Bearer {BEARER_TOKEN}"


@pytest.fixture(autouse=True)
def keys(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One key handed out through tether.config.secret, one in a key-like env variable."""
    (project / ".tether").mkdir()
    (project / ".tether" / "secrets.toml").write_text(f'SERVICE_CREDENTIAL = "{HANDED_OUT}"\n')
    assert secret("SERVICE_CREDENTIAL") == HANDED_OUT
    monkeypatch.setenv("ACME_API_KEY", FROM_ENV)


def assert_clean(text: str, where: str) -> None:
    for key in PLANTED:
        assert key not in text, f"{key!r} reached {where}"


def leaky_request() -> Request:
    """Keys in the prompt, in a tool call's arguments and its result, and in headers."""
    return Request(
        messages=[
            Message.user(f"my keys: {ALL_KEYS}"),
            Message(
                role="assistant",
                content=[
                    ToolCallPart(
                        id="c1",
                        name="call_api",
                        arguments=json.dumps({"api_key": HANDED_OUT, "auth": f"Bearer {SK}"}),
                    )
                ],
            ),
            Message(
                role="tool",
                content=[ToolResultPart(tool_call_id="c1", content=f"echo {FROM_ENV}")],
            ),
        ],
        metadata={"authorization": f"Bearer {BEARER_TOKEN}", "x-api-key": HANDED_OUT},
    )


def echo(request: Request) -> str:
    return f"you said {ALL_KEYS}"


def leaky_call_answer() -> list[ToolCallPart]:
    arguments = json.dumps({"token": SK, "headers": {"x-api-key": FROM_ENV}, "k": HANDED_OUT})
    return [ToolCallPart(id="c2", name="call_api", arguments=arguments)]


class ErrorBody:
    """An OpenAI-compatible server answering 401 with a body that quotes the keys it got."""

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        message = f"Incorrect API key provided: {ALL_KEYS}; headers x-api-key: {HANDED_OUT}"
        return httpx2.Response(401, json={"error": {"message": message, "code": "bad_key"}})


def failing_openai_model(client: httpx2.AsyncClient) -> Model:
    options = {"base_url": "http://gateway.test/v1", "http_client": client}
    return ProviderModel(OpenAIProvider("gpt-4.1-mini", options))


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """An in-memory exporter on tether's provider, where an OTLP exporter would be added."""
    exported = InMemorySpanExporter()
    tracer_provider().add_span_processor(SimpleSpanProcessor(exported))
    yield exported
    exported.shutdown()


def traced(model: Model, content: str = "full") -> Traced:
    return Traced(model, load_settings(tracing={"content": content}))


async def make_leaky_calls() -> None:
    """A call, a stream and a failed call, all carrying the keys; through the full stack."""
    request = leaky_request()
    await traced(FunctionModel(echo)).agenerate(request)
    async for _ in traced(ScriptedModel(leaky_call_answer())).astream(request):
        pass
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(ErrorBody())) as client:
        model = traced(failing_openai_model(client))
        with pytest.raises(tether.AuthError) as info:
            await model.agenerate(request)
    assert HANDED_OUT in str(info.value)  # the caller's own error is untouched: only sinks
    failed = ScriptedModel(tether.Unavailable(f"proxy said 'x-api-key: {FROM_ENV}' {SK}"))
    with pytest.raises(tether.Unavailable):
        await traced(failed).agenerate(request)


def span_text(span: ReadableSpan) -> str:
    return json.dumps(
        {
            "name": span.name,
            "attributes": dict(span.attributes or {}),
            "status": span.status.description,
            "events": [dict(e.attributes or {}) for e in span.events],
        },
        default=str,
    )


async def test_spans_reach_every_processor_redacted(
    project: Path, exporter: InMemorySpanExporter
) -> None:
    await make_leaky_calls()
    spans = exporter.get_finished_spans()
    assert len(spans) == 4
    for span in spans:
        assert_clean(span_text(span), f"the exported span {span.name}")
    assert all(REDACTED in span_text(span) for span in spans)
    (first, *_) = spans
    attrs = dict(first.attributes or {})
    assert attrs["tether.metadata.x-api-key"] == REDACTED  # the name says what it holds
    assert attrs["tether.metadata.authorization"] == REDACTED
    assert "my keys:" in str(attrs["gen_ai.input.messages"])  # the rest is kept


async def test_the_store_holds_only_redacted_spans(project: Path) -> None:
    await make_leaky_calls()
    assert flush()
    stored = b"".join(p.read_bytes() for p in (project / ".tether").glob("tether.db*"))
    assert_clean(stored.decode("utf-8", errors="replace"), "the trace store")
    calls = recent_calls(project / ".tether" / "tether.db")
    assert len(calls) == 4
    errors = [c["error"] for c in calls if c["status"] == "error"]
    assert len(errors) == 2 and all(REDACTED in e for e in errors)
    for flags in (["--full"], ["--json"]):  # and so does everything `tether logs` shows
        shown = CliRunner().invoke(app, ["logs", *flags])
        assert shown.exit_code == 0, shown.output
        assert_clean(shown.output, f"tether logs {flags[0]}")


def test_a_cassette_holds_no_keys_and_still_replays(project: Path) -> None:
    path = project / "calls.json"
    request = leaky_request()
    with record(path):
        answered = CassetteModel(FunctionModel(echo)).generate(request)
        list(CassetteModel(ScriptedModel(leaky_call_answer())).stream(request))
    assert_clean(path.read_text("utf-8"), "the cassette")
    assert SK in answered.text  # the caller still got the real answer
    with replay(path):
        again = CassetteModel(ScriptedModel(id="function:test")).generate(request)
        events = list(CassetteModel(ScriptedModel()).stream(request))
    assert again.text == f"you said {REDACTED} {REDACTED} {REDACTED} {REDACTED}"
    final = events[-1].response  # type: ignore[union-attr]
    (call,) = final.tool_calls
    assert call.args() == {"token": REDACTED, "headers": {"x-api-key": REDACTED}, "k": REDACTED}


def test_a_key_split_across_streamed_deltas_is_still_redacted(project: Path) -> None:
    """ScriptedModel streams a tool call's arguments in two halves, cutting the key in two."""
    path = project / "split.json"
    arguments = json.dumps({"q": HANDED_OUT})
    assert HANDED_OUT[:4] in arguments[: len(arguments) // 2]
    answer = [ToolCallPart(id="c", name="f", arguments=arguments)]
    with record(path):
        list(CassetteModel(ScriptedModel(answer)).stream("q"))
    held = path.read_text("utf-8")
    assert HANDED_OUT[: len(HANDED_OUT) // 2] not in held
    assert HANDED_OUT[len(HANDED_OUT) // 2 :] not in held
    with replay(path):
        events = list(CassetteModel(ScriptedModel()).stream("q"))
    assert events[-1].response.tool_calls[0].args() == {"q": REDACTED}  # type: ignore[union-attr]


def test_a_recording_is_found_after_a_key_it_holds_is_handed_out(project: Path) -> None:
    """Recorded before tether knew the key: once it does, both sides must redact it alike."""
    path = project / "late.json"
    late = "late-handed-out-key-0123"
    with record(path):
        CassetteModel(ScriptedModel("ok")).generate(f"use {late}")
    cassette = Cassette(path, "replay")
    (project / ".tether" / "secrets.toml").write_text(f'LATE = "{late}"\n')
    secret("LATE")
    with use(cassette):
        assert CassetteModel(ScriptedModel()).generate(f"use {late}").text == "ok"


def test_a_miss_does_not_quote_the_key(project: Path) -> None:
    path = project / "calls.json"
    with record(path):
        CassetteModel(ScriptedModel("x")).generate("hello")
    with replay(path), pytest.raises(tether.CassetteMiss) as info:
        CassetteModel(ScriptedModel()).generate(f"use {SK}")
    assert_clean(str(info.value), "a CassetteMiss")


def test_loss_reasons_are_redacted_in_the_loss_file_stderr_and_logs(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tether.tracing.store as store

    def refuse(path: Path, **kwargs: Any) -> sqlite3.Connection:
        raise sqlite3.OperationalError(f"cannot open {ALL_KEYS}; x-api-key: {HANDED_OUT}")

    monkeypatch.setattr(store, "connect", refuse)
    traced(ScriptedModel("ok")).generate("hi")
    assert flush()
    db_path = project / ".tether" / "tether.db"
    assert_clean(loss_file(db_path).read_text("utf-8"), "the loss file")
    lost = losses(db_path)
    assert lost.count >= 1 and REDACTED in " ".join(lost.reasons)
    # With the project folder unwritable as well, the loss is told on stderr.
    monkeypatch.setattr(store, "loss_file", lambda db_path: project / "no" / "such" / "file")
    traced(ScriptedModel("ok")).generate("hi")
    assert flush()
    err = capsys.readouterr().err
    assert "trace spans are being lost" in err
    assert_clean(err, "stderr")


def test_redact_shapes_headers_and_known_values() -> None:
    secrets = known_secrets()
    assert HANDED_OUT in secrets and FROM_ENV in secrets
    assert redact(f"key {HANDED_OUT}.") == f"key {REDACTED}."
    assert redact(f"x-api-key: {FROM_ENV}") == f"x-api-key: {REDACTED}"
    assert redact("Authorization: Basic dXNlcjpwYXNzd29yZA==") == f"Authorization: {REDACTED}"
    assert redact('{"api_key": "anything-at-all"}') == f'{{"api_key": "{REDACTED}"}}'
    assert redact(f"header 'x-api-key': '{SK}'") == f"header 'x-api-key': '{REDACTED}'"
    assert redact(f"Bearer {BEARER_TOKEN}") == REDACTED
    for plain in ("a risk-free task-based plan", "api_key_env = LAB_KEY", "Bearer it"):
        assert redact(plain) == plain
    assert redact(redact(f"x-api-key: {SK}")) == redact(f"x-api-key: {SK}")  # idempotent


def test_a_new_key_is_known_as_soon_as_it_is_handed_out_or_set(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = known_secrets()
    monkeypatch.setenv("LATER_TOKEN", "later-token-value-1234")
    assert "later-token-value-1234" in known_secrets()
    monkeypatch.setenv("LATER_TOKEN", "changed-token-value-5678")  # same name, new value
    assert "changed-token-value-5678" in known_secrets()
    (project / ".tether" / "secrets.toml").write_text('ANOTHER = "another-handed-out-42"\n')
    secret("ANOTHER")
    assert "another-handed-out-42" in known_secrets()
    assert set(before) <= set(known_secrets())


def test_text_is_redacted_before_it_is_truncated(
    project: Path, exporter: InMemorySpanExporter
) -> None:
    prompt = "x" * 100 + HANDED_OUT + "y" * 100
    for cut in range(100, 100 + 60 + len(HANDED_OUT)):  # one of these falls inside the key
        model = Traced(FunctionModel(lambda r: "ok"), load_settings(tracing={"max_chars": cut}))
        model.generate(prompt)
    spans = exporter.get_finished_spans()
    held = [str(dict(span.attributes or {})["gen_ai.input.messages"]) for span in spans]
    assert all("more chars" in text for text in held)
    assert not any(HANDED_OUT[:6] in text for text in held)


def test_messages_are_unchanged_for_the_model(project: Path) -> None:
    """Redaction is for what is recorded: the model still gets the caller's text."""
    seen: list[str] = []

    def keep(request: Request) -> str:
        part = request.messages[0].content[0]
        assert isinstance(part, TextPart)
        seen.append(part.text)
        return "ok"

    traced(FunctionModel(keep)).generate(f"use {SK}")
    assert seen == [f"use {SK}"]


def test_a_header_passed_through_provider_options_never_reaches_a_cassette(project: Path) -> None:
    unknown = "azure-secret-0000-1111-2222"  # no known shape, never handed out by tether
    model = CassetteModel(ScriptedModel("ok"))
    options = {"openai": {"extra_headers": {"api-key": unknown, "x-request-id": "r-1"}}}
    with record(project / "calls.json"):
        model.generate("hi", provider_options=options)
    stored = (project / "calls.json").read_text()
    assert unknown not in stored
    assert "r-1" in stored  # a header that names no credential is kept as it is


def test_a_log_probability_keeps_its_token(project: Path) -> None:
    from tether.types import Response, TokenLogprob

    answer = Response(
        message=Message.assistant("Hi"), logprobs=[TokenLogprob(token="Hi", logprob=-0.1)]
    )
    model = CassetteModel(ScriptedModel(answer))
    with record(project / "calls.json"):
        model.generate("hi")
    with replay(project / "calls.json"):
        again = model.generate("hi")
    assert again.logprobs is not None and again.logprobs[0].token == "Hi"
