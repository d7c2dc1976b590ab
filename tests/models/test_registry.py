from pathlib import Path

import pytest

import tether
from tether.errors import AuthError, ModelNotFound
from tether.models.middleware.fallback import Fallback
from tether.models.middleware.router import Router
from tether.models.registry import provider_names


def test_builtin_providers_come_from_entry_points() -> None:
    assert {"openai", "anthropic", "local"} <= set(provider_names())


def test_unknown_provider_lists_what_exists() -> None:
    with pytest.raises(ModelNotFound) as info:
        tether.model("nope:model")
    message = str(info.value)
    assert "'nope:model'" in message
    for known in ("openai:NAME", "anthropic:NAME", "local:NAME"):
        assert known in message


def test_id_without_provider_is_unknown() -> None:
    with pytest.raises(ModelNotFound) as info:
        tether.model("gpt-4.1")
    assert "provider:name" in str(info.value)


def test_aliases_endpoints_and_routers_resolve(project: Path) -> None:
    (project / "tether.toml").write_text(
        '[models.fast]\nid = "local:smollm2"\nfallbacks = ["openai:gpt-4.1-mini"]\n'
        '[endpoints.box]\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[routers.assistant]\nroutes = { small = "fast", big = "box:llama" }\n'
        'default = "small"\n'
    )
    fast = tether.model("fast")
    assert isinstance(fast, Fallback)
    assert [m.id for m in fast.models] == ["local:smollm2", "openai:gpt-4.1-mini"]
    assert tether.model("box:llama").id == "box:llama"
    router = tether.model("assistant")
    assert isinstance(router, Router)
    assert set(router.routes) == {"small", "big"}


def test_unknown_alias_lists_the_declared_ones(project: Path) -> None:
    (project / "tether.toml").write_text('[models.fast]\nid = "local:smollm2"\n')
    with pytest.raises(ModelNotFound) as info:
        tether.model("fsat")
    assert "fast" in str(info.value)


def test_fallback_cycles_are_refused(project: Path) -> None:
    (project / "tether.toml").write_text(
        '[models.a]\nid = "local:smollm2"\nfallbacks = ["b"]\n'
        '[models.b]\nid = "local:smollm2"\nfallbacks = ["a"]\n'
    )
    with pytest.raises(ModelNotFound) as info:
        tether.model("a")
    assert "itself" in str(info.value)


def test_missing_api_key_names_the_variable() -> None:
    with pytest.raises(AuthError) as info:
        tether.model("openai:gpt-4.1-mini").generate("hi")
    assert "OPENAI_API_KEY" in str(info.value)
    with pytest.raises(AuthError) as info:
        tether.model("anthropic:claude-haiku-4-5").generate("hi")
    assert "ANTHROPIC_API_KEY" in str(info.value)


def test_endpoint_key_variable_is_named(project: Path) -> None:
    (project / "tether.toml").write_text(
        '[endpoints.gw]\nbase_url = "http://127.0.0.1:9/v1"\napi_key_env = "GATEWAY_KEY"\n'
    )
    with pytest.raises(AuthError) as info:
        tether.model("gw:some-model").generate("hi")
    assert "GATEWAY_KEY" in str(info.value)


def test_alias_params_are_defaults_the_caller_overrides(project: Path) -> None:
    (project / "tether.toml").write_text(
        '[models.short]\nid = "local:smollm2"\nparams = { max_tokens = 3, temperature = 0 }\n'
    )
    model = tether.model("short")
    assert model.generate("Tell me a long story.").usage.output_tokens <= 3
    assert model.generate("Tell me a long story.", max_tokens=6).usage.output_tokens > 3


def test_an_anthropic_endpoint_keeps_its_name_and_declared_capabilities(project: Path) -> None:
    (project / "tether.toml").write_text(
        '[endpoints.corp]\nprovider = "anthropic"\nbase_url = "http://127.0.0.1:9"\ntools = false\n'
    )
    from tether.errors import UnsupportedParameter

    model = tether.model("corp:claude-haiku-4-5")
    assert model.id == "corp:claude-haiku-4-5"
    with pytest.raises(UnsupportedParameter):
        model.generate("hi", tools=[{"name": "f"}], tool_choice="f")


def test_a_built_model_pickles_as_its_recipe_and_is_built_anew(project: Path) -> None:
    import pickle

    from tether.config import Settings
    from tether.testing import ScriptedModel

    settings = Settings(home=project / "elsewhere", default_model="openai:gpt-4.1-mini")
    model = tether.model("openai:gpt-4.1-mini", settings=settings, retries=0, api_key="sk-x")
    again = pickle.loads(pickle.dumps(model))
    assert again is not model and type(again) is type(model) and again.id == model.id
    assert again.__dict__["_recipe"] == (
        "openai:gpt-4.1-mini",
        settings,
        {"retries": 0, "api_key": "sk-x"},
    )
    # a Model not built by tether.model pickles as its fields, as before
    scripted = pickle.loads(pickle.dumps(ScriptedModel("hi")))
    assert isinstance(scripted, ScriptedModel) and scripted.generate("x").text == "hi"
