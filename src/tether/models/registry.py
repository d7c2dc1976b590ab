"""From a model id to a ready Model.

Ids are ``provider:name`` (``openai:gpt-4.1-mini``, ``local:smollm2``), an alias from
``[models.NAME]``, a router from ``[routers.NAME]``, or ``ENDPOINT:name`` for a server declared
under ``[endpoints.ENDPOINT]``. Providers are found through the entry-point group
``tether.providers``: the built-in ones register exactly as a third party would.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import ValidationError

from tether.config import ModelConfig, Settings, load_settings, register_secret
from tether.errors import ConfigError, ModelNotFound
from tether.models.base import Model, Provider, ProviderModel
from tether.models.middleware.cache import CachedModel
from tether.models.middleware.cassette import CassetteModel
from tether.models.middleware.defaults import WithDefaults
from tether.models.middleware.fallback import Fallback
from tether.models.middleware.limits import RateLimited
from tether.models.middleware.meter import MeteredModel
from tether.models.middleware.retry import Retry
from tether.models.middleware.router import Router
from tether.models.middleware.timeout import TimeoutModel
from tether.models.middleware.traced import Traced
from tether.types import did_you_mean

GROUP = "tether.providers"


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def provider_names() -> list[str]:
    return sorted(_entry_points())


def provider_class(name: str) -> type[Provider]:
    entry = _entry_points().get(name)
    if entry is None:
        raise ModelNotFound(f"unknown provider {name!r}; installed: {', '.join(provider_names())}")
    cls = entry.load()
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise ModelNotFound(f"entry point {entry.value} for {name!r} is not a tether Provider")
    return cls


def _unknown(model_id: str, settings: Settings) -> ModelNotFound:
    known = [f"{p}:NAME" for p in provider_names()]
    known += [f"{e}:NAME" for e in settings.endpoints]
    known += list(settings.models) + list(settings.routers)
    return ModelNotFound(
        f"unknown model {model_id!r}; ids look like provider:name (openai:gpt-4.1-mini, "
        f"local:smollm2). Known here: {', '.join(known)}. Declare aliases and endpoints "
        "in tether.toml (`tether init` writes an example)"
    )


def build_provider(
    model_id: str, settings: Settings, config: ModelConfig | None = None
) -> Provider:
    """The bare adapter for ``provider:name`` or ``endpoint:name``, connected as ``config``
    says (its base_url, api_key_env and api_key win over an endpoint's)."""
    prefix, sep, name = model_id.partition(":")
    if not sep or not name:
        raise _unknown(model_id, settings)
    options: dict[str, Any]
    if prefix in settings.endpoints:
        endpoint = settings.endpoints[prefix]
        options = endpoint.model_dump(exclude_none=True)
        options["endpoint"] = prefix
        cls = provider_class(endpoint.provider)
    elif prefix in provider_names():
        cls = provider_class(prefix)
        options = {}
        if prefix == "local":
            options = settings.local.model_dump(exclude_none=True)
    else:
        raise _unknown(model_id, settings)
    options["home"] = settings.home  # where the secrets file lives
    if config is not None:
        options |= _connection(config, model_id, endpoint=prefix in settings.endpoints)
    return cls(name, options)


def _connection(config: ModelConfig, model_id: str, *, endpoint: bool) -> dict[str, Any]:
    """The per-model connection options; a key given in code is registered for redaction."""
    options: dict[str, Any] = {}
    given = [name for name in ("base_url", "api_key", "api_key_env") if getattr(config, name)]
    if given and model_id.startswith("local:"):
        raise ConfigError(
            f"{model_id} runs in this process and takes no {', '.join(given)}; remove them"
        )
    if config.base_url:
        options["base_url"] = config.base_url
        # On a provider's own id, another address serves that provider's API (a proxy, a
        # region), with its capabilities and prices; an endpoint is another server.
        options["compatible"] = endpoint
    if config.api_key_env:
        options["api_key_env"] = config.api_key_env
    if config.api_key is not None:
        key = config.api_key.get_secret_value()
        register_secret(key)
        options["api_key"] = key
    return options


def model(
    model_id: str | None = None, *, settings: Settings | None = None, **overrides: Any
) -> Model:
    """A ready Model for ``model_id`` (default: the configured default model).

    Every call it makes is traced; aliases bring their own timeout, retries and fallbacks.
    ``overrides`` are alias settings (ModelConfig) for this model: ``retries=0``,
    ``params={...}``, or its connection, ``base_url=``, ``api_key_env=`` or ``api_key=``
    (kept out of requests, cassettes and spans, and redacted wherever it would show).
    """
    settings = settings or load_settings()
    built = _build(model_id or settings.default_model, settings, set(), overrides)
    built.__dict__["_recipe"] = (model_id, settings, overrides)
    return built


def rebuild(model_id: str | None, settings: Settings, overrides: dict[str, Any]) -> Model:
    """``tether.model`` again, where a pickled model is unpickled."""
    return model(model_id, settings=settings, **overrides)


def as_model(given: str | Model | None) -> Model:
    """A Model as given, built from its id, or the configured default (None): for the helpers
    that take any of the three."""
    return given if isinstance(given, Model) else model(given)


def _build(model_id: str, settings: Settings, seen: set[str], overrides: dict[str, Any]) -> Model:
    if model_id in seen:
        raise ModelNotFound(f"{model_id!r} refers to itself through its fallbacks or routes")
    seen = seen | {model_id}
    if model_id in settings.routers:
        if overrides:
            raise ConfigError(
                f"{model_id!r} is a router, which takes no settings of its own "
                f"({', '.join(overrides)}); set them on the aliases its routes name in "
                "tether.toml"
            )
        router = settings.routers[model_id]
        routes = {k: _build(v, settings, seen, {}) for k, v in router.routes.items()}
        return Router(model_id, routes, default=router.default)
    config = settings.models.get(model_id) or ModelConfig(id=model_id)
    if overrides:
        config = _overridden(config, overrides, model_id)
    primary = _attempts(config, settings, alias=model_id if model_id != config.id else None)
    if not config.fallbacks:
        return primary
    backups = [_build(f, settings, seen, {}) for f in config.fallbacks]
    return Fallback([primary, *backups])


def _overridden(config: ModelConfig, overrides: dict[str, Any], model_id: str) -> ModelConfig:
    """``config`` with the caller's settings: a misspelt one is named with the valid ones,
    and no value is ever repeated in the message (it may be a key)."""
    valid = [name for name in ModelConfig.model_fields if name != "id"]
    if unknown := [key for key in overrides if key not in valid]:
        named = "; ".join(f"unknown setting {key!r}{did_you_mean(key, valid)}" for key in unknown)
        raise ConfigError(
            f"tether.model({model_id!r}): {named}; valid settings: {', '.join(valid)}"
        )
    try:
        return ModelConfig.model_validate({**config.model_dump(), **overrides})
    except ValidationError as exc:
        wrong = "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['msg'].lower()}" for error in exc.errors()
        )
        raise ConfigError(f"tether.model({model_id!r}): {wrong}") from exc


def _attempts(config: ModelConfig, settings: Settings, alias: str | None) -> Model:
    """Retry(WithDefaults(Metered(Cached(Cassette(Traced(Timeout(ProviderModel))))))).

    Each attempt is timed out and traced on its own; the cassette records what the caller
    asked and got, so a replayed call neither reaches the provider nor adds a traced cost;
    the call cache (on only inside a ``caching`` block) answers a known call the same way,
    and the meter counts what each answered call cost, a cached one at 0. Only a call that
    reaches the provider waits for a rate limit (on only inside a ``limiting`` block).
    """
    provider = build_provider(config.id, settings, config)
    inner: Model = ProviderModel(provider, pricing=config.price)
    if config.timeout:
        inner = TimeoutModel(inner, config.timeout)
    if settings.tracing.enabled:
        inner = Traced(inner, settings, alias=alias)
    inner = MeteredModel(CachedModel(CassetteModel(RateLimited(inner, alias=alias))))
    if config.params:
        inner = WithDefaults(inner, config.params)
    if config.retries:
        inner = Retry(
            inner, retries=config.retries, backoff=config.backoff, max_backoff=config.max_backoff
        )
    return inner
