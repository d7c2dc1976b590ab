"""``Params.provider_options``: what a provider's API takes beyond tether's own parameters.

Each provider merges only its own entry (``{"openai": {...}}``) into its SDK call, so one
request can carry options for every provider of a fallback chain. SDK keywords such as
``extra_headers`` and ``extra_body`` pass through the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from typing import Any

from tether.errors import ConfigError
from tether.types import Request


def with_provider_options(
    args: dict[str, Any],
    request: Request,
    provider: str,
    keywords: Collection[str] | None = None,
) -> dict[str, Any]:
    """``args`` (the SDK call tether built) with ``provider``'s options merged in.

    A dict merges key by key and a list extends tether's (more tools, more stop sequences);
    any other value tether already sets raises ConfigError, as the two would disagree. With
    ``keywords`` (what the SDK method takes), an option it does not take goes into the
    request body through ``extra_body``, as the SDK would send a keyword of its own."""
    options = (request.params.provider_options or {}).get(provider)
    if not options:
        return args
    if keywords is not None and (body := {k: v for k, v in options.items() if k not in keywords}):
        options = {k: v for k, v in options.items() if k in keywords}
        options["extra_body"] = {**body, **options.get("extra_body", {})}
    return _merge(args, options, f"provider_options.{provider}")


def sdk_keywords(method: Callable[..., Any]) -> frozenset[str]:
    """The keyword arguments an SDK method takes, read from its signature."""
    return frozenset(inspect.signature(method).parameters) - {"self"}


def _merge(ours: dict[str, Any], theirs: dict[str, Any], where: str) -> dict[str, Any]:
    out = dict(ours)
    for key, value in theirs.items():
        if key not in out:
            out[key] = value
        elif isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = _merge(out[key], value, f"{where}.{key}")
        elif isinstance(out[key], list) and isinstance(value, list):
            out[key] = [*out[key], *value]
        else:
            raise ConfigError(
                f"{where}.{key} = {_short(value)}, but tether already sends {key} = "
                f"{_short(out[key])} from the request's own parameters; set it one way only "
                "(the parameter, where tether has one)"
            )
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


__all__ = ["sdk_keywords", "with_provider_options"]
