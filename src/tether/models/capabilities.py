"""What a provider and model can honour, declared as data, and the one check against it.

Every adapter declares ``Capabilities``; ``check_request`` refuses, before anything is sent,
a request that sets something the model cannot honour, saying what to do instead. Nothing
is dropped silently: a field is either mapped onto the provider's own or refused here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tether.errors import UnsupportedParameter
from tether.types import Request


@dataclass(frozen=True)
class Capabilities:
    """What a provider and model can honour, declared as data and checked in one place."""

    params: frozenset[str] = frozenset(
        {"temperature", "top_p", "max_tokens", "stop", "seed", "tool_choice"}
    )
    tools: bool = True
    tool_choice: frozenset[str] = frozenset({"auto", "none", "required", "named"})
    reasoning: bool = False
    vision: bool = False
    # How it can hold an answer to Request.output's schema: "native" (the provider's own
    # structured-output mode) and/or "grammar" (constrained decoding); empty for neither.
    structured: frozenset[str] = frozenset()
    context_window: int | None = None
    notes: dict[str, str] = field(default_factory=dict)


def check_request(request: Request, caps: Capabilities, model_id: str) -> None:
    """Raise UnsupportedParameter for anything set that this model cannot honour."""
    for name in request.params.set_fields():
        if name == "reasoning_budget" and caps.reasoning:
            continue
        if name not in caps.params:
            hint = caps.notes.get(name, f"supported here: {', '.join(sorted(caps.params))}")
            raise UnsupportedParameter(f"{model_id} does not support '{name}'; {hint}")
    if request.tools and not caps.tools:
        raise UnsupportedParameter(f"{model_id} does not support tools")
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
    if request.output is not None:
        _check_output(request, caps, model_id)
    has_image = any(p.type == "image" for m in request.messages for p in m.content)
    if has_image and not caps.vision:
        raise UnsupportedParameter(f"{model_id} does not accept images")


_NO_MODE = {
    "native": "it has no native structured-output mode; use strategy='grammar' for a local "
    "model, or 'auto'",
    "grammar": "grammar-constrained decoding is for local (llama.cpp) models; use "
    "strategy='native' or 'auto'",
}


def _check_output(request: Request, caps: Capabilities, model_id: str) -> None:
    assert request.output is not None
    mode = request.output.mode
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
