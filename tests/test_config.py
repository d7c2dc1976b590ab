import os
from pathlib import Path

import pytest

from tether.config import load_settings, secret
from tether.errors import AuthError, ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, "utf-8")
    return path


def test_toml_then_env_then_arguments(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        project / "tether.toml", 'default_model = "openai:gpt-4.1"\n[tracing]\ncontent = "full"\n'
    )
    assert load_settings().default_model == "openai:gpt-4.1"
    monkeypatch.setenv("TETHER_MODEL", "anthropic:claude-haiku-4-5")
    settings = load_settings()
    assert settings.default_model == "anthropic:claude-haiku-4-5"
    assert settings.tracing.content == "full"
    assert load_settings(default_model="local:smollm2").default_model == "local:smollm2"


def test_home_is_beside_the_config_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project / "tether.toml", "")
    (project / "sub").mkdir()
    monkeypatch.chdir(project / "sub")
    assert load_settings().db_path == project / ".tether" / "tether.db"


def test_malformed_toml_names_file_and_line(project: Path) -> None:
    path = write(project / "tether.toml", 'default_model = "x"\n[models.fast\nid = "y"\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(path) in str(info.value)
    assert "line 2" in str(info.value)


def test_unknown_setting_names_line_and_valid_keys(project: Path) -> None:
    write(project / "tether.toml", '[models.fast]\nid = "openai:gpt-4.1-mini"\nretry = 3\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "tether.toml:3" in message
    assert "retries" in message  # the valid spelling is offered


def test_api_key_in_toml_is_refused(project: Path) -> None:
    write(project / "tether.toml", '[endpoints.x]\nbase_url = "http://h/v1"\napi_key = "sk-123"\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "tether.toml:3" in str(info.value)
    assert "environment" in str(info.value)


def test_secret_from_env_then_secrets_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AuthError) as info:
        secret("MY_KEY")
    assert "MY_KEY" in str(info.value)
    (project / ".tether").mkdir()
    write(project / ".tether" / "secrets.toml", 'MY_KEY = "from-file"\n')
    assert secret("MY_KEY") == "from-file"
    monkeypatch.setenv("MY_KEY", "from-env")
    assert secret("MY_KEY") == "from-env"


def test_bad_env_value_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_TRACE_CONTENT", "everything")
    with pytest.raises(ConfigError):
        load_settings()


def test_secrets_file_is_found_from_a_subfolder(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project / "tether.toml", "")
    (project / ".tether").mkdir()
    write(project / ".tether" / "secrets.toml", 'SUB_KEY = "found-it"\n')
    (project / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(project / "deep" / "er")
    assert secret("SUB_KEY") == "found-it"


def test_keys_of_any_shape_are_redacted_once_read(project: Path) -> None:
    from tether.redaction import redact

    (project / ".tether").mkdir()
    write(project / ".tether" / "secrets.toml", 'ODD_KEY = "gsk_live_0123456789abcdef"\n')
    assert "gsk_live" in redact("key gsk_live_0123456789abcdef")  # unknown shape, not read yet
    secret("ODD_KEY")
    assert redact("key gsk_live_0123456789abcdef") == "key [REDACTED]"


def test_the_line_named_is_the_one_in_the_right_table(project: Path) -> None:
    write(
        project / "tether.toml",
        '[models.a]\nid = "local:smollm2"\ntimeout = 5\n\n'
        '[models.b]\nid = "local:smollm2"\ntimeout = "soon"\n',
    )
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "tether.toml:7" in str(info.value)


def test_unknown_params_in_an_alias_name_file_line_and_valid_ones(project: Path) -> None:
    write(project / "tether.toml", '[models.x]\nid = "local:smollm2"\nparams = { temp = 0.1 }\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value).removeprefix(f"{project}{os.sep}")
    assert message.startswith(
        "tether.toml:3: 'models.x.params': unknown parameter 'temp'; valid parameters: "
        "temperature, top_p, max_tokens,"
    )


def test_a_wrong_param_value_in_an_alias_names_it_and_why(project: Path) -> None:
    write(project / "tether.toml", '[models.x]\nid = "local:smollm2"\nparams = { seed = "x" }\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).removeprefix(f"{project}{os.sep}") == (
        "tether.toml:3: 'models.x.params': seed: input should be a valid integer, unable to "
        "parse string as an integer (got 'x')"
    )


def test_argument_overrides_keep_the_rest_of_a_table(project: Path) -> None:
    write(project / "tether.toml", "[tracing]\nenabled = false\nmax_chars = 50\n")
    settings = load_settings(tracing={"content": "full"})
    assert settings.tracing.content == "full"
    assert settings.tracing.enabled is False and settings.tracing.max_chars == 50


def test_model_overrides_are_validated() -> None:
    import tether

    with pytest.raises(ConfigError) as info:
        tether.model("local:smollm2", retrys=0)
    assert "retrys" in str(info.value)


def test_a_router_default_must_be_one_of_its_routes(project: Path) -> None:
    write(
        project / "tether.toml",
        '[routers.r]\nroutes = { a = "local:smollm2" }\ndefault = "local:smollm2"\n',
    )
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "tether.toml:" in str(info.value) and "one of the routes (a)" in str(info.value)


def test_an_alias_carries_provider_options_and_its_connection(project: Path) -> None:
    write(
        project / "tether.toml",
        '[models.proxy]\nid = "openai:gpt-4.1-mini"\nbase_url = "https://proxy.test/v1"\n'
        'api_key_env = "PROXY_KEY"\n'
        'params = { provider_options = { openai = { logit_bias = { "50256" = -100 } } } }\n',
    )
    alias = load_settings().models["proxy"]
    assert alias.base_url == "https://proxy.test/v1" and alias.api_key_env == "PROXY_KEY"
    assert alias.params["provider_options"]["openai"]["logit_bias"] == {"50256": -100}


def test_provider_options_for_an_unknown_provider_name_the_line(project: Path) -> None:
    write(
        project / "tether.toml",
        '[models.x]\nid = "local:smollm2"\nparams = { provider_options = { opnai = {} } }\n',
    )
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "tether.toml:3" in str(info.value)
    assert "'opnai' is none (did you mean 'openai'?)" in str(info.value)


def test_an_api_key_in_an_alias_is_refused(project: Path) -> None:
    write(project / "tether.toml", '[models.x]\nid = "openai:gpt-4.1"\napi_key = "sk-1234"\n')
    with pytest.raises(
        ConfigError, match=r"tether\.toml:3: 'models\.x\.api_key' looks like a credential"
    ):
        load_settings()


def test_an_anthropic_endpoint_declares_how_it_gives_structured_output(project: Path) -> None:
    from tether.models.anthropic_request import build_params
    from tether.models.registry import build_provider
    from tether.types import Message, OutputSchema, Request

    write(
        project / "tether.toml",
        '[endpoints.corp]\nprovider = "anthropic"\nbase_url = "http://127.0.0.1:9"\n'
        'structured_output = "tool"\n',
    )
    provider = build_provider("corp:claude-sonnet-4-5", load_settings())
    output = OutputSchema(name="Answer", schema={"type": "object", "properties": {}})
    request = Request(messages=[Message.user("hi")], output=output)
    params = build_params(request, provider.model_name, provider.options)
    assert params["tool_choice"] == {"type": "tool", "name": "Answer"}  # not output_config
