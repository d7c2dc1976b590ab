"""Retries, timeouts, fallbacks, routing and per-attempt tracing, for real.

Every model here is built by ``tether.model(...)`` from the test project's tether.toml and
talks to the real llama.cpp server, either directly (endpoint ``llama``) or through a
FaultProxy (endpoint ``proxy``) that fails requests on demand.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tether
from faults import FaultProxy
from tether.errors import (
    AuthError,
    BadRequest,
    ConfigError,
    MalformedResponse,
    ProviderError,
    RateLimited,
    Timeout,
    Unavailable,
)
from tether.models.base import Model
from tether.models.middleware.fallback import Fallback
from tether.models.middleware.retry import Retry
from tether.testing import ScriptedModel
from tether.tracing.setup import flush
from tether.types import ResponseEvent, StreamEvent, TextDelta

PROMPT = "Say hi."
SHORT: dict[str, Any] = {"temperature": 0, "max_tokens": 4}


@pytest.fixture(scope="module")
def warm_server(llama_server: str) -> str:
    """One call first, so that model loading never counts against a test's timeout."""
    body = {"model": "smollm2", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 1}
    request = urllib.request.Request(
        f"{llama_server}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        assert answer.status == 200
    return llama_server


@pytest.fixture
def proxy(warm_server: str) -> Iterator[FaultProxy]:
    # a hang lasts until the client gives up, or hang_s at most
    with FaultProxy(warm_server, hang_s=10.0, cut_after=3, lifetime=300.0) as running:
        yield running


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def configure(project: Path, proxy: FaultProxy, warm_server: str) -> Any:
    """Writes tether.toml: endpoints proxy, llama and dead (nothing listens), then ``extra``."""

    def write(extra: str = "") -> None:
        (project / "tether.toml").write_text(
            f'[endpoints.proxy]\nbase_url = "{proxy.base_url}"\n\n'
            f'[endpoints.llama]\nbase_url = "{warm_server}"\n\n'
            f'[endpoints.dead]\nbase_url = "http://127.0.0.1:{closed_port()}/v1"\n\n' + extra
        )

    return write


def alias(name: str, model_id: str = "proxy:smollm2", **settings: Any) -> str:
    lines = [f"[models.{name}]", f'id = "{model_id}"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n\n"


class Sleeps:
    """A fake ``sleep`` for Retry that records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def bare(model_id: str = "proxy:smollm2") -> Model:
    """The traced attempt with no retries of its own, for wrapping in a Retry by hand."""
    model = tether.model(model_id, retries=0)
    assert not isinstance(model, Retry)
    return model


# -- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "times"),
    [("429", 1), ("500", 2), ("503", 1), ("529", 2), ("drop", 2), ("drop_mid", 1)],
)
async def test_retries_recover(configure: Any, proxy: FaultProxy, fault: str, times: int) -> None:
    configure(alias("flaky", retries=2, backoff=0.01))
    proxy.push(*[fault] * times)
    started = time.monotonic()
    response = await tether.model("flaky").agenerate(PROMPT, **SHORT)

    assert response.text
    assert response.model == "proxy:smollm2"
    assert proxy.faults_applied() == [fault] * times + [None]
    if fault == "429":
        assert time.monotonic() - started >= 1.0  # the proxy's Retry-After: 1 was waited out


async def test_retries_give_up_with_the_last_error(configure: Any, proxy: FaultProxy) -> None:
    configure(alias("flaky", retries=2, backoff=0.01))
    proxy.always = "500"
    with pytest.raises(Unavailable) as caught:
        await tether.model("flaky").agenerate(PROMPT, **SHORT)
    assert caught.value.status == 500
    assert proxy.count == 3


async def test_retry_after_is_honoured(configure: Any, proxy: FaultProxy) -> None:
    configure()
    sleeps = Sleeps()
    model = Retry(bare(), retries=2, backoff=0.01, sleep=sleeps)
    proxy.push("429", "500")
    response = await model.agenerate(PROMPT, **SHORT)

    assert response.text
    assert proxy.count == 3
    assert len(sleeps.delays) == 2
    assert sleeps.delays[0] == 1.0  # Retry-After: 1 from the 429
    assert 0 <= sleeps.delays[1] <= 0.01 * 2  # the 500 brings no hint: backoff with jitter


async def test_retry_after_beyond_max_backoff_is_not_waited(
    configure: Any, proxy: FaultProxy
) -> None:
    configure()
    sleeps = Sleeps()
    model = Retry(bare(), retries=2, backoff=0.01, max_backoff=0.5, sleep=sleeps)
    proxy.push("429")
    with pytest.raises(RateLimited) as caught:
        await model.agenerate(PROMPT, **SHORT)
    assert caught.value.retry_after == 1.0
    assert sleeps.delays == []
    assert proxy.count == 1


async def test_backoff_grows_with_jitter_within_bounds(configure: Any, proxy: FaultProxy) -> None:
    configure()
    sleeps = Sleeps()
    backoff = 0.2
    model = Retry(bare(), retries=3, backoff=backoff, sleep=sleeps)
    proxy.push("500", "drop", "529")
    assert (await model.agenerate(PROMPT, **SHORT)).text
    assert proxy.count == 4
    assert len(sleeps.delays) == 3
    for attempt, delay in enumerate(sleeps.delays):
        assert 0 <= delay <= backoff * 2**attempt


def test_backoff_delays_are_full_jitter_doubling_and_capped() -> None:
    retry = Retry(bare_model_stub(), retries=10, backoff=0.1, max_backoff=0.5)
    error = Unavailable("down")
    for attempt, bound in enumerate([0.1, 0.2, 0.4, 0.5, 0.5]):
        delays = [retry.delay(attempt, error) for _ in range(400)]
        assert all(d is not None and 0 <= d <= bound for d in delays)
        # full jitter spreads over the whole range: both halves are used
        assert min(d for d in delays if d is not None) < bound / 2
        assert max(d for d in delays if d is not None) > bound / 2
    assert retry.delay(10, error) is None  # out of retries
    assert retry.delay(0, BadRequest("no")) is None  # not retryable
    assert retry.delay(0, RateLimited("slow", retry_after=0.3)) == 0.3


def bare_model_stub() -> Model:
    class Never(Model):
        id = "never:model"

        async def request(self, request: Any) -> Any:
            raise AssertionError("not called")

        def request_stream(self, request: Any) -> Any:
            raise AssertionError("not called")

    return Never()


@pytest.mark.parametrize(("fault", "expected"), [("400", BadRequest), ("401", AuthError)])
async def test_non_retryable_errors_are_not_retried(
    configure: Any, proxy: FaultProxy, fault: str, expected: type[ProviderError]
) -> None:
    configure(alias("flaky", retries=3, backoff=0.01))
    proxy.push(fault)
    with pytest.raises(expected) as caught:
        await tether.model("flaky").agenerate(PROMPT, **SHORT)
    assert type(caught.value) is expected
    assert caught.value.status == int(fault)
    assert proxy.count == 1


# -- timeouts --------------------------------------------------------------------------------


async def test_hang_times_out(configure: Any, proxy: FaultProxy) -> None:
    configure(alias("slow", timeout=0.5, retries=0))
    proxy.push("hang")
    started = time.monotonic()
    with pytest.raises(Timeout, match=r"0\.5 s"):
        await tether.model("slow").agenerate(PROMPT, **SHORT)
    assert 0.5 <= time.monotonic() - started < 2.5
    assert proxy.count == 1


async def test_hang_times_out_then_is_retried(configure: Any, proxy: FaultProxy) -> None:
    # the limit must let the real retry through even on a busy machine, so it is not 0.5 here
    configure(alias("slow", timeout=2.0, retries=1, backoff=0.01))
    proxy.push("hang")
    started = time.monotonic()
    response = await tether.model("slow").agenerate(PROMPT, temperature=0, max_tokens=1)
    assert response.text
    assert proxy.faults_applied() == ["hang", None]
    assert time.monotonic() - started < proxy.hang_s  # the hang was abandoned, not waited out


# -- fallbacks -------------------------------------------------------------------------------


async def test_fallback_answers_when_the_primary_cannot_be_reached(configure: Any) -> None:
    configure(alias("main", "dead:smollm2", retries=0, fallbacks=["llama:smollm2"]))
    response = await tether.model("main").agenerate(PROMPT, **SHORT)
    assert response.text
    assert response.model == "llama:smollm2"


async def test_fallback_after_the_primary_spends_its_retries(
    configure: Any, proxy: FaultProxy
) -> None:
    configure(alias("main", retries=1, backoff=0.01, fallbacks=["llama:smollm2"]))
    proxy.always = "500"
    response = await tether.model("main").agenerate(PROMPT, **SHORT)
    assert response.model == "llama:smollm2"
    assert proxy.count == 2


async def test_when_all_fail_the_error_names_each_model(configure: Any, proxy: FaultProxy) -> None:
    configure(
        alias("main", retries=0, fallbacks=["backup"]) + alias("backup", "dead:smollm2", retries=0)
    )
    proxy.always = "500"
    with pytest.raises(Unavailable) as caught:
        await tether.model("main").agenerate(PROMPT, **SHORT)
    notes = getattr(caught.value, "__notes__", [])
    assert len(notes) == 2
    assert notes[0].startswith("proxy:smollm2: Unavailable")
    assert "500" in notes[0]
    assert notes[1].startswith("dead:smollm2: Unavailable")
    assert proxy.count == 1


async def test_stream_falls_back_before_its_first_event(configure: Any, proxy: FaultProxy) -> None:
    configure(alias("main", retries=0, fallbacks=["llama:smollm2"]))
    proxy.always = "529"
    events = [e async for e in tether.model("main").astream(PROMPT, **SHORT)]
    last = events[-1]
    assert isinstance(last, ResponseEvent)
    assert last.response.model == "llama:smollm2"
    assert proxy.count == 1


# -- streams ---------------------------------------------------------------------------------


async def test_stream_is_retried_before_its_first_event(configure: Any, proxy: FaultProxy) -> None:
    configure(alias("flaky", retries=2, backoff=0.01))
    proxy.push("500", "drop")
    events = [e async for e in tether.model("flaky").astream(PROMPT, **SHORT)]
    last = events[-1]
    assert isinstance(last, ResponseEvent)
    assert last.response.text == "".join(e.text for e in events if isinstance(e, TextDelta))
    assert proxy.faults_applied() == ["500", "drop", None]


async def test_stream_is_not_retried_after_its_first_event(
    configure: Any, proxy: FaultProxy
) -> None:
    configure(alias("flaky", retries=2, backoff=0.01, fallbacks=["llama:smollm2"]))
    proxy.push("cut")
    seen: list[StreamEvent] = []
    with pytest.raises(Unavailable):
        async for event in tether.model("flaky").astream(PROMPT, temperature=0, max_tokens=8):
            seen.append(event)
    # the caller saw output, so neither a retry nor a fallback may repeat it
    assert any(isinstance(e, TextDelta) for e in seen)
    assert not any(isinstance(e, ResponseEvent) for e in seen)
    assert proxy.faults_applied() == ["cut"]


# -- answers tether cannot read ----------------------------------------------------------------


async def test_an_answer_tether_cannot_read_is_neither_retried_nor_handed_on(
    configure: Any, proxy: FaultProxy
) -> None:
    configure(alias("main", retries=3, backoff=0.01, fallbacks=["llama:smollm2"]))
    proxy.push("malformed")
    with pytest.raises(MalformedResponse) as caught:
        await tether.model("main").agenerate(PROMPT, **SHORT)
    assert caught.value.excerpt.startswith('{"id": "chatcmpl-broken"')
    assert proxy.faults_applied() == ["malformed"]  # one call paid for, not four


def test_a_fallback_stops_at_a_malformed_response_naming_what_came_before() -> None:
    broken = MalformedResponse("cannot read it", excerpt="<html>")
    first = ScriptedModel(Unavailable("overloaded"), Unavailable("overloaded"), id="a:first")
    second = ScriptedModel(broken, broken, id="b:second")
    backup = ScriptedModel(id="c:backup")  # no answers: a call would fail the test
    chain = Fallback([first, second, backup])
    for call in (lambda: chain.generate("hi"), lambda: list(chain.stream("hi"))):
        with pytest.raises(MalformedResponse) as caught:
            call()
        assert caught.value is broken
        assert [n.split(":")[0] for n in caught.value.__notes__[-2:]] == ["a", "b"]
    assert backup.requests == []


def test_retry_does_not_retry_a_malformed_response() -> None:
    model = ScriptedModel(MalformedResponse("cannot read it"), "never reached")
    with pytest.raises(MalformedResponse):
        Retry(model, retries=3, backoff=0).generate("hi")
    assert len(model.requests) == 1


# -- the router ------------------------------------------------------------------------------

ROUTER = '[routers.r]\nroutes = { a = "llama:smollm2", b = "proxy:smollm2" }\ndefault = "a"\n'


async def test_router_sends_each_route_to_its_model(configure: Any, proxy: FaultProxy) -> None:
    configure(ROUTER)
    router = tether.model("r")

    to_b = await router.agenerate(PROMPT, metadata={"route": "b"}, **SHORT)
    assert to_b.model == "proxy:smollm2"
    assert proxy.count == 1
    assert proxy.seen[0].body["messages"] == [{"role": "user", "content": PROMPT}]

    by_default = await router.agenerate(PROMPT, **SHORT)
    to_a = await router.agenerate(PROMPT, metadata={"route": "a"}, **SHORT)
    assert by_default.model == to_a.model == "llama:smollm2"
    assert proxy.count == 1

    events = [e async for e in router.astream(PROMPT, metadata={"route": "b"}, **SHORT)]
    last = events[-1]
    assert isinstance(last, ResponseEvent)
    assert last.response.model == "proxy:smollm2"
    assert proxy.count == 2


async def test_router_rejects_unknown_routes(configure: Any, proxy: FaultProxy) -> None:
    configure(ROUTER)
    with pytest.raises(ConfigError) as caught:
        await tether.model("r").agenerate(PROMPT, metadata={"route": "c"}, **SHORT)
    message = str(caught.value)
    assert "'c'" in message
    assert "routes: a, b" in message
    assert proxy.count == 0


def test_router_default_must_be_a_route(configure: Any) -> None:
    configure('[routers.r]\nroutes = { a = "llama:smollm2" }\ndefault = "z"\n')
    with pytest.raises(ConfigError, match="'z'"):
        tether.model("r")


# -- tracing ---------------------------------------------------------------------------------


def spans(project: Path) -> list[sqlite3.Row]:
    assert flush(10.0)
    db = sqlite3.connect(project / ".tether" / "tether.db")
    db.row_factory = sqlite3.Row
    try:
        return db.execute(
            "SELECT status, model, alias, error, output_tokens FROM spans ORDER BY start_ns"
        ).fetchall()
    finally:
        db.close()


async def test_every_attempt_is_traced(configure: Any, proxy: FaultProxy, project: Path) -> None:
    configure(alias("flaky", retries=2, backoff=0.01))
    proxy.push("500", "drop")
    response = await tether.model("flaky").agenerate(PROMPT, **SHORT)

    rows = spans(project)
    assert [row["status"] for row in rows] == ["error", "error", "ok"]
    assert {row["model"] for row in rows} == {"proxy:smollm2"}
    assert {row["alias"] for row in rows} == {"flaky"}
    assert rows[0]["error"].startswith("Unavailable")
    assert rows[1]["error"].startswith("Unavailable")
    assert rows[2]["error"] is None
    assert rows[2]["output_tokens"] == response.usage.output_tokens


async def test_fallback_attempts_are_traced(
    configure: Any, proxy: FaultProxy, project: Path
) -> None:
    configure(alias("main", retries=1, backoff=0.01, timeout=0.5, fallbacks=["llama:smollm2"]))
    # the 429 waits out its Retry-After; the hang is cut short by the alias' timeout
    proxy.push("429", "hang")
    await tether.model("main").agenerate(PROMPT, **SHORT)

    rows = spans(project)
    assert [(row["status"], row["model"]) for row in rows] == [
        ("error", "proxy:smollm2"),
        ("error", "proxy:smollm2"),
        ("ok", "llama:smollm2"),
    ]
    assert rows[0]["error"].startswith("RateLimited")
    assert rows[1]["error"].startswith("Timeout")
