"""What a provider and model can honour, declared as data, and the one check against it.

Every adapter declares ``Capabilities``; ``check_request`` refuses, before anything is sent,
a request that sets something the model cannot honour, saying what to do instead. Nothing
is dropped silently: a field is either mapped onto the provider's own or refused here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tether.errors import UnsupportedParameter
from tether.types import CACHEABLE, AudioPart, DocumentPart, ImagePart, Request

# Parameters that ask nothing of a provider at these values: one answer.
_NO_OP = {"n": 1}


@dataclass(frozen=True)
class Capabilities:
    """What a provider and model can honour, declared as data and checked in one place.

    ``params`` names the Params fields it takes (``cache_control`` there also admits cache
    marks on message parts and tools; ``provider_options`` that it merges its own entry of
    Params.provider_options into its call). ``efforts`` are the words reasoning_budget may
    take (a token budget needs only ``reasoning``); ``service_tiers`` the tiers it knows;
    ``tool_options`` which of ToolSpec's strict, defer_loading and cache_control it honours;
    ``documents`` which DocumentPart sources and options it reads; ``cache_ttls`` the cache
    lifetimes a cache mark may ask for (none: it caches as it sees fit, so asking for one
    is refused).
    """

    params: frozenset[str] = frozenset(
        {"temperature", "top_p", "max_tokens", "stop", "seed", "tool_choice"}
    )
    tools: bool = True
    tool_choice: frozenset[str] = frozenset({"auto", "none", "required", "named"})
    tool_options: frozenset[str] = frozenset()
    reasoning: bool = False
    efforts: frozenset[str] = frozenset()
    vision: bool = False
    documents: frozenset[str] = frozenset()
    audio: bool = False
    service_tiers: frozenset[str] = frozenset()
    cache_ttls: frozenset[str] = frozenset()
    # How it can hold an answer to Request.output's schema: "native" (the provider's own
    # structured-output mode) and/or "grammar" (constrained decoding); empty for neither.
    structured: frozenset[str] = frozenset()
    context_window: int | None = None
    notes: dict[str, str] = field(default_factory=dict)


def check_request(
    request: Request,
    caps: Capabilities,
    model_id: str,
    *,
    provider: str | None = None,
    stream: bool = False,
) -> None:
    """Raise UnsupportedParameter for anything set that this model cannot honour (``stream``:
    as a stream, which carries one answer without log-probabilities).

    ``provider`` is the adapter's name, whose entry of provider_options it would merge."""
    if stream:
        _check_streamable(request, model_id)
    _check_params(request, caps, model_id, provider)
    _check_tools(request, caps, model_id)
    if request.output is not None:
        _check_output(request, caps, model_id)
    _check_parts(request, caps, model_id)


def _check_streamable(request: Request, model_id: str) -> None:
    if request.params.logprobs is not None:
        raise UnsupportedParameter(
            f"{model_id}: logprobs come with a whole response; use generate(), not stream()"
        )
    if (request.params.n or 1) > 1:
        raise UnsupportedParameter(
            f"{model_id}: n={request.params.n} answers come with a whole response "
            "(Response.choices); use generate(), not stream(), or leave n unset"
        )


def _unsupported(caps: Capabilities, model_id: str, name: str) -> UnsupportedParameter:
    hint = caps.notes.get(name, f"supported here: {', '.join(sorted(caps.params))}")
    return UnsupportedParameter(f"{model_id} does not support '{name}'; {hint}")


def _check_params(
    request: Request, caps: Capabilities, model_id: str, provider: str | None
) -> None:
    params = request.params
    for name, value in params.set_fields().items():
        if name == "provider_options":
            continue  # each provider takes only its own entry: checked below
        if name == "reasoning_budget" and caps.reasoning:
            continue
        if _NO_OP.get(name) == value:
            continue
        if name not in caps.params:
            raise _unsupported(caps, model_id, name)
    budget = params.reasoning_budget
    if isinstance(budget, str) and caps.reasoning and budget not in caps.efforts:
        raise UnsupportedParameter(
            f"{model_id} takes reasoning_budget as a token count or one of "
            f"{', '.join(sorted(caps.efforts)) or 'no effort words'}, not {budget!r}"
        )
    tier = params.service_tier
    if tier is not None and tier not in caps.service_tiers:
        raise UnsupportedParameter(
            f"{model_id} knows the service tiers {', '.join(sorted(caps.service_tiers))}, "
            f"not {tier!r}"
        )
    own = (params.provider_options or {}).get(provider or "")
    if own and "provider_options" not in caps.params:
        raise _unsupported(caps, model_id, "provider_options")


def _check_tools(request: Request, caps: Capabilities, model_id: str) -> None:
    if request.tools and not caps.tools:
        raise UnsupportedParameter(f"{model_id} does not support tools")
    for tool in request.tools:
        if missing := sorted(tool.options() - caps.tool_options):
            hint = caps.notes.get(missing[0], f"remove {', '.join(missing)} from the tool")
            raise UnsupportedParameter(
                f"{model_id} cannot honour {', '.join(missing)} on the tool {tool.name!r}; {hint}"
            )
    choice = request.params.tool_choice
    if request.tools and choice is None:
        choice = "auto"  # tools offered with no choice given: the model decides
    if choice is not None:
        kind = choice if choice in ("auto", "none", "required") else "named"
        if kind == "named" and choice not in {t.name for t in request.tools}:
            raise UnsupportedParameter(
                f"tool_choice names {choice!r}, but the request offers "
                f"{[t.name for t in request.tools] or 'no tools'}"
            )
        if kind not in caps.tool_choice:
            implied = choice != request.params.tool_choice
            note = " (the default when tools are given)" if implied else ""
            hint = caps.notes.get("tool_choice", "")
            raise UnsupportedParameter(
                f"{model_id} does not support tool_choice={choice!r}{note}; {hint}".rstrip("; ")
            )


def _check_parts(request: Request, caps: Capabilities, model_id: str) -> None:
    parts = [part for message in request.messages for part in message.content]
    if any(isinstance(p, ImagePart) for p in parts) and not caps.vision:
        raise UnsupportedParameter(f"{model_id} does not accept images")
    if any(isinstance(p, AudioPart) for p in parts) and not caps.audio:
        hint = caps.notes.get("audio", "send a transcript as text instead")
        raise UnsupportedParameter(f"{model_id} does not accept audio; {hint}")
    for part in parts:
        if isinstance(part, DocumentPart) and (missing := part.features() - caps.documents):
            takes = ", ".join(sorted(caps.documents)) or "no documents"
            raise UnsupportedParameter(
                f"{model_id} cannot take a document with {', '.join(sorted(missing))} "
                f"(it takes: {takes}); {caps.notes.get('documents', 'pass its text instead')}"
            )
    marked = any(isinstance(p, CACHEABLE) and p.cache_control for p in parts)
    if marked and "cache_control" not in caps.params:
        raise _unsupported(caps, model_id, "cache_control")
    marks = [p.cache_control for p in parts if isinstance(p, CACHEABLE) and p.cache_control]
    marks += [tool.cache_control for tool in request.tools if tool.cache_control]
    marks += [request.params.cache_control] if request.params.cache_control else []
    for mark in marks:
        if mark.ttl is not None and mark.ttl not in caps.cache_ttls:
            raise UnsupportedParameter(
                f"{model_id} cannot keep a prompt cache for {mark.ttl}: it caches shared "
                "prompt prefixes by itself, for as long as it sees fit; drop the ttl"
            )


_NO_MODE = {
    "native": "it has no native structured-output mode; use strategy='grammar' for a local "
    "model, or 'auto'",
    "grammar": "grammar-constrained decoding is for local (llama.cpp) models; use "
    "strategy='native' or 'auto'",
}


def _check_output(request: Request, caps: Capabilities, model_id: str) -> None:
    assert request.output is not None
    mode = request.output.mode
    if mode == "grammar" and "grammar" not in caps.structured:
        raise UnsupportedParameter(f"{model_id} cannot honour strategy={mode!r}: {_NO_MODE[mode]}")
    if not caps.structured:
        hint = caps.notes.get("output", "use strategy='repair'")
        raise UnsupportedParameter(f"{model_id} has no structured-output mode; {hint}")
    if mode is not None and mode not in caps.structured:
        raise UnsupportedParameter(f"{model_id} cannot honour strategy={mode!r}: {_NO_MODE[mode]}")
    if request.params.tool_choice not in (None, "auto", "none"):
        raise UnsupportedParameter(
            "a request cannot both force a tool and constrain its answer to a schema; "
            "drop tool_choice or output"
        )


__all__ = ["Capabilities", "check_request"]
