"""The shared, serialisable vocabulary: messages, requests, responses, usage, stream events.

These pydantic models are the stored form too: cassettes, the trace store and (later) the
gateway all read and write them, so what a user holds in memory is what lands on disk.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from importlib.metadata import entry_points
from typing import Annotated, Any, Literal, TypeAlias, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tether.errors import ConfigError, OutputInvalid

Role = Literal["system", "developer", "user", "assistant", "tool"]


def _unset(value: Any) -> bool:
    return value is None


def optional(**constraints: Any) -> Any:
    """A field that defaults to None and is left out of the stored form while it is None, so
    requests recorded before the field existed (and their cassette keys) stay as they were."""
    return Field(default=None, exclude_if=_unset, **constraints)


class CacheControl(BaseModel):
    """A prompt-cache breakpoint: the prompt up to and including the block that carries it is
    cached. Anthropic's ``cache_control`` as it is: ``ttl`` "5m" (the default) or "1h"."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["ephemeral"] = "ephemeral"
    ttl: Literal["5m", "1h"] | None = optional()


class TextPart(BaseModel):
    type: Literal["text"] = "text"
    text: str
    cache_control: CacheControl | None = optional()


class ImagePart(BaseModel):
    """An image given by URL, or inline as base64 ``data`` with its ``media_type``."""

    type: Literal["image"] = "image"
    url: str | None = None
    data: str | None = None
    media_type: str = "image/png"
    cache_control: CacheControl | None = optional()


DOCUMENT_SOURCES = ("data", "url", "text", "file_id")


class DocumentPart(BaseModel):
    """A document for the model to read, from exactly one source: base64 ``data`` (a PDF,
    or ``media_type``), a ``url`` to a PDF, plain ``text``, or a ``file_id`` from the
    provider's Files API. ``filename`` names the file (OpenAI wants one for inline data);
    ``title``, ``context`` (what the document is, for the model) and ``citations`` are
    Anthropic's document options. A provider that cannot take a source or an option raises
    UnsupportedParameter."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["document"] = "document"
    data: str | None = optional()
    url: str | None = optional()
    text: str | None = optional()
    file_id: str | None = optional()
    media_type: str = "application/pdf"
    filename: str | None = optional()
    title: str | None = optional()
    context: str | None = optional()
    citations: bool | None = optional()
    cache_control: CacheControl | None = optional()

    @model_validator(mode="after")
    def _one_source(self) -> DocumentPart:
        given = [name for name in DOCUMENT_SOURCES if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a document has exactly one of {', '.join(DOCUMENT_SOURCES)}; "
                f"this one has {', '.join(given) or 'none'}"
            )
        return self

    @property
    def source(self) -> str:
        """Which of DOCUMENT_SOURCES holds the document."""
        return next(name for name in DOCUMENT_SOURCES if getattr(self, name) is not None)

    def features(self) -> set[str]:
        """The source and the options this document uses, as Capabilities.documents names them."""
        options = ("filename", "title", "context", "citations")
        return {self.source, *(name for name in options if getattr(self, name) is not None)}


class AudioPart(BaseModel):
    """Audio for the model to hear: base64 ``data`` in ``format`` wav or mp3."""

    type: Literal["audio"] = "audio"
    data: str
    format: Literal["wav", "mp3"] = "wav"


class ToolCallPart(BaseModel):
    """A call the model asks for. ``arguments`` is the JSON text exactly as the model wrote it."""

    type: Literal["tool_call"] = "tool_call"
    id: str
    name: str
    arguments: str = "{}"
    cache_control: CacheControl | None = optional()

    def args(self) -> dict[str, Any]:
        """The arguments parsed; raises OutputInvalid when the model wrote broken JSON."""
        try:
            value = json.loads(self.arguments or "{}")
        except json.JSONDecodeError as exc:
            raise OutputInvalid(
                f"tool call {self.name!r} has arguments that are not JSON ({exc}); "
                "retry the call or use a model with native tool support",
                text=self.arguments,
            ) from exc
        if not isinstance(value, dict):
            raise OutputInvalid(
                f"tool call {self.name!r} arguments are {type(value).__name__}, not an object",
                text=self.arguments,
            )
        return value


class ToolResultPart(BaseModel):
    type: Literal["tool_result"] = "tool_result"
    tool_call_id: str
    content: str
    is_error: bool = False
    cache_control: CacheControl | None = optional()


class ReasoningPart(BaseModel):
    """A model's reasoning. ``signature`` must go back unchanged on the next turn;
    ``redacted`` reasoning is opaque (encrypted by the provider) and has no text."""

    type: Literal["reasoning"] = "reasoning"
    text: str
    signature: str | None = None
    redacted: bool = False


Part: TypeAlias = Annotated[
    TextPart | ImagePart | DocumentPart | AudioPart | ToolCallPart | ToolResultPart | ReasoningPart,
    Field(discriminator="type"),
]
CACHEABLE = (TextPart, ImagePart, DocumentPart, ToolCallPart, ToolResultPart)


class Message(BaseModel):
    role: Role
    content: list[Part] = Field(default_factory=list)

    @classmethod
    def system(cls, text: str, *, cache_control: CacheControl | None = None) -> Message:
        """System instructions; ``cache_control`` marks them as a prompt-cache breakpoint."""
        return cls(role="system", content=[TextPart(text=text, cache_control=cache_control)])

    @classmethod
    def developer(cls, text: str) -> Message:
        """Instructions in OpenAI's ``developer`` role; providers without it read them as
        system instructions."""
        return cls(role="developer", content=[TextPart(text=text)])

    @classmethod
    def user(cls, text: str, *, cache_control: CacheControl | None = None) -> Message:
        return cls(role="user", content=[TextPart(text=text, cache_control=cache_control)])

    @classmethod
    def assistant(cls, text: str) -> Message:
        return cls(role="assistant", content=[TextPart(text=text)])

    @classmethod
    def tool_result(cls, tool_call_id: str, content: str, *, is_error: bool = False) -> Message:
        part = ToolResultPart(tool_call_id=tool_call_id, content=content, is_error=is_error)
        return cls(role="tool", content=[part])

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.content if isinstance(p, ToolCallPart)]


TOOL_SHAPES = (
    "tether's {name, description, parameters}, OpenAI Chat Completions' "
    "{type: 'function', function: {name, description, parameters}}, OpenAI Responses' "
    "{type: 'function', name, description, parameters} or Anthropic's "
    "{name, description, input_schema}, each with strict, defer_loading and cache_control "
    "optional"
)
TOOL_FIELDS = frozenset(
    {"name", "description", "parameters", "strict", "defer_loading", "cache_control"}
)


class ToolSpec(BaseModel):
    """A tool offered to the model; ``parameters`` is a JSON schema for its arguments.

    Built from tether's own shape or a provider's (``TOOL_SHAPES``: OpenAI's two, and
    Anthropic's ``input_schema``); anything else raises ConfigError naming the shapes, rather
    than becoming a tool without parameters. ``strict`` asks the provider to hold the
    arguments to the schema (OpenAI's function.strict, Anthropic's tool strict), which must
    then meet that provider's strict-mode rules; None leaves the provider's default.
    ``defer_loading`` keeps the tool out of the prompt until the model finds it by searching
    (Anthropic's tool search); ``cache_control`` marks a prompt-cache breakpoint after it.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    # Left out of the stored form when unset, so requests (and cassette keys) stay as they were.
    strict: bool | None = optional()
    defer_loading: bool | None = optional()
    cache_control: CacheControl | None = optional()

    @model_validator(mode="before")
    @classmethod
    def _provider_shapes(cls, data: Any) -> Any:
        return _tool_fields(data) if isinstance(data, dict) else data

    def options(self) -> set[str]:
        """The options this tool sets, as Capabilities.tool_options names them."""
        names = ("strict", "defer_loading", "cache_control")
        return {name for name in names if getattr(self, name)}


def _tool_fields(data: dict[str, Any]) -> dict[str, Any]:
    """ToolSpec's fields from any of TOOL_SHAPES; ConfigError (raised as it is: pydantic
    wraps only ValueErrors) for a dict of any other shape."""
    fields: Any = data
    if data.get("type") == "function" and set(data) == {"type", "function"}:
        fields = data["function"]
    elif data.get("type") == "function":
        fields = {key: value for key, value in data.items() if key != "type"}
    elif "input_schema" in data and "parameters" not in data:
        fields = {("parameters" if k == "input_schema" else k): v for k, v in data.items()}
    if isinstance(fields, dict) and "name" in fields and not set(fields) - TOOL_FIELDS:
        return fields
    raise ConfigError(f"a tool must be {TOOL_SHAPES}; this one has the keys {sorted(data)}")


Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
EFFORTS: tuple[str, ...] = get_args(Effort)


@cache
def installed_providers() -> frozenset[str]:
    """The provider names registered under the entry-point group ``tether.providers``."""
    return frozenset(ep.name for ep in entry_points(group="tether.providers"))


class Params(BaseModel):
    """Generation parameters common to every provider.

    ``tool_choice`` is ``"auto"``, ``"none"``, ``"required"`` or the name of one tool.
    ``reasoning_budget`` is how much the model may think: a token budget, or an effort word
    (EFFORTS); each provider takes the form it has and maps the other (tether.models.reasoning).
    ``user`` names the end user (for the provider's abuse checks), ``service_tier`` picks the
    provider's capacity tier in its own words, ``n`` asks for several answers
    (Response.choices), ``cache_control`` asks the provider to cache the prompt up to its
    last block. ``provider_options`` holds anything else a provider's API takes, keyed by
    provider name: each provider merges only its own into its SDK call, so a fallback chain
    across providers stays valid. A provider that cannot honour a parameter that is set
    raises UnsupportedParameter rather than dropping it.
    """

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    stop: list[str] | None = None
    seed: int | None = None
    tool_choice: str | None = None
    reasoning_budget: Annotated[int, Field(ge=0)] | Effort | None = None
    logprobs: int | None = Field(default=None, ge=0, le=20)
    """Return each output token's log-probability, with this many top alternatives (0: none)."""
    user: str | None = optional(min_length=1)
    service_tier: str | None = optional(min_length=1)
    n: int | None = optional(ge=1, le=128)
    cache_control: CacheControl | None = optional()
    provider_options: dict[str, dict[str, Any]] | None = optional()

    @field_validator("provider_options")
    @classmethod
    def _known_providers(cls, value: dict[str, dict[str, Any]] | None) -> Any:
        known = installed_providers()
        for name in value or {}:
            if name not in known:
                raise ValueError(
                    f"provider_options are keyed by provider name, and {name!r} is none"
                    f"{did_you_mean(name, sorted(known))}; installed: {', '.join(sorted(known))}"
                )
        return value

    def set_fields(self) -> dict[str, Any]:
        """The parameters the caller actually set."""
        return self.model_dump(exclude_none=True)


class Bounds(BaseModel):
    """Limits on a grammar-constrained answer, where its schema sets none.

    A small model can run away inside a string or a list it is free to extend: write on past
    the value, or repeat it, until max_tokens cuts the answer off and nothing validates. So
    under a grammar a string the schema leaves unbounded ends after ``string`` characters, a
    list after ``items`` items, and with ``runaway`` a string also ends where it starts
    repeating itself or where the model has already moved on to closing the object, and a
    list ends at an item that repeats an earlier one. A bound the schema sets itself
    (``max_length``) always wins. ``None`` lifts a limit.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    string: int | None = Field(default=1000, gt=0)
    items: int | None = Field(default=100, gt=0)
    runaway: bool = True

    def describe(self) -> str:
        """One line for a span: ``string<=1000 items<=100 runaway``."""
        parts = [
            f"string<={self.string}" if self.string else "string unbounded",
            f"items<={self.items}" if self.items else "items unbounded",
        ]
        return " ".join([*parts, "runaway" if self.runaway else "no-runaway"])

    def tighter(self) -> Bounds | None:
        """A quarter of the string bound (not below 16 characters) and half the list bound,
        for one more try after an answer was cut off; None when that tightens nothing."""
        string = min(self.string, max(16, self.string // 4)) if self.string else None
        items = max(1, self.items // 2) if self.items else None
        if (string, items) == (self.string, self.items):
            return None
        return self.model_copy(update={"string": string, "items": items})


def check_params(
    values: Mapping[str, Any],
    *,
    source: str = "",
    keywords: Sequence[str] = (),
    error: Callable[[str], Exception] = ConfigError,
) -> Params:
    """``values`` as Params: the one check behind every way parameters come in (keywords,
    prompt files, tether.toml aliases, ``-o``). A key that is not a parameter is refused
    with its likely spelling and every valid name (``keywords``, the caller's own, first);
    a wrong value with the parameter and why. ``source`` (a file and line, an alias,
    ``generate()``) leads the message; ``error`` is the exception to raise."""
    lead = f"{source}: " if source else ""
    fields = list(Params.model_fields)
    if unknown := [key for key in values if key not in Params.model_fields]:
        noun = "keyword" if keywords else "parameter"
        named = "; ".join(
            f"unknown {noun} {key!r}{did_you_mean(key, [*keywords, *fields])}" for key in unknown
        )
        if keywords:
            valid = f"valid keywords: {', '.join(keywords)}, and the parameters {', '.join(fields)}"
        else:
            valid = f"valid parameters: {', '.join(fields)}"
        raise error(f"{lead}{named}; {valid}")
    try:
        return Params.model_validate(dict(values))
    except ValidationError as exc:
        raise error(lead + "; ".join(problems(exc))) from exc


def problems(exc: ValidationError) -> list[str]:
    """Each of pydantic's errors as one short line: where, what is wrong, and the value."""
    lines = []
    for found in exc.errors():
        where = ".".join(str(part) for part in found["loc"])
        message = found["msg"][:1].lower() + found["msg"][1:]
        given = repr(found["input"])
        given = given if len(given) <= 80 else given[:77] + "..."
        lines.append(f"{where}: {message} (got {given})")
    return lines


def did_you_mean(name: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or nothing."""
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class OutputSchema(BaseModel):
    """The JSON schema the answer must follow, and how the provider is to hold it to it.

    ``mode`` asks for one mechanism: ``native`` (the provider's own structured-output mode:
    OpenAI's json_schema response format, Anthropic's JSON output or forced tool), ``grammar``
    (constrained decoding, llama.cpp), or None for whichever the provider has. A provider
    without the one asked for raises UnsupportedParameter. The answer's JSON comes back as the
    Response's text. ``strict`` asks for strict schema adherence (OpenAI's strict json_schema,
    Anthropic's output_config.format); off, OpenAI gets a non-strict json_schema and Anthropic
    the forced tool, for schemas outside strict mode's rules. ``description`` tells the model
    what the object is for; ``bounds`` apply under a grammar.
    """

    name: str
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = optional()
    mode: Literal["native", "grammar"] | None = optional()
    # left out of the stored form at their defaults, so earlier recordings keep their keys
    strict: bool = Field(default=True, exclude_if=lambda strict: strict is True)
    bounds: Bounds | None = optional()

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class Request(BaseModel):
    messages: list[Message]
    tools: list[ToolSpec] = Field(default_factory=list)
    params: Params = Field(default_factory=Params)
    metadata: dict[str, str] = Field(default_factory=dict)
    output: OutputSchema | None = None


class Usage(BaseModel):
    """Token counts for one call.

    ``input_tokens`` counts every prompt token, including ``cached_tokens`` (read from the
    provider's prompt cache) and ``cache_write_tokens`` (written to it; of those,
    ``cache_write_1h_tokens`` went to a one-hour cache, which costs more). ``output_tokens``
    includes ``reasoning_tokens``. ``estimated`` is set when the provider reported no usage
    (some OpenAI-compatible servers send none in streams) and tether counted instead.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens + other.cache_write_1h_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            estimated=self.estimated or other.estimated,
        )


class Price(BaseModel):
    """USD per million tokens. ``cached`` and ``cache_write`` (5-minute cache) default to the
    input price, ``cache_write_1h`` (one-hour cache) to ``cache_write``."""

    model_config = ConfigDict(extra="forbid")

    input: float
    output: float
    cached: float | None = None
    cache_write: float | None = None
    cache_write_1h: float | None = None

    def cost(self, usage: Usage) -> float:
        cached = self.input if self.cached is None else self.cached
        write = self.input if self.cache_write is None else self.cache_write
        write_1h = write if self.cache_write_1h is None else self.cache_write_1h
        long_writes = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
        fresh = max(usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens, 0)
        total = (
            fresh * self.input
            + usage.cached_tokens * cached
            + (usage.cache_write_tokens - long_writes) * write
            + long_writes * write_1h
            + usage.output_tokens * self.output
        )
        return total / 1_000_000


# "repetition": a local model's answer that began repeating itself, ended there.
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "refusal", "repetition"]


class TokenLogprob(BaseModel):
    """One output token, its natural-log probability under the model, and the most likely
    alternatives at that step (best first), when they were asked for."""

    token: str
    logprob: float
    top: list[tuple[str, float]] = Field(default_factory=list)


class Choice(BaseModel):
    """One of the answers asked for with ``Params.n``."""

    message: Message
    finish_reason: FinishReason = "stop"
    logprobs: list[TokenLogprob] | None = None


class Response(BaseModel):
    """The answer. With ``Params.n`` above 1, ``choices`` holds every answer in the
    provider's order, and ``message``, ``finish_reason`` and ``logprobs`` are the first's;
    ``usage`` and the cost cover them all."""

    message: Message
    finish_reason: FinishReason = "stop"
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None
    latency_s: float = 0.0
    model: str = ""
    provider_id: str | None = None
    logprobs: list[TokenLogprob] | None = None  # when Params.logprobs was set
    choices: list[Choice] = Field(default_factory=list)

    @property
    def text(self) -> str:
        return self.message.text

    @property
    def tool_calls(self) -> list[ToolCallPart]:
        return self.message.tool_calls


class TextDelta(BaseModel):
    type: Literal["text"] = "text"
    text: str


class ReasoningDelta(BaseModel):
    """A piece of reasoning. ``index`` tells blocks apart (each keeps its own signature)."""

    type: Literal["reasoning"] = "reasoning"
    index: int = 0
    text: str = ""
    signature: str | None = None
    redacted: bool = False


class ToolCallDelta(BaseModel):
    """A piece of a tool call. ``index`` tells calls apart; id and name come on the first piece."""

    type: Literal["tool_call"] = "tool_call"
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class UsageEvent(BaseModel):
    """Exact usage for the whole call; every provider's stream sends one before it finishes."""

    type: Literal["usage"] = "usage"
    usage: Usage


class FinishEvent(BaseModel):
    type: Literal["finish"] = "finish"
    finish_reason: FinishReason
    provider_id: str | None = None


class ResponseEvent(BaseModel):
    """The last event of every stream: the same Response a non-streaming call returns."""

    type: Literal["response"] = "response"
    response: Response


StreamEvent: TypeAlias = Annotated[
    TextDelta | ReasoningDelta | ToolCallDelta | UsageEvent | FinishEvent | ResponseEvent,
    Field(discriminator="type"),
]
