"""What real Chat Completions requests carry, through the same recorded wire: JSON mode and
non-strict schemas from the public API, file and audio parts, the developer role, user,
service tiers, several choices, reasoning effort words, provider options, and a model's own
base_url and api_key."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from pydantic import BaseModel
from test_openai_wire import (
    GATEWAY,
    WEATHER,
    ModelFactory,
    Wire,
    api_key,
    collect,
    openai_model,
    recorded,
    streamed,
)

import tether
import tether.structured
from tether.errors import ConfigError, UnsupportedParameter
from tether.models.base import ProviderModel
from tether.models.openai import OpenAIProvider
from tether.types import AudioPart, CacheControl, DocumentPart, Message, TextPart

__all__ = ["api_key", "openai_model"]  # the fixtures, used by name


def answer_with(content: str) -> httpx2.Response:
    """The recorded plain completion, with ``content`` as the assistant's text."""
    data = json.loads(recorded("completion_text.json").content)
    data["choices"][0]["message"]["content"] = content
    return httpx2.Response(200, json=data)


# -- structured answers: JSON mode and non-strict schemas ------------------------------------


async def test_a_free_form_object_asks_for_json_mode(openai_model: ModelFactory) -> None:
    wire = Wire(answer_with('{"city": "Lima", "population": 10000000}'))
    found = await openai_model(wire).agenerate("Lima as JSON", output=dict[str, Any])
    assert wire.sent["response_format"] == {"type": "json_object"}
    assert found == {"city": "Lima", "population": 10000000}
    assert [m["role"] for m in wire.sent["messages"]] == ["user"]  # it already says JSON


async def test_json_mode_asks_for_json_when_the_prompt_does_not(openai_model: ModelFactory) -> None:
    # OpenAI refuses JSON mode (400) unless the conversation says "JSON" somewhere
    wire = Wire(answer_with('{"city": "Lima"}'))
    await openai_model(wire).agenerate("Tell me about Lima", output=dict[str, Any])
    assert wire.sent["messages"][0] == {"role": "system", "content": "Answer with a JSON object."}
    assert wire.sent["messages"][1]["content"] == "Tell me about Lima"


class Forecast(BaseModel):
    """Tomorrow's weather for one city."""

    city: str
    high_c: float | None = None


async def test_strict_false_sends_the_schema_as_it_is_with_its_description(
    openai_model: ModelFactory,
) -> None:
    wire = Wire(answer_with('{"city": "Lima"}'))
    found = await openai_model(wire).agenerate("Forecast?", output=Forecast, strict=False)
    assert found == Forecast(city="Lima")
    assert wire.sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "Forecast",
            "schema": Forecast.model_json_schema(),  # not closed, optional stays optional
            "strict": False,
            "description": "Tomorrow's weather for one city.",
        },
    }


async def test_strict_false_reaches_a_streamed_structured_answer(
    openai_model: ModelFactory,
) -> None:
    from tether.structured import astream

    class Receipt(BaseModel):
        company: str
        date: str
        total: float

    wire = Wire(streamed("stream_output.sse"))
    items = [i async for i in astream(openai_model(wire), "Extract", Receipt, strict=False)]
    assert items[-1].company == "ACME SDN BHD"
    assert wire.sent["response_format"]["json_schema"]["strict"] is False


async def test_strict_tools_keep_their_schema_and_flag(openai_model: ModelFactory) -> None:
    wire = Wire(recorded("completion_tool_calls.json"))
    strict = WEATHER.model_copy(update={"strict": True})
    await openai_model(wire).agenerate("Weather?", tools=[strict])
    assert wire.sent["tools"][0]["function"]["strict"] is True
    assert wire.sent["tools"][0]["function"]["parameters"] == WEATHER.parameters


# -- input parts and roles -------------------------------------------------------------------


async def test_files_and_audio_become_file_and_input_audio_parts(
    openai_model: ModelFactory,
) -> None:
    message = Message(
        role="user",
        content=[
            TextPart(text="Compare the contract with the call."),
            DocumentPart(data="JVBERi0xLjQK", filename="contract.pdf"),
            DocumentPart(file_id="file-6F2ksmvXxt4VdoqmHRw6kL"),
            AudioPart(data="UklGRiQAAABXQVZF", format="wav"),
        ],
    )
    wire = Wire(recorded("completion_text.json"))
    await openai_model(wire, "gpt-4o-audio-preview").agenerate(message)
    assert wire.sent["messages"][0]["content"] == [
        {"type": "text", "text": "Compare the contract with the call."},
        {
            "type": "file",
            "file": {
                "file_data": "data:application/pdf;base64,JVBERi0xLjQK",
                "filename": "contract.pdf",
            },
        },
        {"type": "file", "file": {"file_id": "file-6F2ksmvXxt4VdoqmHRw6kL"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}},
    ]


@pytest.mark.parametrize(
    ("part", "says"),
    [
        (AudioPart(data="UklGRg=="), "does not accept audio; use an audio model"),
        (DocumentPart(url="https://example.com/a.pdf"), "cannot take a document with url"),
        (DocumentPart(text="plain"), "with text"),
        (DocumentPart(data="JVBE", filename="a.pdf", citations=True), "with citations"),
        (DocumentPart(data="JVBE"), "only with a file name"),
    ],
)
async def test_what_openai_cannot_read_is_refused_before_sending(
    openai_model: ModelFactory, part: Any, says: str
) -> None:
    wire = Wire()
    with pytest.raises(UnsupportedParameter, match=says):
        await openai_model(wire).agenerate(Message(role="user", content=[part]))
    assert wire.requests == []


async def test_developer_messages_keep_their_role_on_openai_and_turn_system_elsewhere(
    openai_model: ModelFactory,
) -> None:
    messages = [Message.developer("Answer in French."), Message.user("Hello")]
    official, gateway = (
        Wire(recorded("completion_text.json")),
        Wire(recorded("completion_text.json")),
    )
    await openai_model(official).agenerate(messages)
    await openai_model(gateway, "smollm2", base_url=GATEWAY).agenerate(messages)
    assert official.sent["messages"][0] == {"role": "developer", "content": "Answer in French."}
    assert gateway.sent["messages"][0] == {"role": "system", "content": "Answer in French."}


# -- typed parameters ------------------------------------------------------------------------


async def test_user_service_tier_and_an_effort_word_are_sent(openai_model: ModelFactory) -> None:
    wire = Wire(recorded("completion_text.json"))
    await openai_model(wire, "gpt-5").agenerate(
        "hi", user="user-5f1c", service_tier="flex", reasoning_budget="xhigh"
    )
    assert wire.sent["user"] == "user-5f1c"
    assert wire.sent["service_tier"] == "flex"
    assert wire.sent["reasoning_effort"] == "xhigh"  # a word goes as it is


async def test_a_service_tier_openai_lacks_is_refused(openai_model: ModelFactory) -> None:
    with pytest.raises(
        UnsupportedParameter, match="auto, default, fast, flex, priority, scale, not"
    ):
        await openai_model(Wire()).agenerate("hi", service_tier="standard_only")


async def test_n_answers_come_back_as_choices(openai_model: ModelFactory) -> None:
    wire = Wire(recorded("completion_choices.json"))
    response = await openai_model(wire).agenerate("Greet me in French", n=3)
    assert wire.sent["n"] == 3
    assert [c.message.text for c in response.choices] == [
        "Bonjour !",
        "Salut, comment",
        "I can't help with that.",
    ]
    assert [c.finish_reason for c in response.choices] == ["stop", "length", "refusal"]
    assert response.text == "Bonjour !" and response.finish_reason == "stop"  # the first's
    assert response.usage.output_tokens == 14  # all of them


async def test_one_answer_leaves_choices_empty(openai_model: ModelFactory) -> None:
    response = await openai_model(Wire(recorded("completion_text.json"))).agenerate("hi")
    assert response.choices == []


async def test_several_answers_are_refused_on_a_stream(openai_model: ModelFactory) -> None:
    with pytest.raises(UnsupportedParameter, match=r"n=2 answers come with a whole response"):
        await collect(openai_model(Wire()).astream("hi", n=2))


async def test_cache_marks_need_nothing_sent_to_openai(openai_model: ModelFactory) -> None:
    wire = Wire(recorded("completion_text.json"))
    message = Message.system("Long instructions.", cache_control=CacheControl())
    await openai_model(wire).agenerate(
        [message, Message.user("hi")], cache_control={"type": "ephemeral"}
    )
    assert wire.sent["messages"][0] == {"role": "system", "content": "Long instructions."}
    assert "cache_control" not in wire.sent


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"n": 2}, "pass what this server takes beyond them in provider_options"),
        ({"user": "u1"}, "provider_options"),
        ({"cache_control": {"type": "ephemeral"}}, "declares no prompt caching"),
    ],
)
async def test_a_compatible_endpoint_declares_only_the_common_parameters(
    openai_model: ModelFactory, params: dict[str, Any], says: str
) -> None:
    with pytest.raises(UnsupportedParameter, match=says):
        await openai_model(Wire(), "smollm2", base_url=GATEWAY).agenerate("hi", **params)


async def test_deferred_tools_are_refused(openai_model: ModelFactory) -> None:
    deferred = WEATHER.model_copy(update={"defer_loading": True})
    with pytest.raises(UnsupportedParameter, match="loads every tool up front"):
        await openai_model(Wire()).agenerate("hi", tools=[deferred])


# -- provider options ------------------------------------------------------------------------


async def test_provider_options_merge_only_openais_own(openai_model: ModelFactory) -> None:
    wire = Wire(recorded("completion_text.json"))
    options = {
        "openai": {
            "logit_bias": {"50256": -100},
            "extra_headers": {"OpenAI-Organization": "org-test"},
            "extra_body": {"reasoning": {"summary": "auto"}},
            "stop": ["END"],  # extends tether's own
            "not_in_the_sdk": True,  # sent in the body, as extra_body would
        },
        "anthropic": {"top_k": 5},
    }
    await openai_model(wire).agenerate("hi", stop=["\n"], provider_options=options)
    body = wire.sent
    assert body["logit_bias"] == {"50256": -100}
    assert body["stop"] == ["\n", "END"]
    assert body["reasoning"] == {"summary": "auto"} and body["not_in_the_sdk"] is True
    assert "top_k" not in body and "extra_headers" not in body
    assert wire.requests[0].headers["openai-organization"] == "org-test"


async def test_a_provider_option_that_repeats_a_parameter_is_a_config_error(
    openai_model: ModelFactory,
) -> None:
    wire = Wire()
    options = {"openai": {"temperature": 1.0}}
    with pytest.raises(ConfigError, match=r"provider_options.openai.temperature = 1.0.*0.2"):
        await openai_model(wire).agenerate("hi", temperature=0.2, provider_options=options)
    assert wire.requests == []


async def test_an_alias_and_a_caller_merge_their_provider_options(
    openai_model: ModelFactory,
) -> None:
    from tether.models.middleware.defaults import WithDefaults

    wire = Wire(recorded("completion_text.json"))
    alias = {"provider_options": {"openai": {"logit_bias": {"1": 5}, "store": False}}}
    model = WithDefaults(openai_model(wire), alias)
    await model.agenerate("hi", provider_options={"openai": {"store": True}})
    assert wire.sent["logit_bias"] == {"1": 5}
    assert wire.sent["store"] is True  # the caller's win


# -- a model's own base_url and api_key ------------------------------------------------------


def provider_of(model: tether.Model) -> OpenAIProvider:
    inner: Any = model
    while not isinstance(inner, ProviderModel):
        inner = inner.inner
    assert isinstance(inner.provider, OpenAIProvider)
    return inner.provider


async def test_a_models_base_url_and_api_key_reach_the_wire_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch, project: Any
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    key = "sk-proj-per-model-0123456789"
    model = tether.model("openai:gpt-4.1-mini", base_url="https://proxy.test/v1", api_key=key)
    provider = provider_of(model)
    wire = Wire(recorded("completion_text.json"))
    provider.options["http_client"] = httpx2.AsyncClient(
        transport=httpx2.MockTransport(wire.handle)
    )
    from tether.testing import record

    with record(project / "calls.json"):
        response = await model.agenerate("Say hello")
    request = wire.requests[0]
    assert str(request.url) == "https://proxy.test/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {key}"
    # OpenAI at another address keeps OpenAI's capabilities and prices
    assert response.cost_usd is not None and "max_completion_tokens" not in wire.sent
    assert provider.capabilities().vision
    assert key not in (project / "calls.json").read_text()  # nor in the cassette
    from tether.redaction import known_secrets, redact

    assert key in known_secrets()  # registered, so every sink redacts it whatever its shape
    assert key not in redact(f"Authorization: Bearer {key}")
    assert key not in repr(model) and key not in repr(tether.load_settings())


def test_a_key_is_never_read_from_or_dumped_into_settings() -> None:
    from tether.config import ModelConfig

    config = ModelConfig.model_validate({"id": "openai:gpt-4.1", "api_key": "sk-secret-0123456789"})
    assert "sk-secret" not in json.dumps(config.model_dump(mode="json"))
    assert "sk-secret" not in repr(config)


def test_a_local_model_takes_no_connection_settings() -> None:
    with pytest.raises(ConfigError, match="takes no base_url; remove them"):
        tether.model("local:smollm2", base_url="http://127.0.0.1:9/v1")


async def test_an_endpoint_alias_keeps_its_compatible_capabilities(project: Any) -> None:
    (project / "tether.toml").write_text(
        '[endpoints.lab]\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[models.lab-proxy]\nid = "lab:qwen"\nbase_url = "http://127.0.0.1:8/v1"\n'
        'api_key_env = "LAB_KEY"\n'
    )
    provider = provider_of(tether.model("lab-proxy"))
    assert provider.compatible and provider.base_url == "http://127.0.0.1:8/v1"
    assert provider.options["api_key_env"] == "LAB_KEY"


def test_a_cache_lifetime_is_refused_where_caching_is_automatic() -> None:
    from tether.errors import UnsupportedParameter
    from tether.models.base import ProviderModel
    from tether.models.openai import OpenAIProvider
    from tether.types import CacheControl

    long_lived = CacheControl(ttl="1h")
    for model in (
        ProviderModel(OpenAIProvider("gpt-4.1-mini")),
        tether.model("local:smollm2"),
    ):
        with pytest.raises(UnsupportedParameter, match="cannot keep a prompt cache for 1h"):
            model.generate([Message.user("hi", cache_control=long_lived)])
        with pytest.raises(UnsupportedParameter, match="drop the ttl"):
            model.generate("hi", cache_control=long_lived)
