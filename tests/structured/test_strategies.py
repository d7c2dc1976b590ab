"""Each strategy on each kind of provider: it runs its own mechanism, or refuses clearly.

OpenAI and Anthropic answer through fake endpoints speaking their documented wire formats
(the body each adapter sends is kept); the local model runs for real.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import httpx2
import pytest
from pydantic import BaseModel

import tether
from tether.errors import OutputInvalid, UnsupportedParameter
from tether.models.anthropic import AnthropicProvider
from tether.models.base import Model, ProviderModel
from tether.models.openai import OpenAIProvider
from tether.structured import generate

ANSWER = {"city": "Oslo", "country": "Norway"}
PROMPT = "Oslo is the capital of Norway. Give the city and its country."


class City(BaseModel):
    city: str
    country: str


def wire(sent: list[dict[str, Any]]) -> httpx2.AsyncClient:
    """A fake OpenAI and Anthropic endpoint: the answer JSON as the structured mechanism
    sent asks for it (a forced tool's input, or message text)."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        sent.append(body)
        if request.url.path.endswith("/messages"):
            forced = (body.get("tool_choice") or {}).get("name")
            block = (
                {"type": "tool_use", "id": "toolu_1", "name": forced, "input": ANSWER}
                if forced
                else {"type": "text", "text": json.dumps(ANSWER)}
            )
            return httpx2.Response(200, json={
                "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                "content": [block], "stop_reason": "tool_use" if forced else "end_turn",
                "stop_sequence": None, "usage": {"input_tokens": 20, "output_tokens": 9},
            })  # fmt: skip
        return httpx2.Response(200, json={
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": json.dumps(ANSWER)}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29},
        })  # fmt: skip

    return httpx2.AsyncClient(transport=httpx2.MockTransport(handler))


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdef")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789")


def hosted(kind: str, sent: list[dict[str, Any]]) -> Model:
    client = wire(sent)
    if kind == "openai":
        return ProviderModel(OpenAIProvider("gpt-4.1-mini", {"http_client": client}))
    if kind == "endpoint":  # an OpenAI-compatible server that declares no json_schema
        options = {"base_url": "http://box.test/v1", "endpoint": "box", "http_client": client}
        return ProviderModel(OpenAIProvider("any", options))
    options = {"http_client": client, "base_url": "https://api.anthropic.test"}
    # Claude 4.5 has JSON output (output_config.format); Claude 4.0 only the forced tool
    name = "claude-sonnet-4-0" if kind == "anthropic 4.0" else "claude-sonnet-4-5"
    return ProviderModel(AnthropicProvider(name, options))


# (provider, strategy) -> what must happen: the mechanism used, or the error's words
HOSTED = {
    ("openai", "native"): "json_schema",
    ("openai", "auto"): "json_schema",
    ("openai", "grammar"): "grammar-constrained decoding is for local",
    ("openai", "repair"): "prompt",
    ("endpoint", "native"): "json_schema = true",
    ("endpoint", "grammar"): "grammar-constrained decoding is for local",
    ("endpoint", "auto"): "prompt",  # with a warning: nothing to constrain with
    ("endpoint", "repair"): "prompt",
    ("anthropic", "native"): "output_config.format",
    ("anthropic", "auto"): "output_config.format",
    ("anthropic", "grammar"): "grammar-constrained decoding is for local",
    ("anthropic", "repair"): "prompt",
    ("anthropic 4.0", "native"): "forced tool",
    ("anthropic 4.0", "auto"): "forced tool",
}


def mechanism(body: dict[str, Any]) -> str:
    if "response_format" in body:
        return str(body["response_format"]["type"])
    if (body.get("tool_choice") or {}).get("type") == "tool":
        return "forced tool"
    if "format" in body.get("output_config", {}):
        return "output_config.format"
    return "prompt"


@pytest.mark.filterwarnings("ignore:.*falling back to strategy='repair'")
@pytest.mark.parametrize(("kind", "strategy"), list(HOSTED))
async def test_hosted_providers(kind: str, strategy: str, keys: None) -> None:
    sent: list[dict[str, Any]] = []
    model = hosted(kind, sent)
    expected = HOSTED[(kind, strategy)]
    if expected in ("json_schema", "forced tool", "output_config.format", "prompt"):
        city = await tether.structured.agenerate(model, PROMPT, City, strategy=strategy)  # type: ignore[arg-type]
        assert city == City(**ANSWER)
        assert [mechanism(body) for body in sent] == [expected]
        if expected == "prompt":
            assert "JSON schema" in json.dumps(sent[0])  # the schema went in as instructions
    else:
        with pytest.raises(UnsupportedParameter, match=expected):
            await tether.structured.agenerate(model, PROMPT, City, strategy=strategy)  # type: ignore[arg-type]
        assert sent == []  # refused before anything was sent


def test_an_endpoint_without_json_schema_falls_back_under_auto_with_a_warning(
    keys: None,
) -> None:
    sent: list[dict[str, Any]] = []
    with pytest.warns(UserWarning, match="falling back to strategy='repair'"):
        generate(hosted("endpoint", sent), PROMPT, City)
    assert [mechanism(body) for body in sent] == ["prompt"]


class Recorder(Model):
    """Passes calls on, keeping the Request each one carried."""

    def __init__(self, inner: Model) -> None:
        self.inner, self.id, self.requests = inner, inner.id, []

    def capabilities(self) -> Any:
        return self.inner.capabilities()

    async def request(self, request: Any) -> Any:
        self.requests.append(request)
        return await self.inner.request(request)

    def request_stream(self, request: Any) -> Any:
        return self.inner.request_stream(request)


@pytest.mark.parametrize("strategy", ["grammar", "auto"])
def test_the_local_model_constrains_with_its_grammar(strategy: str) -> None:
    model = Recorder(tether.model("local:smollm2"))
    city = generate(model, PROMPT, City, strategy=strategy, temperature=0, max_tokens=60)  # type: ignore[arg-type]
    assert isinstance(city, City)
    output = model.requests[0].output
    assert output is not None and output.mode == "grammar" and output.bounds is not None


def test_repair_on_the_local_model_asks_in_the_prompt() -> None:
    model = Recorder(tether.model("local:smollm2"))
    with contextlib.suppress(OutputInvalid):  # a 135M model rarely repairs its way to JSON
        generate(model, PROMPT, City, strategy="repair", attempts=1, max_tokens=20)
    assert model.requests[0].output is None
    assert "JSON schema" in model.requests[0].messages[0].text


def test_native_on_the_local_model_is_refused() -> None:
    model = Recorder(tether.model("local:smollm2"))
    with pytest.raises(UnsupportedParameter, match="no native structured-output mode"):
        generate(model, PROMPT, City, strategy="native")


def test_an_endpoint_that_declares_json_schema_gets_native(project: Path, keys: None) -> None:
    sent: list[dict[str, Any]] = []
    options = {
        "base_url": "http://box.test/v1",
        "endpoint": "box",
        "json_schema": True,
        "http_client": wire(sent),
    }
    model = ProviderModel(OpenAIProvider("any", options))
    assert generate(model, PROMPT, City) == City(**ANSWER)
    assert generate(model, PROMPT, City, strategy="native") == City(**ANSWER)
    assert [mechanism(body) for body in sent] == ["json_schema", "json_schema"]
    with pytest.raises(UnsupportedParameter, match="grammar-constrained decoding is for local"):
        generate(model, PROMPT, City, strategy="grammar")
