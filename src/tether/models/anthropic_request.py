"""The Messages API arguments for a tether Request (``build_params``), checked before any call.

What a Claude model takes differs by model, so it is data read from the name (``profile``):
how it thinks (a token budget, adaptive thinking with an effort level, or both) and whether
it has native JSON output (``output_config.format``, and strict tools). Structured output
goes through ``output_config.format`` where the model has it and the schema is strict;
otherwise through a forced tool whose input is the answer (anthropic.py reads it back).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from tether.errors import UnsupportedParameter
from tether.models.provider_options import sdk_keywords, with_provider_options
from tether.models.reasoning import budget_for, effort_for, thinks
from tether.types import (
    CACHEABLE,
    DocumentPart,
    ImagePart,
    Message,
    OutputSchema,
    Part,
    Request,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    ToolSpec,
)

DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; this much is left for the answer
MIN_THINKING_BUDGET = 1024  # the API rejects smaller thinking budgets
OUTPUT_TOOL_DESCRIPTION = "Give the answer as this tool's input."
# Deferred tools are found through a tool search tool; tether adds this one when none is given.
TOOL_SEARCH = {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"}

_TOOL_CHOICE = {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}}


@dataclass(frozen=True)
class Profile:
    """What one Claude model takes: ``thinking`` ("budget": thinking.budget_tokens,
    "adaptive": thinking.type adaptive with an output_config.effort from ``efforts``), and
    ``json_output`` (output_config.format and strict tools)."""

    thinking: frozenset[str]
    efforts: frozenset[str]
    json_output: bool


_BUDGET = frozenset({"budget"})
ADAPTIVE = Profile(
    frozenset({"adaptive"}), frozenset({"low", "medium", "high", "xhigh", "max"}), True
)
BOTH = Profile(_BUDGET | {"adaptive"}, frozenset({"low", "medium", "high", "max"}), True)
BUDGET_JSON = Profile(_BUDGET, frozenset(), True)
BUDGET = Profile(_BUDGET, frozenset(), False)  # Claude 4.0 and 3.x, and names tether does not know
_CLAUDE = re.compile(r"claude-(opus|sonnet|haiku|fable|mythos)(?:-(\d+)(?:-(\d{1,2}))?(?!\d))?")


@cache
def profile(model_name: str) -> Profile:
    """The profile for a model name (dated snapshots included), from its family and version:
    Opus 4.7, Claude 5 and the Fable and Mythos lines think only adaptively; the 4.6 models
    both ways; 4.5 and Opus 4.1 on a budget, with JSON output; older ones on a budget only."""
    found = _CLAUDE.search(model_name)
    if found is None:
        return BUDGET
    family, version = found[1], (int(found[2] or 0), int(found[3] or 0))
    if family in ("fable", "mythos") or version >= (4, 7):
        return ADAPTIVE
    if version >= (4, 6):
        return BOTH
    if version >= (4, 5) or (family == "opus" and version >= (4, 1)):
        return BUDGET_JSON
    return BUDGET


def build_params(
    request: Request, model_name: str, options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The Messages API arguments for a Request, checked before any call.

    ``options`` are the provider's (``structured_output``: "format" or "tool" overrides the
    profile). Raises UnsupportedParameter for thinking Anthropic would refuse (a budget out
    of range, or thinking with a forced tool) and OutputInvalid for a past tool call whose
    arguments are not a JSON object.
    """
    p = request.params
    model = profile(model_name)
    thinking, effort, reserved = _thinking(p.reasoning_budget, model)
    max_tokens = p.max_tokens or DEFAULT_MAX_TOKENS + reserved
    system, messages = wire_messages(request.messages)
    params: dict[str, Any] = {"model": model_name, "max_tokens": max_tokens, "messages": messages}
    if system:
        params["system"] = system
    if p.stop:
        params["stop_sequences"] = list(p.stop)
    tools = [_tool(t) for t in request.tools]
    if p.tool_choice is not None:
        named = {"type": "tool", "name": p.tool_choice}
        params["tool_choice"] = _TOOL_CHOICE.get(p.tool_choice, named)
    output_config: dict[str, Any] = {"effort": effort} if effort else {}
    if request.output is not None:
        if json_output(request.output, model, options) == "format":
            output_config["format"] = _output_format(request.output)
        else:
            tools.append(_output_tool(request.output, request, thinking))
            params["tool_choice"] = {"type": "tool", "name": request.output.name}
    if tools:
        params["tools"] = tools
    if thinking:
        _check_thinking(thinking, max_tokens, request)
        params["thinking"] = thinking
    if output_config:
        params["output_config"] = output_config
    _add_typed(params, request)
    merged = with_provider_options(params, request, "anthropic", _create_keywords())
    return _with_tool_search(merged)


@cache
def _create_keywords() -> frozenset[str]:
    from anthropic.resources.messages import AsyncMessages

    return sdk_keywords(AsyncMessages.create)


def _add_typed(params: dict[str, Any], request: Request) -> None:
    """The typed parameters that are Anthropic's too: caching, the end user, the tier."""
    p = request.params
    if p.cache_control is not None:
        params["cache_control"] = p.cache_control.model_dump()
    if p.user is not None:
        params["metadata"] = {"user_id": p.user}
    if p.service_tier is not None:
        params["service_tier"] = p.service_tier


def json_output(output: OutputSchema, model: Profile, options: Mapping[str, Any] | None) -> str:
    """How a structured answer is asked for: "format" (output_config.format, constrained to
    the schema) or "tool" (a forced tool, which takes any schema: the fallback, and the way
    for a non-strict schema)."""
    if not output.strict:
        return "tool"
    chosen = (options or {}).get("structured_output")
    return str(chosen) if chosen else ("format" if model.json_output else "tool")


def output_tool(request: Request, params: Mapping[str, Any]) -> str | None:
    """The forced tool that carries the structured answer in ``params``, if one does."""
    if request.output is None:
        return None
    name = request.output.name
    return name if any(t.get("name") == name for t in params.get("tools", ())) else None


def _thinking(
    value: int | str | None, model: Profile
) -> tuple[dict[str, Any] | None, str | None, int]:
    """The thinking config, the effort level, and the tokens thinking may take (which the
    default max_tokens leaves room for). A budget goes to a model that takes budgets; an
    effort word to one that thinks adaptively; each is mapped to the other form where the
    model has only that one (tether.models.reasoning)."""
    if not thinks(value):
        return None, None, 0
    assert value is not None
    budgets = "budget" in model.thinking
    if budgets and (isinstance(value, int) or "adaptive" not in model.thinking):
        tokens = budget_for(value)
        return {"type": "enabled", "budget_tokens": tokens}, None, tokens
    word = effort_for(value)
    return {"type": "adaptive"}, word, budget_for(word)


def _check_thinking(thinking: dict[str, Any], max_tokens: int, request: Request) -> None:
    """Anthropic's rules for thinking, checked here so the error says what to set."""
    budget = thinking.get("budget_tokens")
    if budget is not None and budget < MIN_THINKING_BUDGET:
        raise UnsupportedParameter(
            f"reasoning_budget={budget} is below Anthropic's minimum thinking budget of "
            f"{MIN_THINKING_BUDGET} tokens; set reasoning_budget >= {MIN_THINKING_BUDGET}, "
            "or 0 for no thinking"
        )
    if budget is not None and budget >= max_tokens:
        raise UnsupportedParameter(
            f"reasoning_budget={budget} must be less than max_tokens={max_tokens} on Anthropic; "
            f"set max_tokens above {budget} (e.g. {budget + DEFAULT_MAX_TOKENS}) or lower "
            "reasoning_budget"
        )
    if request.params.tool_choice not in (None, "auto", "none"):
        raise UnsupportedParameter(
            "Anthropic cannot force a tool while thinking; use tool_choice 'auto' or 'none', "
            "or drop reasoning_budget"
        )


def _output_format(output: OutputSchema) -> dict[str, Any]:
    """output_config.format: the schema as Anthropic's constrained decoding takes it (the
    SDK's own transform: objects closed, unsupported keywords moved into descriptions)."""
    import anthropic

    try:
        schema = anthropic.transform_schema(output.schema_)
    except ValueError as exc:
        raise UnsupportedParameter(
            f"Anthropic's JSON output cannot take the schema of {output.name!r} ({exc}); "
            "pass strict=False for the forced tool, or use strategy='repair'"
        ) from exc
    return {"type": "json_schema", "schema": schema}


def _output_tool(
    output: OutputSchema, request: Request, thinking: dict[str, Any] | None
) -> dict[str, Any]:
    """The tool whose forced call carries a structured answer."""
    name = output.name
    if thinking:
        raise UnsupportedParameter(
            "Anthropic cannot force a tool while thinking, and this structured output forces "
            "one (the model has no output_config.format, or strict is off); drop "
            "reasoning_budget, or use strategy='repair'"
        )
    if name in {t.name for t in request.tools}:
        raise UnsupportedParameter(
            f"the output schema's name {name!r} is also a tool's name; rename one of them"
        )
    return {
        "name": name,
        "description": output.description or OUTPUT_TOOL_DESCRIPTION,
        "input_schema": output.schema_,
    }


def _tool(tool: ToolSpec) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "name": tool.name,
        "description": tool.description,
        "input_schema": tool.parameters,
    }
    if tool.strict is not None:
        wire["strict"] = tool.strict
    if tool.defer_loading is not None:
        wire["defer_loading"] = tool.defer_loading
    if tool.cache_control is not None:
        wire["cache_control"] = tool.cache_control.model_dump()
    return wire


def _with_tool_search(params: dict[str, Any]) -> dict[str, Any]:
    """Deferred tools are loaded only through a tool search tool: add one if none is given
    (a bm25 one, say, through provider_options)."""
    tools = params.get("tools", [])
    searching = any(str(t.get("type", "")).startswith("tool_search_tool") for t in tools)
    if any(t.get("defer_loading") for t in tools) and not searching:
        params["tools"] = [*tools, dict(TOOL_SEARCH)]
    return params


def wire_messages(
    messages: list[Message],
) -> tuple[str | list[dict[str, Any]], list[dict[str, Any]]]:
    """System (and developer) text apart; tool results go in user turns; consecutive
    same-role turns merge."""
    wire: list[dict[str, Any]] = []
    for message in messages:
        if message.role in ("system", "developer"):
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = [b for b in (_block(part) for part in message.content) if b is not None]
        if not blocks:
            continue
        if wire and wire[-1]["role"] == role:
            wire[-1]["content"].extend(blocks)
        else:
            wire.append({"role": role, "content": blocks})
    for turn in wire:
        # The API wants a user turn's tool results before anything else in it.
        turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    return _system(messages), wire


def _system(messages: list[Message]) -> str | list[dict[str, Any]]:
    """The system prompt: one string, or text blocks where one is a cache breakpoint."""
    instructions = [m for m in messages if m.role in ("system", "developer")]
    if other := {p.type for m in instructions for p in m.content if not isinstance(p, TextPart)}:
        raise UnsupportedParameter(
            f"Anthropic's system prompt takes text only, not {', '.join(sorted(other))}; put "
            "images and documents in a user message"
        )
    parts = [p for m in instructions for p in m.content if isinstance(p, TextPart) and p.text]
    if any(p.cache_control for p in parts):
        return [_cached({"type": "text", "text": p.text}, p) for p in parts]
    return "\n\n".join(m.text for m in instructions if m.text)


def _block(part: Part) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return _cached({"type": "text", "text": part.text}, part) if part.text else None
    if isinstance(part, ImagePart):
        return _cached({"type": "image", "source": _image_source(part)}, part)
    if isinstance(part, DocumentPart):
        return _cached(_document(part), part)
    if isinstance(part, ToolCallPart):
        block = {"type": "tool_use", "id": part.id, "name": part.name, "input": part.args()}
        return _cached(block, part)
    if isinstance(part, ToolResultPart):
        block = {"type": "tool_result", "tool_use_id": part.tool_call_id, "content": part.content}
        return _cached(block | {"is_error": True} if part.is_error else block, part)
    if part.type == "audio":
        raise UnsupportedParameter("Anthropic's Messages API takes no audio; send a transcript")
    if not part.signature:
        return None  # unsigned reasoning (another provider's) cannot be replayed to Anthropic
    if part.redacted:
        return {"type": "redacted_thinking", "data": part.signature}
    return {"type": "thinking", "thinking": part.text, "signature": part.signature}


def _cached(block: dict[str, Any], part: Part) -> dict[str, Any]:
    if isinstance(part, CACHEABLE) and part.cache_control is not None:
        block["cache_control"] = part.cache_control.model_dump()
    return block


def _image_source(part: ImagePart) -> dict[str, str]:
    if part.url and part.url.startswith("data:") and ";base64," in part.url:
        header, _, data = part.url.partition(",")
        media_type = header[len("data:") :].split(";")[0] or part.media_type
        return {"type": "base64", "media_type": media_type, "data": data}
    if part.url:
        return {"type": "url", "url": part.url}
    return {"type": "base64", "media_type": part.media_type, "data": part.data or ""}


def _document(part: DocumentPart) -> dict[str, Any]:
    """A document block: a PDF (base64 or URL), plain text, or a Files API id, with its
    title (else its file name), context and citations setting."""
    source: dict[str, Any]
    if part.data is not None:
        if part.media_type != "application/pdf":
            raise UnsupportedParameter(
                f"Anthropic reads a base64 document only as a PDF, not {part.media_type!r}; "
                "give plain text as DocumentPart(text=...)"
            )
        source = {"type": "base64", "media_type": "application/pdf", "data": part.data}
    elif part.url is not None:
        source = {"type": "url", "url": part.url}
    elif part.text is not None:
        source = {"type": "text", "media_type": "text/plain", "data": part.text}
    else:
        source = {"type": "file", "file_id": part.file_id}
    block: dict[str, Any] = {"type": "document", "source": source}
    if title := part.title or part.filename:
        block["title"] = title
    if part.context is not None:
        block["context"] = part.context
    if part.citations is not None:
        block["citations"] = {"enabled": part.citations}
    return block


__all__ = ["build_params", "json_output", "output_tool", "profile", "wire_messages"]
