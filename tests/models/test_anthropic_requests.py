"""What real Anthropic requests carry, through the same fake Messages endpoint: prompt caching,
documents, adaptive thinking and effort, JSON output, strict and deferred tools, metadata,
service tiers and provider options. Each test checks the body the adapter sent and plays a
documented reply, plain and streamed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import pytest
from pydantic import BaseModel
from test_anthropic import (
    MODEL,
    WEATHER,
    FakeAnthropic,
    api_key,
    collect,
    comparable,
    fake,
    final,
    json_reply,
    sse_reply,
)

import tether.structured
from tether import errors
from tether.models.anthropic_request import (
    ADAPTIVE,
    BOTH,
    BUDGET,
    BUDGET_JSON,
    build_params,
    profile,
)
from tether.types import (
    AudioPart,
    CacheControl,
    DocumentPart,
    ImagePart,
    Message,
    OutputSchema,
    Params,
    Request,
    TextPart,
    ToolCallPart,
    ToolSpec,
    Usage,
)

__all__ = ["api_key", "fake"]  # the fixtures, used by name

Fake = Callable[..., FakeAnthropic]
pytestmark = pytest.mark.filterwarnings("ignore:The model 'claude-sonnet-4-5':DeprecationWarning")


def ask(*messages: Message, **params: Any) -> Request:
    return Request(messages=list(messages), params=Params(**params))


# -- prompt caching ------------------------------------------------------------------------


async def test_cache_breakpoints_on_system_blocks_tools_and_the_request(fake: Fake) -> None:
    hour = CacheControl(ttl="1h")
    tool = WEATHER.model_copy(update={"cache_control": hour})
    messages = [
        Message.system("You review contracts.", cache_control=hour),
        Message.system("Quote clause numbers."),
        Message(
            role="user",
            content=[
                TextPart(
                    text="<contract>... 40 pages ...</contract>", cache_control=CacheControl()
                ),
                TextPart(text="What is the notice period?"),
            ],
        ),
    ]

    def check(body: dict[str, Any]) -> None:
        assert body["system"] == [
            {
                "type": "text",
                "text": "You review contracts.",
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            },
            {"type": "text", "text": "Quote clause numbers."},
        ]
        assert body["messages"][0]["content"] == [
            {
                "type": "text",
                "text": "<contract>... 40 pages ...</contract>",
                "cache_control": {"type": "ephemeral"},
            },
            {"type": "text", "text": "What is the notice period?"},
        ]
        assert body["tools"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
        assert body["cache_control"] == {"type": "ephemeral"}  # the automatic form, too

    model = fake(json_reply("message_cached_1h.json"), check=check).model()
    request = Request(messages=messages, tools=[tool], params=Params(cache_control=CacheControl()))
    response = await model.request(request)
    assert response.text == "Clause 4.2 sets the notice period at 60 days."


async def test_one_hour_cache_writes_are_counted_and_priced_apart(fake: Fake) -> None:
    endpoint = fake(json_reply("message_cached_1h.json"), sse_reply("stream_cached_1h.sse"))
    model = endpoint.model()
    plain = await model.agenerate("Notice period?", cache_control={"type": "ephemeral"})
    assert plain.usage == Usage(
        input_tokens=50 + 10000 + 3000,
        output_tokens=200,
        cached_tokens=10000,
        cache_write_tokens=3000,
        cache_write_1h_tokens=2000,
    )
    # claude-sonnet-4-5: input 3, cached 0.30, 5-minute write 3.75, 1-hour write 6, output 15
    by_hand = (50 * 3.0 + 10000 * 0.30 + 1000 * 3.75 + 2000 * 6.0 + 200 * 15.0) / 1e6
    assert plain.cost_usd == pytest.approx(by_hand, rel=1e-12)
    streamed = final(
        await collect(model.astream("Notice period?", cache_control={"type": "ephemeral"}))
    )
    assert comparable(streamed) == comparable(plain)


def test_a_mark_on_a_tool_call_and_its_result_reaches_their_blocks() -> None:
    mark = CacheControl()
    messages = [
        Message.user("Weather?"),
        Message(
            role="assistant",
            content=[ToolCallPart(id="t1", name="get_weather", cache_control=mark)],
        ),
        Message(role="tool", content=[*Message.tool_result("t1", "18 C").content]),
    ]
    messages[2].content[0].cache_control = mark  # type: ignore[union-attr]
    wire = build_params(Request(messages=messages), MODEL)["messages"]
    assert wire[1]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert wire[2]["content"][0]["cache_control"] == {"type": "ephemeral"}


# -- documents -----------------------------------------------------------------------------


def test_documents_from_each_source_with_their_options() -> None:
    message = Message(
        role="user",
        content=[
            DocumentPart(data="JVBERi0xLjQK", title="Lease", context="Signed 2024", citations=True),
            DocumentPart(url="https://example.com/terms.pdf", cache_control=CacheControl()),
            DocumentPart(text="The grass is green.", filename="facts.txt"),
            DocumentPart(file_id="file_011CNha8iCJcU1wXNR6q4V8w", citations=False),
            TextPart(text="Summarise them."),
        ],
    )
    blocks = build_params(Request(messages=[message]), MODEL)["messages"][0]["content"]
    assert blocks == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"},
            "title": "Lease",
            "context": "Signed 2024",
            "citations": {"enabled": True},
        },
        {
            "type": "document",
            "source": {"type": "url", "url": "https://example.com/terms.pdf"},
            "cache_control": {"type": "ephemeral"},
        },
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "The grass is green."},
            "title": "facts.txt",  # the file name stands in for a title
        },
        {
            "type": "document",
            "source": {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"},
            "citations": {"enabled": False},
        },
        {"type": "text", "text": "Summarise them."},
    ]


async def test_a_document_reaches_the_endpoint_and_its_answer_comes_back(fake: Fake) -> None:
    def check(body: dict[str, Any]) -> None:
        assert body["messages"][0]["content"][0]["type"] == "document"

    model = fake(json_reply("message_text.json"), check=check).model()
    message = Message(
        role="user", content=[DocumentPart(text="Hi there."), TextPart(text="Reply.")]
    )
    assert (await model.agenerate(message)).text == "Hello! How can I help you today?"


def test_a_document_must_have_exactly_one_source() -> None:
    with pytest.raises(
        ValueError, match="exactly one of data, url, text, file_id; this one has none"
    ):
        DocumentPart()
    with pytest.raises(ValueError, match="this one has data, url"):
        DocumentPart(data="x", url="https://example.com/a.pdf")


def test_base64_documents_other_than_pdf_are_refused() -> None:
    message = Message(role="user", content=[DocumentPart(data="aGk=", media_type="text/csv")])
    with pytest.raises(errors.UnsupportedParameter, match=r"only as a PDF.*DocumentPart\(text="):
        build_params(Request(messages=[message]), MODEL)


async def test_audio_is_refused_before_sending(fake: Fake) -> None:
    message = Message(role="user", content=[AudioPart(data="UklGRg==", format="wav")])
    with pytest.raises(errors.UnsupportedParameter, match="takes no audio; send a transcript"):
        await fake().model().agenerate(message)


# -- thinking: one knob, a budget or an effort ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("claude-opus-4-7", ADAPTIVE),
        ("claude-opus-4-8", ADAPTIVE),
        ("claude-sonnet-5", ADAPTIVE),
        ("claude-opus-5-5", ADAPTIVE),
        ("claude-mythos-preview", ADAPTIVE),
        ("claude-fable-5-1", ADAPTIVE),
        ("claude-opus-4-6", BOTH),
        ("claude-sonnet-4-6", BOTH),
        ("claude-opus-4-5-20251101", BUDGET_JSON),
        ("claude-sonnet-4-5-20250929", BUDGET_JSON),
        ("claude-haiku-4-5", BUDGET_JSON),
        ("claude-opus-4-1", BUDGET_JSON),
        ("claude-opus-4-20250514", BUDGET),
        ("claude-sonnet-4-0", BUDGET),
        ("claude-3-7-sonnet-latest", BUDGET),
        ("corp-gateway-model", BUDGET),
    ],
)
def test_each_model_family_has_its_profile(name: str, expected: object) -> None:
    assert profile(name) == expected


@pytest.mark.parametrize(
    ("name", "budget", "thinking", "effort", "max_tokens"),
    [
        # adaptive only: a word is sent as it is; a token count becomes its effort level
        ("claude-opus-4-7", "high", {"type": "adaptive"}, "high", 4096 + 16384),
        ("claude-opus-4-7", "xhigh", {"type": "adaptive"}, "xhigh", 4096 + 32768),
        ("claude-opus-4-7", 5000, {"type": "adaptive"}, "medium", 4096 + 8192),
        ("claude-opus-4-7", 1500, {"type": "adaptive"}, "low", 4096 + 2048),
        # both: a token count is a budget, a word adaptive thinking at that effort
        ("claude-sonnet-4-6", 3000, {"type": "enabled", "budget_tokens": 3000}, None, 7096),
        ("claude-sonnet-4-6", "max", {"type": "adaptive"}, "max", 4096 + 49152),
        # budget only: a word becomes its budget
        (MODEL, "medium", {"type": "enabled", "budget_tokens": 8192}, None, 4096 + 8192),
        (MODEL, "minimal", {"type": "enabled", "budget_tokens": 1024}, None, 4096 + 1024),
    ],
)
def test_reasoning_budget_maps_to_thinking_and_effort(
    name: str, budget: int | str, thinking: dict[str, Any], effort: str | None, max_tokens: int
) -> None:
    params = build_params(ask(Message.user("27 * 453?"), reasoning_budget=budget), name)
    assert params["thinking"] == thinking
    assert params.get("output_config", {}).get("effort") == effort
    assert params["max_tokens"] == max_tokens


@pytest.mark.parametrize("budget", [0, "none"])
def test_no_thinking_sends_no_thinking(budget: int | str) -> None:
    params = build_params(ask(Message.user("hi"), reasoning_budget=budget), "claude-opus-4-7")
    assert "thinking" not in params and "output_config" not in params


async def test_adaptive_thinking_on_the_wire_plain_and_streamed(fake: Fake) -> None:
    def check(body: dict[str, Any]) -> None:
        assert body["thinking"] == {"type": "adaptive"}
        assert body["output_config"] == {"effort": "low"}
        assert body["max_tokens"] == 3000

    endpoint = fake(
        json_reply("message_thinking.json"), sse_reply("stream_thinking.sse"), check=check
    )
    model = endpoint.model("claude-opus-4-7")
    plain = await model.agenerate("What is 27 * 453?", reasoning_budget="low", max_tokens=3000)
    assert plain.message.content[0].type == "reasoning"
    assert plain.usage.reasoning_tokens == 150
    events = await collect(
        model.astream("What is 27 * 453?", reasoning_budget="low", max_tokens=3000)
    )
    assert final(events).text == plain.text


@pytest.mark.parametrize(
    ("name", "word", "says"),
    [
        ("claude-sonnet-4-6", "xhigh", "high, low, max, medium, none, not 'xhigh'"),
        ("claude-opus-4-7", "minimal", "not 'minimal'"),
    ],
)
async def test_an_effort_the_model_lacks_is_refused_naming_its_levels(
    fake: Fake, name: str, word: str, says: str
) -> None:
    model = fake().model(name)
    with pytest.raises(errors.UnsupportedParameter, match=says):
        await model.agenerate("hi", reasoning_budget=word)


def test_adaptive_thinking_cannot_force_a_tool_either() -> None:
    request = ask(Message.user("hi"), reasoning_budget="high", tool_choice="get_weather")
    request.tools.append(WEATHER)
    with pytest.raises(errors.UnsupportedParameter, match="cannot force a tool while thinking"):
        build_params(request, "claude-opus-4-7")


# -- JSON output through output_config.format ----------------------------------------------


class WeatherReport(BaseModel):
    location: str
    unit: Literal["celsius", "fahrenheit"]
    temperature: float


REPORT = OutputSchema(name="WeatherReport", schema=WeatherReport.model_json_schema())
REPORT_JSON = '{"location": "San José, CA", "unit": "celsius", "temperature": 18.5}'


async def test_output_goes_through_output_config_format_where_the_model_has_it(
    fake: Fake,
) -> None:
    def check(body: dict[str, Any]) -> None:
        assert "tools" not in body and "tool_choice" not in body
        schema = body["output_config"]["format"]["schema"]
        assert body["output_config"]["format"]["type"] == "json_schema"
        assert schema["additionalProperties"] is False  # the SDK's transform closes objects
        assert set(schema["properties"]) == {"location", "unit", "temperature"}

    endpoint = fake(
        json_reply("message_json_output.json"), sse_reply("stream_json_output.sse"), check=check
    )
    model = endpoint.model()
    request = Request(messages=[Message.user("Weather in San José?")], output=REPORT)
    plain = await model.request(request)
    assert plain.text == REPORT_JSON and plain.finish_reason == "stop"
    streamed = final(await collect(model.request_stream(request)))
    assert comparable(streamed) == comparable(plain)


async def test_json_output_and_thinking_go_together(fake: Fake) -> None:
    def check(body: dict[str, Any]) -> None:
        assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
        assert "format" in body["output_config"] and "tools" not in body

    model = fake(json_reply("message_json_output.json"), check=check).model()
    report = await tether.structured.agenerate(
        model, "Weather in San José?", WeatherReport, strategy="native", reasoning_budget=2048
    )
    assert report.temperature == 18.5


@pytest.mark.parametrize(
    ("name", "options", "strict"),
    [
        ("claude-sonnet-4-0", {}, True),  # no output_config.format: the forced tool
        (MODEL, {"structured_output": "tool"}, True),  # an endpoint's choice
        (MODEL, {}, False),  # a non-strict schema: the forced tool takes any schema
    ],
)
def test_the_forced_tool_stays_the_fallback(
    name: str, options: dict[str, Any], strict: bool
) -> None:
    output = REPORT.model_copy(update={"strict": strict})
    request = Request(messages=[Message.user("Weather?")], output=output)
    params = build_params(request, name, options)
    assert params["tool_choice"] == {"type": "tool", "name": "WeatherReport"}
    assert "output_config" not in params


async def test_strict_false_reaches_the_forced_tool_from_generate(fake: Fake) -> None:
    def check(body: dict[str, Any]) -> None:
        assert body["tool_choice"] == {"type": "tool", "name": "WeatherReport"}

    model = fake(json_reply("message_output.json"), check=check).model()
    report = await model.agenerate("Weather?", output=WeatherReport, strict=False)
    assert report.location == "San José, CA"


def test_a_schema_the_format_cannot_take_is_unsupported() -> None:
    output = OutputSchema(name="Anything", schema={"properties": {"x": {}}})
    with pytest.raises(errors.UnsupportedParameter, match="strict=False for the forced tool"):
        build_params(Request(messages=[Message.user("hi")], output=output), MODEL)


# -- tools: strict and deferred ------------------------------------------------------------


async def test_strict_tools_are_refused_where_the_model_has_no_strict_mode(fake: Fake) -> None:
    strict = WEATHER.model_copy(update={"strict": True})
    model = fake().model("claude-sonnet-4-0")
    with pytest.raises(errors.UnsupportedParameter, match="has no strict tool use"):
        await model.agenerate("Weather?", tools=[strict])


async def test_deferred_tools_come_with_a_tool_search_tool(fake: Fake) -> None:
    deferred = {**WEATHER.model_dump(), "defer_loading": True}

    def check(body: dict[str, Any]) -> None:
        assert body["tools"][0]["defer_loading"] is True
        assert body["tools"][1] == {
            "type": "tool_search_tool_regex_20251119",
            "name": "tool_search_tool_regex",
        }

    endpoint = fake(
        json_reply("message_tool_search.json"), sse_reply("stream_tool_search.sse"), check=check
    )
    model = endpoint.model()
    plain = await model.agenerate("Weather in Lima?", tools=[deferred])
    assert plain.text == "I'll look for a weather tool."
    assert plain.tool_calls == [
        ToolCallPart(id="toolu_01DeferredWeather00001", name="get_weather",
                     arguments='{"location": "Lima, Peru"}')
    ]  # fmt: skip
    assert plain.finish_reason == "tool_calls"  # the search ran at Anthropic; the call is ours
    streamed = final(await collect(model.astream("Weather in Lima?", tools=[deferred])))
    assert comparable(streamed) == comparable(plain)


def test_a_tool_search_tool_given_in_provider_options_is_not_doubled() -> None:
    bm25 = {"type": "tool_search_tool_bm25_20251119", "name": "tool_search_tool_bm25"}
    request = Request(
        messages=[Message.user("hi")],
        tools=[ToolSpec(name="get_weather", defer_loading=True)],
        params=Params(provider_options={"anthropic": {"tools": [bm25]}}),
    )
    tools = build_params(request, MODEL)["tools"]
    assert [t["name"] for t in tools] == ["get_weather", "tool_search_tool_bm25"]


# -- metadata, service tier, n, provider options ------------------------------------------


async def test_user_and_service_tier_become_metadata_and_service_tier(fake: Fake) -> None:
    def check(body: dict[str, Any]) -> None:
        assert body["metadata"] == {"user_id": "5f1c-hashed-user"}
        assert body["service_tier"] == "standard_only"

    model = fake(json_reply("message_text.json"), check=check).model()
    await model.agenerate("Hello", user="5f1c-hashed-user", service_tier="standard_only")


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"service_tier": "flex"}, "knows the service tiers auto, standard_only, not 'flex'"),
        ({"n": 2}, "one answer per call; make n calls"),
    ],
)
async def test_what_anthropic_cannot_honour_is_refused(
    fake: Fake, params: dict[str, Any], says: str
) -> None:
    with pytest.raises(errors.UnsupportedParameter, match=says):
        await fake().model().agenerate("hi", **params)


async def test_n_of_one_asks_nothing(fake: Fake) -> None:
    def check(body: dict[str, Any]) -> None:
        assert "n" not in body

    await fake(json_reply("message_text.json"), check=check).model().agenerate("hi", n=1)


async def test_provider_options_merge_only_anthropics_own(fake: Fake) -> None:
    search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
    options = {
        "anthropic": {
            "top_k": 5,
            "tools": [search],  # a server tool, beside tether's own
            "metadata": {"user_id": "from-options"},
        },
        "openai": {"logit_bias": {"50256": -100}},
    }
    endpoint = fake(json_reply("message_server_tools.json"))
    await endpoint.model().agenerate(
        "When was Shannon born?", tools=[WEATHER], provider_options=options
    )
    [body] = endpoint.bodies
    assert body["top_k"] == 5 and "logit_bias" not in body
    assert [t["name"] for t in body["tools"]] == ["get_weather", "web_search"]
    assert body["metadata"] == {"user_id": "from-options"}


async def test_extra_headers_and_extra_body_reach_the_wire(fake: Fake) -> None:
    options = {
        "anthropic": {
            "extra_headers": {"anthropic-beta": "context-1m-2025-08-07"},
            "extra_body": {"speed": "fast"},
        }
    }
    endpoint = fake(json_reply("message_text.json"))
    await endpoint.model().agenerate("hi", provider_options=options)
    assert endpoint.headers[0]["anthropic-beta"] == "context-1m-2025-08-07"
    assert endpoint.bodies[0]["speed"] == "fast"
    assert "extra_headers" not in endpoint.bodies[0]


def test_a_provider_option_tether_already_sets_is_a_config_error() -> None:
    request = ask(
        Message.user("hi"), max_tokens=10, provider_options={"anthropic": {"max_tokens": 99}}
    )
    with pytest.raises(
        errors.ConfigError, match=r"provider_options.anthropic.max_tokens = 99.*one way"
    ):
        build_params(request, MODEL)


def test_a_misspelt_provider_name_is_a_config_error() -> None:
    from tether.models.base import build_request

    with pytest.raises(errors.ConfigError, match=r"'antropic' is none \(did you mean 'anthropic'"):
        build_request("hi", provider_options={"antropic": {"top_k": 5}})


# -- the developer role and keys -----------------------------------------------------------


def test_developer_messages_join_the_system_prompt() -> None:
    request = Request(
        messages=[
            Message.system("Be brief."),
            Message.developer("Use metric units."),
            Message.user("hi"),
        ]
    )
    assert build_params(request, MODEL)["system"] == "Be brief.\n\nUse metric units."


async def test_an_api_key_given_as_an_option_needs_no_variable(
    fake: Fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_anthropic import KEY

    monkeypatch.delenv("ANTHROPIC_API_KEY")
    model = fake(json_reply("message_text.json")).model(api_key=KEY)
    assert (await model.agenerate("hi")).text


def test_images_keep_their_mapping_with_a_mark() -> None:
    message = Message(
        role="user",
        content=[ImagePart(url="https://example.com/a.png", cache_control=CacheControl())],
    )
    [block] = build_params(Request(messages=[message]), MODEL)["messages"][0]["content"]
    assert block == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.com/a.png"},
        "cache_control": {"type": "ephemeral"},
    }


async def test_a_call_the_sdk_only_makes_as_a_stream_is_streamed_for_you(fake: Fake) -> None:
    # "max" effort on a budget model: 4,096 + 49,152 tokens by default, past the SDK's
    # non-streaming limit (it refuses, "Streaming is required"); the answer is the same
    def check(body: dict[str, Any]) -> None:
        assert body["stream"] is True
        assert body["max_tokens"] > 21_333

    endpoint = fake(sse_reply("stream_text.sse"), check=check)
    plain = fake(sse_reply("stream_text.sse"))
    response = await endpoint.model().request(ask(Message.user("Hi"), reasoning_budget="max"))
    streamed = final(await collect(plain.model().request_stream(ask(Message.user("Hi")))))
    assert response.text == streamed.text and response.text
    assert response.usage == streamed.usage


def test_a_document_in_the_system_prompt_is_refused_not_dropped() -> None:
    system = Message(
        role="system",
        content=[TextPart(text="Use this."), DocumentPart(text="The grass is green.")],
    )
    with pytest.raises(errors.UnsupportedParameter, match="system prompt takes text only"):
        build_params(ask(system, Message.user("Colour?")), MODEL)


def test_deferred_tools_are_refused_on_models_without_tool_search(fake: Fake) -> None:
    deferred = ToolSpec(**{**WEATHER.model_dump(), "defer_loading": True})
    request = Request(messages=[Message.user("Weather?")], tools=[deferred])
    old = fake().model("claude-3-5-haiku-20241022")
    with pytest.raises(errors.UnsupportedParameter, match="has no tool search"):
        old.generate(request)
