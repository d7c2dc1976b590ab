"""Record and replay: deterministic, offline, and loud about anything it does not hold."""

import json
from pathlib import Path

import pytest

import tether
from tether.errors import CassetteMiss
from tether.models.middleware.cassette import CassetteModel
from tether.testing import FunctionModel, ScriptedModel, record, replay
from tether.types import ResponseEvent, TextDelta


def test_record_then_replay_the_local_model(project: Path) -> None:
    path = project / "calls.json"
    model = tether.model("local:smollm2")
    with record(path):
        live = model.generate("Name a fruit.", max_tokens=8)
        streamed = list(model.stream("Name a city.", max_tokens=8))
    data = json.loads(path.read_text())
    assert [i["stream"] for i in data["interactions"]] == [False, True]
    with replay(path):
        again = model.generate("Name a fruit.", max_tokens=8)
        events = list(model.stream("Name a city.", max_tokens=8))
    assert again == live
    assert [e.text for e in events if isinstance(e, TextDelta)] == [
        e.text for e in streamed if isinstance(e, TextDelta)
    ]
    assert isinstance(events[-1], ResponseEvent)


def test_replay_fails_loudly_on_a_call_it_does_not_hold(project: Path) -> None:
    path = project / "calls.json"
    with record(path):
        CassetteModel(ScriptedModel("recorded")).generate("one question")
    with replay(path), pytest.raises(CassetteMiss) as info:
        CassetteModel(ScriptedModel("never")).generate("another question")
    assert "another question" in str(info.value)
    assert "TETHER_RECORD" in str(info.value)


def test_env_variables_switch_record_and_replay(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = project / "env.json"
    monkeypatch.setenv("TETHER_RECORD", str(path))
    first = CassetteModel(FunctionModel(lambda r: "from the model")).generate("q")
    monkeypatch.delenv("TETHER_RECORD")
    monkeypatch.setenv("TETHER_REPLAY", str(path))
    # the inner model would now answer differently: replay must not ask it
    replayed = CassetteModel(FunctionModel(lambda r: "changed")).generate("q")
    assert replayed.text == first.text == "from the model"


def test_keys_never_reach_a_cassette_or_the_trace_store(
    project: Path, monkeypatch: pytest.MonkeyPatch, llama_server: str
) -> None:
    """A real HTTP call that sends its key in the Authorization header, recorded."""
    from tether.tracing.setup import flush

    key = "plain-looking-key-0123456789"  # no sk- shape: only knowing the value can catch it
    monkeypatch.setenv("LAB_KEY", key)
    (project / "tether.toml").write_text(
        f'[endpoints.lab]\nbase_url = "{llama_server}"\napi_key_env = "LAB_KEY"\n'
    )
    path = project / "k.json"
    with record(path):
        tether.model("lab:smollm2").generate("hi", max_tokens=2)
        list(tether.model("lab:smollm2").stream("hi", max_tokens=2))
    assert len(json.loads(path.read_text())["interactions"]) == 2
    assert key not in path.read_text()
    assert flush()
    stored = b"".join(p.read_bytes() for p in (project / ".tether").glob("tether.db*"))
    assert key.encode() not in stored


def test_missing_cassette_file_says_how_to_record(project: Path) -> None:
    with pytest.raises(CassetteMiss) as info, replay(project / "none.json"):
        pass
    assert "TETHER_RECORD" in str(info.value)


def test_scripted_model_streams_tool_calls_and_raises_errors() -> None:
    from tether.types import ToolCallPart

    call = ToolCallPart(id="c1", name="lookup", arguments='{"q": "tether"}')
    model = ScriptedModel([call], tether.Unavailable("down"))
    events = list(model.stream("find it"))
    final = events[-1]
    assert isinstance(final, ResponseEvent)
    assert final.response.tool_calls[0].args() == {"q": "tether"}
    with pytest.raises(tether.Unavailable):
        model.generate("again")
    with pytest.raises(AssertionError, match="given 2 answers"):
        model.generate("one more")
    assert len(model.requests) == 3


async def test_a_stream_is_recorded_even_when_the_consumer_stops_at_its_last_event(
    project: Path,
) -> None:
    path = project / "early.json"
    model = CassetteModel(ScriptedModel("one two three"))
    with record(path):
        async for event in model.astream("count"):
            if isinstance(event, ResponseEvent):
                break
    with replay(path):
        events = list(CassetteModel(ScriptedModel()).stream("count"))
    assert isinstance(events[-1], ResponseEvent)
    assert events[-1].response.text == "one two three"


def test_replayed_calls_reach_neither_the_provider_nor_the_trace_store(project: Path) -> None:
    import sqlite3

    from tether.tracing.setup import flush

    path = project / "calls.json"
    model = tether.model("local:smollm2")
    with record(path):
        model.generate("Name a tree.", max_tokens=6)
    with replay(path):
        model.generate("Name a tree.", max_tokens=6)
    assert flush()
    db = sqlite3.connect(project / ".tether" / "tether.db")
    assert db.execute("SELECT count(*) FROM spans").fetchone() == (1,)


def test_scripted_streams_match_scripted_responses_part_for_part() -> None:
    from tether.types import Message, ReasoningPart, Response, TextPart, ToolCallPart, Usage

    answer = Response(
        message=Message(
            role="assistant",
            content=[
                ReasoningPart(text="think", signature="s1"),
                ToolCallPart(id="c", name="f", arguments='{"a": 1}'),
                ReasoningPart(text="", signature="opaque", redacted=True),
                TextPart(text="done now"),
            ],
        ),
        finish_reason="tool_calls",
        usage=Usage(input_tokens=3, output_tokens=4),
    )
    plain = ScriptedModel(answer).generate("x")
    streamed = list(ScriptedModel(answer).stream("x"))[-1]
    assert isinstance(streamed, ResponseEvent)
    assert streamed.response.message == plain.message == answer.message
