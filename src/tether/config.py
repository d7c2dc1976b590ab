"""Settings: tether.toml, then TETHER_* environment variables, then explicit arguments.

API keys never come from tether.toml: only from the environment or from the secrets file
(``.tether/secrets.toml``, which stays out of version control with the rest of ``.tether/``).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from tether.errors import AuthError, ConfigError
from tether.types import Bounds, Price, check_params

CONFIG_FILE = "tether.toml"
SECRET_KEY = re.compile(r"(api[_-]?key|secret|token|password)$", re.IGNORECASE)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Strict):
    """An alias: ``[models.NAME]`` gives a name to a model id with its own reliability settings.

    ``base_url`` sends the provider's API to another address (a proxy, a region) and
    ``api_key_env`` names the variable holding its key. ``api_key`` itself is only ever an
    argument to ``tether.model()``: never read from tether.toml, never dumped, and
    registered for redaction as soon as it is used.
    """

    id: str
    timeout: float | None = Field(default=None, gt=0)
    retries: int = Field(default=2, ge=0)
    backoff: float = Field(default=0.5, ge=0)
    max_backoff: float = Field(default=30.0, gt=0)
    fallbacks: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    price: Price | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    api_key: SecretStr | None = Field(default=None, exclude=True)

    @field_validator("params")
    @classmethod
    def _known_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        check_params(params, error=ValueError)  # pydantic adds the alias, _validate the line
        return params


class EndpointConfig(_Strict):
    """A named server speaking a provider's wire format: ``NAME:model`` ids go to it."""

    provider: Literal["openai", "anthropic"] = "openai"
    base_url: str
    api_key_env: str | None = None
    # What the server honours; unset means the provider's own default (an OpenAI-compatible
    # server: tools yes, reasoning and images no; an Anthropic gateway: all three).
    tools: bool | None = None
    json_schema: bool | None = None  # takes response_format json_schema (structured outputs)
    reasoning: bool | None = None
    vision: bool | None = None
    context_window: int | None = None
    # Anthropic gateways: structured output as output_config.format or as a forced tool,
    # where the model's own profile (from its name) would guess wrong.
    structured_output: Literal["format", "tool"] | None = None


class RouterConfig(_Strict):
    """``[routers.NAME]``: picks one of ``routes`` by the request's ``route`` metadata."""

    routes: dict[str, str]
    default: str

    @model_validator(mode="after")
    def _default_is_a_route(self) -> RouterConfig:
        if self.default not in self.routes:
            raise ValueError(
                f"default must name one of the routes ({', '.join(self.routes)}), "
                f"not {self.default!r}"
            )
        return self


class TracingConfig(_Strict):
    enabled: bool = True
    content: Literal["off", "truncated", "full"] = "truncated"
    max_chars: int = Field(default=2000, gt=0)
    queue_size: int = Field(default=10_000, gt=0)


class PromptsConfig(_Strict):
    # The most characters a prompt template may render: templates are code from whoever can
    # edit the prompt files, and this bounds what one can make a render allocate.
    max_chars: int = Field(default=4_000_000, gt=0)


class LocalConfig(_Strict):
    n_ctx: int = Field(default=2048, gt=0)
    threads: int | None = Field(default=None, gt=0)  # None: llama.cpp's default, half the cores
    # On text answers (not schema or tool-call JSON) over the last 64 tokens; 1.0 turns it
    # off. None: the embedded model's own (1.1 for smollm2), else off.
    repeat_penalty: float | None = Field(default=None, gt=0)


class StructuredConfig(_Strict):
    """``[structured]``: defaults for structured outputs. ``[structured.bounds]`` limits what
    a grammar-constrained answer may write where its schema sets no bound."""

    bounds: Bounds = Field(default_factory=Bounds)


class Settings(_Strict):
    default_model: str = "local:smollm2"
    home: Path = Path(".tether")
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    routers: dict[str, RouterConfig] = Field(default_factory=dict)
    tracing: TracingConfig = Field(default_factory=TracingConfig)
    prompts: PromptsConfig = Field(default_factory=PromptsConfig)
    local: LocalConfig = Field(default_factory=LocalConfig)
    structured: StructuredConfig = Field(default_factory=StructuredConfig)
    # Where indexes (and, later, every store) live: unset is the project's SQLite database;
    # postgresql://... puts them in PostgreSQL with pgvector.
    database_url: str | None = None
    source: Path | None = Field(default=None, exclude=True)

    @property
    def db_path(self) -> Path:
        return self.home / "tether.db"


ENV_SETTINGS: dict[str, tuple[str, ...]] = {
    "TETHER_MODEL": ("default_model",),
    "TETHER_HOME": ("home",),
    "TETHER_DATABASE_URL": ("database_url",),
    "TETHER_TRACING": ("tracing", "enabled"),
    "TETHER_TRACE_CONTENT": ("tracing", "content"),
    "TETHER_TRACE_MAX_CHARS": ("tracing", "max_chars"),
    "TETHER_LOCAL_N_CTX": ("local", "n_ctx"),
    "TETHER_LOCAL_THREADS": ("local", "threads"),
}


def find_config(start: Path | None = None) -> Path | None:
    """TETHER_CONFIG if set, else the nearest tether.toml from ``start`` upwards."""
    if explicit := os.environ.get("TETHER_CONFIG"):
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"TETHER_CONFIG points to {path}, which does not exist")
        return path
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


HEADER = re.compile(r"^\[\[?\s*([^\]]+?)\s*\]\]?")
KEY = re.compile(r"^\"?([A-Za-z0-9_\-]+)\"?\s*=")


def _line_of(text: str, loc: list[str]) -> int | None:
    """The line that sets ``loc`` (a key path such as models.fast.timeout); else the line of
    the table that should have held it."""
    table: list[str] = []
    table_line = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if header := HEADER.match(stripped):
            table = [part.strip().strip('"') for part in header.group(1).split(".")]
            if table == loc[: len(table)]:
                table_line = number
            continue
        if (key := KEY.match(stripped)) and [*table, key.group(1)] == loc[: len(table) + 1]:
            return number  # the key itself, or an inline table holding the rest of the path
    return table_line


def _reject_secrets(data: dict[str, Any], text: str, path: Path, trail: str = "") -> None:
    for key, value in data.items():
        where = f"{trail}.{key}" if trail else key
        if isinstance(value, dict):
            _reject_secrets(value, text, path, where)
        elif SECRET_KEY.search(key) and not key.endswith("_env"):
            line = _line_of(text, where.split("."))
            raise ConfigError(
                f"{path}:{line or '?'}: '{where}' looks like a credential; tether.toml is "
                "meant to be committed, so keys are never read from it. Put the key in an "
                "environment variable (or .tether/secrets.toml) and name it with api_key_env"
            )


def load_file(path: Path) -> dict[str, Any]:
    """Parse tether.toml, naming the file and line of any mistake."""
    text = path.read_text("utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from exc
    _reject_secrets(data, text, path)
    return _validate(data, text, path)


def _validate(data: dict[str, Any], text: str, path: Path) -> dict[str, Any]:
    try:
        Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(part) for part in first["loc"]]
        line = _line_of(text, loc)
        where = ".".join(loc)
        hint = ""
        if first["type"] == "extra_forbidden":
            hint = f"; valid settings here: {', '.join(_valid_keys(loc[:-1]))}"
        # a validator's own sentence, without pydantic's "Value error, " before it
        message = str(first.get("ctx", {}).get("error", first["msg"]))
        raise ConfigError(f"{path}:{line or '?'}: '{where}': {message}{hint}") from exc
    return data


def _valid_keys(loc: list[str]) -> list[str]:
    model: type[BaseModel] = Settings
    for part in loc:
        field = model.model_fields.get(part)
        if field is None:
            continue  # a dict key such as a model alias
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        candidates = [annotation, *args]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if nested:
            model = nested[-1]
    return sorted(name for name in model.model_fields if name != "source")


def _set(data: dict[str, Any], path: tuple[str, ...], value: str) -> None:
    for key in path[:-1]:
        data = data.setdefault(key, {})
    data[path[-1]] = value


def _merge(data: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Overrides win key by key: ``tracing={"content": "full"}`` keeps the rest of [tracing]."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            _merge(data[key], value)
        else:
            data[key] = value


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from tether.toml, then TETHER_* env, then ``overrides``."""
    source = path if path is not None else find_config()
    data: dict[str, Any] = load_file(source) if source else {}
    for env, target in ENV_SETTINGS.items():
        if (value := os.environ.get(env)) is not None:
            _set(data, target, value)
    _merge(data, {k: v for k, v in overrides.items() if v is not None})
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid settings (from the environment or arguments): {exc}") from exc
    home_given = "home" in overrides or "TETHER_HOME" in os.environ
    if source and not settings.home.is_absolute() and not home_given:
        settings.home = source.parent / settings.home
    settings.source = source
    return settings


_handed_out: set[str] = set()


def secret(env_var: str, home: Path | None = None) -> str:
    """Read a credential from the environment, else from ``home``/secrets.toml (home defaults
    to the current project's folder); never from tether.toml.

    Every value handed out is remembered, so the trace store can redact it whatever its shape.
    """
    value = os.environ.get(env_var) or _from_secrets_file(env_var, home or load_settings().home)
    _handed_out.add(value)
    return value


def _from_secrets_file(env_var: str, home: Path) -> str:
    secrets_file = home / "secrets.toml"
    if secrets_file.is_file():
        try:
            value = tomllib.loads(secrets_file.read_text("utf-8")).get(env_var)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{secrets_file}: malformed TOML: {exc}") from exc
        if isinstance(value, str) and value:
            return value
    raise AuthError(
        f"no API key: set the environment variable {env_var} "
        f'(or add {env_var} = "..." to {secrets_file})'
    )


def register_secret(value: str) -> None:
    """Remember a credential given in code (``tether.model(..., api_key=...)``), so the
    trace store redacts it as it does those read by ``secret``."""
    if value:
        _handed_out.add(value)


def secrets_handed_out() -> frozenset[str]:
    """The credentials read so far in this process."""
    return frozenset(_handed_out)
