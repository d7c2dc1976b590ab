"""A wrong keyword or value is a ConfigError naming what is valid, on every entry point."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

import tether
import tether.structured
from tether.errors import ConfigError
from tether.models.base import build_request
from tether.testing import ScriptedModel
from tether.types import Params, check_params

PARAMS = (
    "temperature, top_p, max_tokens, stop, seed, tool_choice, reasoning_budget, logprobs, "
    "user, service_tier, n, cache_control, provider_options"
)


class Answer(BaseModel):
    text: str


def drain(events: Any) -> list[Any]:
    return list(events)


async def adrain(events: Any) -> list[Any]:
    return [event async for event in events]


# Each entry point, called with one extra keyword, and the keywords it should name.
ENTRY_POINTS: dict[str, tuple[Callable[[ScriptedModel, dict[str, Any]], Any], str]] = {
    "Model.generate": (
        lambda m, kw: m.generate("hi", **kw),
        "system, tools, metadata, output",
    ),
    "Model.agenerate": (
        lambda m, kw: asyncio.run(m.agenerate("hi", **kw)),
        "system, tools, metadata, output",
    ),
    "Model.generate(output=)": (
        lambda m, kw: m.generate("hi", output=Answer, **kw),
        "system, tools, metadata, output, strategy, attempts, bounds, strict",
    ),
    "Model.stream": (lambda m, kw: drain(m.stream("hi", **kw)), "system, tools, metadata"),
    "Model.astream": (
        lambda m, kw: asyncio.run(adrain(m.astream("hi", **kw))),
        "system, tools, metadata",
    ),
    "structured.generate": (
        lambda m, kw: tether.structured.generate(m, "hi", Answer, **kw),
        "system, tools, metadata, output, strategy, attempts, bounds, strict",
    ),
    "structured.stream": (
        lambda m, kw: drain(tether.structured.stream(m, "hi", Answer, **kw)),
        "system, tools, metadata, output, strategy, bounds, strict",
    ),
    "extract": (
        lambda m, kw: tether.extract("hi", Answer, model=m, **kw),
        "system, tools, metadata, model, instructions, strategy, attempts, bounds",
    ),
    "classify": (
        lambda m, kw: tether.classify("hi", ["a", "b"], model=m, **kw),
        "system, tools, metadata, model, instructions, strategy, attempts",
    ),
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_misspelt_keyword_names_the_valid_ones(entry: str) -> None:
    call, keywords = ENTRY_POINTS[entry]
    model = ScriptedModel()  # an empty script: any call would fail the test
    with pytest.raises(ConfigError) as caught:
        call(model, {"temprature": 0.1})
    message = str(caught.value)
    assert "unknown keyword 'temprature' (did you mean 'temperature'?)" in message
    assert message.endswith(f"valid keywords: {keywords}, and the parameters {PARAMS}")
    assert model.requests == []


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_wrong_value_names_its_parameter_and_why(entry: str) -> None:
    call, _ = ENTRY_POINTS[entry]
    model = ScriptedModel()
    with pytest.raises(ConfigError, match=r"max_tokens: input should be greater than 0 \(got -1\)"):
        call(model, {"max_tokens": -1})
    assert model.requests == []


def test_build_request_checks_what_it_is_given() -> None:
    with pytest.raises(ConfigError, match=r"unknown keyword 'sed' \(did you mean 'seed'\?\)"):
        build_request("hi", sed=3)
    with pytest.raises(ConfigError, match=r"stop\.0: input should be a valid string"):
        build_request("hi", stop=[3])


def test_check_params_says_where_the_values_came_from() -> None:
    assert check_params({"max_tokens": 5}) == Params(max_tokens=5)
    with pytest.raises(ValueError, match=r"^alias 'x': unknown parameters? 'tmp'.*; valid param"):
        check_params({"tmp": 1}, source="alias 'x'", error=ValueError)
    with pytest.raises(ConfigError) as caught:
        check_params({"temprature": 1, "top_k": 5})
    assert str(caught.value).startswith(
        "unknown parameter 'temprature' (did you mean 'temperature'?); unknown parameter 'top_k'"
        " (did you mean 'top_p'?); valid parameters: temperature,"
    )


def test_tether_model_names_its_valid_settings_and_never_echoes_a_value(project: Any) -> None:
    key = "sk-live-abcdefghijklmnopqrstuvwxyz"
    with pytest.raises(ConfigError) as caught:
        tether.model("local:smollm2", api_kye=key)
    message = str(caught.value)
    assert "unknown setting 'api_kye' (did you mean 'api_key'?)" in message
    assert "valid settings: timeout, retries" in message
    assert key not in message
    with pytest.raises(ConfigError, match="retries: input should be greater than or equal to 0"):
        tether.model("local:smollm2", retries=-1)
    (project / "tether.toml").write_text(
        '[routers.route]\ndefault = "a"\n[routers.route.routes]\na = "local:smollm2"\n'
    )
    with pytest.raises(ConfigError, match="is a router, which takes no settings of its own"):
        tether.model("route", retries=1)
