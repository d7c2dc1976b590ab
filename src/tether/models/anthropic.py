"""The Anthropic Messages API adapter, over the official ``anthropic`` SDK.

The SDK is imported lazily (``import anthropic`` is slow and ``import tether`` must not be).
Requests map in ``build_params`` (tether.models.anthropic_request), responses in
``to_response``, stream events in ``_StreamState``, and every SDK or transport failure in
``map_error``: one place each.

Structured output (``Request.output``) is Anthropic's JSON output (output_config.format),
whose answer is the text, or on models without it a forced tool: the schema becomes a tool
the model must call, and that call's input comes back as the Response's text (the JSON),
with finish reason "stop", as OpenAI's and local models' constrained answers do.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from tether.config import secret
from tether.errors import (
    AuthError,
    BadRequest,
    ContextTooLong,
    MalformedResponse,
    ProviderError,
    RateLimited,
    Timeout,
    Unavailable,
)
from tether.models.accumulate import Accumulator
from tether.models.anthropic_request import build_params, output_tool, profile, wire_messages
from tether.models.base import Capabilities, Provider, closing
from tether.models.http import retry_after
from tether.models.reading import malformed, reading
from tether.types import (
    EFFORTS,
    FinishEvent,
    FinishReason,
    Message,
    Part,
    ReasoningDelta,
    ReasoningPart,
    Request,
    Response,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
    UsageEvent,
)

if TYPE_CHECKING:
    import anthropic
    from anthropic.types import Message as WireMessage
    from anthropic.types import RawContentBlockDelta, RawMessageStreamEvent

CONTEXT_WINDOW = 200_000
# The SDK 2.x sends anthropic-version 2026-10-21, which answers 400 to any sampling parameter
# (even at its default), and the SDK no longer accepts them; say so before the call.
_NO_SAMPLING = (
    "Anthropic API version 2026-10-21 (sent by the anthropic SDK 2.x) rejects temperature and "
    "top_p; remove them"
)

MALFORMED_HINT = "if it goes on, report it with the excerpt: the API's payloads may have changed"
SERVICE_TIERS = frozenset({"auto", "standard_only"})
DOCUMENTS = frozenset(
    {"data", "url", "text", "file_id", "filename", "title", "context", "citations"}
)
_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "refusal",
}


class AnthropicProvider(Provider):
    """Claude models through the Messages API. Options: base_url, api_key, api_key_env,
    http_client, context_window, structured_output ("format" or "tool", where the model's
    profile guesses wrong), and tools, reasoning, vision, json_schema (an endpoint
    declaring less)."""

    name: ClassVar[str] = "anthropic"

    def __init__(self, model_name: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(model_name, options)
        self.api_key_env: str = self.options.get("api_key_env") or "ANTHROPIC_API_KEY"
        # httpx2 async pools belong to the loop that made them, so one client per loop.
        self._clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, anthropic.AsyncAnthropic
        ] = weakref.WeakKeyDictionary()

    def capabilities(self) -> Capabilities:
        # An endpoint (a gateway speaking the Messages API) may declare less than Anthropic.
        model = profile(self.model_name)
        tools = bool(self.options.get("tools", True))
        chosen = self.options.get("structured_output")
        formats = chosen == "format" or (chosen is None and model.json_output)
        # Structured output is output_config.format or a forced tool: one of them is needed.
        json_schema = bool(self.options.get("json_schema", tools or formats))
        own = {"max_tokens", "stop", "user", "service_tier", "cache_control", "provider_options"}
        adaptive = "adaptive" in model.thinking
        # The tool search that deferred tools need came with Claude 4.5, as JSON output did.
        tool_options = {"cache_control"} | ({"defer_loading"} if model.json_output else set())
        tool_options |= {"strict"} if formats else set()
        return Capabilities(
            params=frozenset(own | {"tool_choice"} if tools else own),
            tools=tools,
            tool_choice=frozenset({"auto", "none", "required", "named"}),
            tool_options=frozenset(tool_options),
            reasoning=bool(self.options.get("reasoning", True)),
            efforts=(model.efforts | {"none"}) if adaptive else frozenset(EFFORTS),
            vision=bool(self.options.get("vision", True)),
            documents=DOCUMENTS,
            service_tiers=SERVICE_TIERS,
            cache_ttls=frozenset({"5m", "1h"}),
            structured=frozenset({"native"} if json_schema else ()),
            context_window=int(self.options.get("context_window", CONTEXT_WINDOW)),
            notes={
                "output": "this endpoint declares no forced tool use (json_schema/tools); "
                "use strategy='repair'",
                "seed": "Anthropic's Messages API has no seed parameter; remove seed",
                "temperature": _NO_SAMPLING,
                "top_p": _NO_SAMPLING,
                "n": "Anthropic's Messages API gives one answer per call; make n calls",
                "strict": f"{self.model_name} has no strict tool use (Claude 4.5 and later "
                "have it; an endpoint declares it with structured_output = 'format'); drop "
                "strict",
                "audio": "Anthropic's Messages API takes no audio; send a transcript as text",
                "defer_loading": f"{self.model_name} has no tool search, which deferred "
                "tools need (Claude 4.5 and later have it); drop defer_loading",
            },
        )

    def _client(self) -> anthropic.AsyncAnthropic:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            import anthropic

            client = anthropic.AsyncAnthropic(
                api_key=self._key(),
                base_url=self.options.get("base_url"),
                max_retries=0,  # retries belong to tether's retry middleware
                http_client=self.options.get("http_client"),
                open_telemetry=False,  # tether.tracing owns the spans; no duplicates
            )
            self._clients[loop] = client
        return client

    def _key(self) -> str:
        if key := self.options.get("api_key"):
            return str(key)
        try:
            return secret(self.api_key_env, self.options.get("home"))
        except AuthError as exc:
            raise AuthError(
                f"{self.model_id}: {exc}", model=self.model_id, provider=self.name
            ) from exc

    async def request(self, request: Request) -> Response:
        from anthropic.types import Message as WireMessage

        params = build_params(request, self.model_name, self.options)
        if must_stream(params["max_tokens"], self.model_name):
            return await self._streamed(request)
        try:
            message = await self._client().messages.create(**params)
        except failures() as exc:
            raise map_error(exc, self.model_id, api_key_env=self.api_key_env) from exc
        # The SDK returns a bare str when the body is not JSON, and builds models without
        # validation, so a body of the wrong shape surfaces here.
        with reading(message, model=self.model_id, provider=self.name, hint=MALFORMED_HINT):
            if not isinstance(message, WireMessage):
                raise TypeError(f"expected a Message, got {type(message).__name__}")
            return to_response(message, self.model_id, output=output_tool(request, params))

    async def _streamed(self, request: Request) -> Response:
        """The Response of a call the SDK will only make as a stream (a long answer)."""
        acc = Accumulator()
        async with closing(self.stream(request)) as events:
            async for event in events:
                acc.add(event)
        if not acc.finished:
            raise Unavailable(
                f"{self.model_id}: the stream ended before the answer was complete; {_RETRY}",
                model=self.model_id,
                provider=self.name,
            )
        return acc.response(self.model_id)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        params = build_params(request, self.model_name, self.options)
        state = _StreamState(output=output_tool(request, params))
        try:
            events = await self._client().messages.create(**params, stream=True)
            async with events:
                async for event in events:
                    with reading(
                        event, model=self.model_id, provider=self.name, hint=MALFORMED_HINT
                    ):
                        found = state.feed(event)
                    for out in found:
                        yield out
        except failures() as exc:
            raise map_error(exc, self.model_id, api_key_env=self.api_key_env) from exc
        if not state.stopped:
            return  # cut before message_stop: with no FinishEvent, ProviderModel raises Unavailable
        yield UsageEvent(usage=_usage(state.usage))
        yield FinishEvent(finish_reason=state.finish_reason(), provider_id=state.id)

    async def count_tokens(self, messages: list[Message]) -> int | None:
        """Anthropic's count endpoint: the exact input tokens of these messages (free of charge,
        rate-limited apart from generation)."""
        system, wire = wire_messages(messages)
        args: dict[str, Any] = {"model": self.model_name, "messages": wire}
        if system:
            args["system"] = system
        try:
            counted = await self._client().messages.count_tokens(**args)
        except failures() as exc:
            raise map_error(exc, self.model_id, api_key_env=self.api_key_env) from exc
        with reading(counted, model=self.model_id, provider=self.name, hint=MALFORMED_HINT):
            return int(counted.input_tokens)

    async def aclose(self) -> None:
        """Close this loop's client; an injected http_client belongs to its owner."""
        clients, self._clients = self._clients, weakref.WeakKeyDictionary()
        client = clients.get(asyncio.get_running_loop())
        if client is not None and "http_client" not in self.options:
            await client.close()


# -- response ------------------------------------------------------------------------------


def to_response(message: WireMessage, model_id: str, *, output: str | None = None) -> Response:
    """A tether Response from an Anthropic Message; cost and latency are ProviderModel's job.

    ``output`` names the structured-output tool: its call's input becomes the text (the JSON).
    """
    parts: list[Part] = []
    calls = False
    for block in message.content:
        if block.type == "text":
            _add_text(parts, block.text)
        elif block.type == "tool_use" and block.name == output:
            _add_text(parts, json.dumps(block.input, ensure_ascii=False))
        elif block.type == "tool_use":
            calls = True
            arguments = json.dumps(block.input)
            parts.append(ToolCallPart(id=block.id, name=block.name, arguments=arguments))
        elif block.type == "thinking":
            parts.append(ReasoningPart(text=block.thinking, signature=block.signature))
        elif block.type == "redacted_thinking":
            parts.append(ReasoningPart(text="", signature=block.data, redacted=True))
    return Response(
        message=Message(role="assistant", content=parts),
        finish_reason=finish_reason(message.stop_reason, output=output is not None and not calls),
        usage=_usage(message.usage.model_dump(exclude_none=True)),
        model=model_id,
        provider_id=message.id,
    )


def _add_text(parts: list[Part], text: str) -> None:
    """Text blocks next to each other (split by citations, or by a server tool's blocks, which
    tether's Response leaves out) are one run of text, as the stream accumulates them."""
    if parts and isinstance(parts[-1], TextPart):
        parts[-1] = TextPart(text=parts[-1].text + text)
    else:
        parts.append(TextPart(text=text))


def finish_reason(stop_reason: str | None, *, output: bool = False) -> FinishReason:
    """tether's finish reason; with ``output``, the forced structured-output call is a stop."""
    if output and stop_reason == "tool_use":
        return "stop"
    return _FINISH.get(stop_reason or "", "stop")


def _usage(fields: Mapping[str, Any]) -> Usage:
    """Usage from Anthropic's fields, where input_tokens leaves out cache reads and writes
    (and cache_creation splits the writes by the cache's lifetime)."""
    cached = int(fields.get("cache_read_input_tokens") or 0)
    written = int(fields.get("cache_creation_input_tokens") or 0)
    by_ttl = fields.get("cache_creation") or {}
    details = fields.get("output_tokens_details") or {}
    return Usage(
        input_tokens=int(fields.get("input_tokens") or 0) + cached + written,
        output_tokens=int(fields.get("output_tokens") or 0),
        cached_tokens=cached,
        cache_write_tokens=written,
        cache_write_1h_tokens=int(by_ttl.get("ephemeral_1h_input_tokens") or 0),
        reasoning_tokens=int(details.get("thinking_tokens") or 0),
    )


@dataclass
class _StreamState:
    """Turns raw Messages stream events into tether events, keeping what the end needs."""

    id: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    stop_reason: str | None = None
    stopped: bool = False
    output: str | None = None  # the structured-output tool, whose input streams as text
    output_blocks: set[int] = field(default_factory=set)
    # The blocks opened as tool_use (not the output tool): only their input is a tool call.
    # A server_tool_use or mcp_tool_use block streams input too, but Anthropic runs it.
    call_blocks: set[int] = field(default_factory=set)

    def finish_reason(self) -> FinishReason:
        calls = bool(self.call_blocks)
        return finish_reason(self.stop_reason, output=self.output is not None and not calls)

    def feed(self, event: RawMessageStreamEvent) -> list[StreamEvent]:
        if event.type == "message_start":
            self.id = event.message.id
            self.usage.update(event.message.usage.model_dump(exclude_none=True))
        elif event.type == "message_delta":
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            # message_delta usage is cumulative: its values replace message_start's.
            self.usage.update(event.usage.model_dump(exclude_none=True))
        elif event.type == "message_stop":
            self.stopped = True
        elif event.type == "content_block_start":
            block, index = event.content_block, event.index
            if block.type == "text" and block.text:
                return [TextDelta(text=block.text)]
            if block.type == "tool_use" and block.name == self.output:
                self.output_blocks.add(index)
                return []
            if block.type == "tool_use":
                self.call_blocks.add(index)
                return [ToolCallDelta(index=index, id=block.id, name=block.name)]
            if block.type == "thinking" and block.thinking:
                return [ReasoningDelta(index=index, text=block.thinking)]
            if block.type == "redacted_thinking":
                return [ReasoningDelta(index=index, signature=block.data, redacted=True)]
        elif event.type == "content_block_delta":
            delta, index = event.delta, event.index
            if delta.type != "input_json_delta":
                return _delta(index, delta)
            if index in self.output_blocks:
                return [TextDelta(text=delta.partial_json)] if delta.partial_json else []
            if index in self.call_blocks:
                return [ToolCallDelta(index=index, arguments=delta.partial_json)]
        return []


def _delta(index: int, delta: RawContentBlockDelta) -> list[StreamEvent]:
    if delta.type == "text_delta":
        return [TextDelta(text=delta.text)]
    if delta.type == "thinking_delta":
        return [ReasoningDelta(index=index, text=delta.thinking)]
    if delta.type == "signature_delta":
        return [ReasoningDelta(index=index, signature=delta.signature)]
    return []  # citations are not part of tether's Response


def must_stream(max_tokens: int, model_name: str) -> bool:
    """Whether the SDK refuses this call unless it streams: one that may take longer than
    ten minutes by its reckoning (128,000 tokens an hour), or past a model's own limit."""
    from anthropic._constants import MODEL_NONSTREAMING_TOKENS

    limit = MODEL_NONSTREAMING_TOKENS.get(model_name)
    return max_tokens * 3600 / 128_000 > 600 or (limit is not None and max_tokens > limit)


# -- errors --------------------------------------------------------------------------------

_RETRY = "try again (the retry middleware does this for you)"
_TOO_LONG = ("prompt is too long", "exceed context limit")  # how the API words it in a 400
_BILLING = "the account cannot pay for this call; check billing and spend limits in the Console"

# error.type from a body with no more specific class, as in an `error` event mid-stream.
_BY_TYPE: dict[str, type[ProviderError]] = {
    "rate_limit_error": RateLimited,
    "overloaded_error": Unavailable,
    "api_error": Unavailable,
    "timeout_error": Timeout,
    "authentication_error": AuthError,
    "permission_error": AuthError,
    "billing_error": AuthError,
    "invalid_request_error": BadRequest,
    "not_found_error": BadRequest,
    "request_too_large": BadRequest,
}


@cache
def failures() -> tuple[type[Exception], ...]:
    """What the SDK and the transport raise (the SDK refuses some calls with a bare
    ValueError): the exceptions map_error maps. Anything else raised during a call is
    tether's own and surfaces as itself."""
    import anthropic
    import httpx2

    return (anthropic.AnthropicError, httpx2.HTTPError, ValueError)


@cache
def _rules() -> tuple[tuple[type[BaseException], type[ProviderError], str], ...]:
    """SDK and transport exceptions, most specific first, with what to do next."""
    import anthropic as a
    import httpx2

    return (
        (a.ContractSpendLimitReachedError, AuthError, _BILLING),
        (a.EnforcedSpendLimitReachedError, AuthError, _BILLING),
        (a.RateLimitError, RateLimited, f"rate limited: slow down or {_RETRY}"),
        (a.RequestTimeoutError, Timeout, f"the request timed out; {_RETRY}"),
        (a.HTTPNotImplementedError, BadRequest, "not implemented there; check base_url"),
        (a.OverloadedError, Unavailable, f"Anthropic is overloaded; {_RETRY} or add a fallback"),
        (a.InternalServerError, Unavailable, f"Anthropic had a server error; {_RETRY}"),
        (a.AuthenticationError, AuthError, "the API key was rejected; check {env}"),
        (a.PermissionDeniedError, AuthError, "the key in {env} lacks permission"),
        (a.PaymentRequiredError, AuthError, _BILLING),
        (a.NotFoundError, BadRequest, "check the model name against Anthropic's model list"),
        (a.ContentTooLargeError, BadRequest, "the request body is too large; send less"),
        (a.BadRequestError, BadRequest, "fix the request; it will fail again as it is"),
        (a.APITimeoutError, Timeout, f"no answer in time; {_RETRY}"),
        (a.APIConnectionError, Unavailable, f"could not reach Anthropic; {_RETRY}"),
        (a.APIResponseValidationError, MalformedResponse, MALFORMED_HINT),
        (a.APIWebhookValidationError, BadRequest, "a webhook failed verification"),
        (a.CredentialsError, AuthError, "fix the credentials configuration"),
        (a.WorkloadIdentityError, AuthError, "fix the workload identity configuration"),
        (a.RetryableError, Unavailable, _RETRY),
        (httpx2.TimeoutException, Timeout, f"no answer in time; {_RETRY}"),
        (httpx2.HTTPError, Unavailable, f"the connection failed; {_RETRY}"),
        (json.JSONDecodeError, MalformedResponse, MALFORMED_HINT),
    )


def map_error(
    exc: BaseException, model_id: str, *, api_key_env: str = "ANTHROPIC_API_KEY"
) -> ProviderError:
    """The one place an SDK or transport failure becomes a tether error; raise it ``from exc``."""
    import anthropic

    if isinstance(exc, ProviderError):
        return exc
    kind, hint = _classify(exc)
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) and status >= 400 else None
    detail = getattr(exc, "api_message", None) or getattr(exc, "message", None) or str(exc)
    if isinstance(exc, anthropic.NotFoundError):
        detail = f"Anthropic does not know the model {model_id.partition(':')[2]!r} ({detail})"
    elif kind is BadRequest and any(m in str(detail).lower() for m in _TOO_LONG):
        kind, hint = ContextTooLong, "shorten the prompt or use a model with a larger window"
    if kind is MalformedResponse:
        received = getattr(exc, "doc", None) or getattr(exc, "body", None)
        return malformed(exc, received, model=model_id, provider=AnthropicProvider.name, hint=hint)
    headers = getattr(getattr(exc, "response", None), "headers", None)
    return kind(
        f"{model_id}: {detail}; {hint.replace('{env}', api_key_env)}",
        model=model_id,
        provider=AnthropicProvider.name,
        status=status,
        retry_after=retry_after(headers) if headers is not None else None,
    )


def _classify(exc: BaseException) -> tuple[type[ProviderError], str]:
    import anthropic

    for sdk_class, kind, hint in _rules():
        if isinstance(exc, sdk_class):
            return kind, hint
    if isinstance(exc, anthropic.APIStatusError):
        # Only a bare APIStatusError is left: an unknown status, or an error event that
        # arrived mid-stream on a 200 response, where the body's type is all we have.
        status = getattr(exc, "status_code", 0) or 0
        fallback = BadRequest if 400 <= status < 500 else Unavailable
        kind = _BY_TYPE.get(str(getattr(exc, "type", None)), fallback)
        return kind, _RETRY if kind.retryable else "check the request and the key in {env}"
    if isinstance(exc, ValueError) and "Streaming is required" in str(exc):
        # The SDK refuses long non-streaming calls itself, before sending anything.
        return BadRequest, "lower max_tokens, or stream the call (astream/stream)"
    if isinstance(exc, anthropic.APIError):
        return MalformedResponse, MALFORMED_HINT
    if isinstance(exc, anthropic.AnthropicError | ValueError):
        # raised by the SDK before anything was sent: the call as built, not the answer
        return BadRequest, "the SDK refused the call; check the request and its provider options"
    return ProviderError, "an unexpected failure; report it with the traceback"


__all__ = ["AnthropicProvider", "build_params", "map_error", "to_response"]
