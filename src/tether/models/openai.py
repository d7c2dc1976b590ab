"""The ``openai`` provider: OpenAI's Chat Completions API through the official SDK.

The same adapter serves any OpenAI-compatible server (vLLM, Ollama, llama.cpp's server,
LM Studio, hosted gateways) declared as an endpoint in tether.toml. Servers differ in what
they accept, so an endpoint declares its capabilities rather than inheriting OpenAI's.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from tether.config import secret
from tether.errors import (
    AuthError,
    BadRequest,
    ContextTooLong,
    ProviderError,
    RateLimited,
    TetherError,
    Timeout,
    Unavailable,
)
from tether.models.base import Capabilities, Provider
from tether.models.chat_format import chat_messages, tool_choice, tool_definitions
from tether.models.http import retry_after
from tether.models.provider_options import sdk_keywords, with_provider_options
from tether.models.reading import malformed, reading
from tether.models.reasoning import effort_for
from tether.types import (
    EFFORTS,
    Choice,
    FinishEvent,
    FinishReason,
    Message,
    OutputSchema,
    Part,
    Price,
    Request,
    Response,
    StreamEvent,
    TextDelta,
    TextPart,
    TokenLogprob,
    ToolCallDelta,
    ToolCallPart,
    Usage,
    UsageEvent,
)

if TYPE_CHECKING:
    from openai import AsyncOpenAI

BASE_PARAMS = frozenset(
    {"temperature", "top_p", "max_tokens", "stop", "seed", "tool_choice", "provider_options"}
)
# OpenAI's own: the end user, the capacity tier, several answers, and prompt caching (which
# OpenAI does by itself for every prompt prefix, so cache marks need nothing sent).
OFFICIAL_PARAMS = BASE_PARAMS | {"user", "service_tier", "n", "cache_control"}
SERVICE_TIERS = frozenset({"auto", "default", "flex", "scale", "priority", "fast"})
REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
CONTEXT_WINDOWS = {
    "gpt-5": 400_000,
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4": 200_000,
}
MALFORMED_HINT = (
    "check that base_url points to an OpenAI-compatible API; if it does, report this with "
    "the excerpt"
)
FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


# JSON Schema keywords that hold schemas: named maps of them, and a schema or a list of them.
# Every other keyword's value is data (a default, an enum), and a map's keys are names.
NAMED_SCHEMAS = frozenset({"properties", "patternProperties", "$defs", "definitions",
                           "dependentSchemas"})  # fmt: skip
SUBSCHEMAS = frozenset({"anyOf", "allOf", "oneOf", "not", "if", "then", "else", "items",
                        "prefixItems", "additionalItems", "contains", "additionalProperties",
                        "propertyNames", "unevaluatedItems", "unevaluatedProperties"})  # fmt: skip


def strict_schema(schema: Any) -> Any:
    """A JSON schema in the form OpenAI's strict mode accepts: every object closed
    (additionalProperties false) with all its properties required (optional ones stay
    nullable through their own anyOf), and no ``default`` keyword.

    The schema is walked by structure, so a property named ``default`` (or ``required``,
    ``type``) is a name like any other and stays."""
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "default":
            continue
        if key in NAMED_SCHEMAS and isinstance(value, dict):
            out[key] = {name: strict_schema(sub) for name, sub in value.items()}
        elif key in SUBSCHEMAS:
            out[key] = strict_schema(value)
        else:
            out[key] = value
    if out.get("type") == "object" and isinstance(out.get("properties"), dict):
        out["additionalProperties"] = False
        out["required"] = list(out["properties"])
    return out


def response_format(output: OutputSchema) -> dict[str, Any]:
    """The response_format for a structured answer: JSON mode for a bare object schema (no
    properties to hold it to), else a json_schema, strict (tether closes the schema as
    strict mode demands) unless ``output.strict`` is off."""
    schema = output.schema_
    if schema.get("type") == "object" and not schema.get("properties") and "$ref" not in schema:
        return {"type": "json_object"}
    spec: dict[str, Any] = {
        "name": output.name,
        "schema": strict_schema(schema) if output.strict else schema,
        "strict": output.strict,
    }
    if output.description:
        spec["description"] = output.description
    return {"type": "json_schema", "json_schema": spec}


JSON_MODE_ASK = "Answer with a JSON object."


def asked_for_json(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages``, asking for JSON in a system message of their own when none of them says
    "JSON": OpenAI refuses JSON mode (400) unless the conversation asks for it."""
    if "json" in json.dumps([m.get("content") for m in messages]).lower():
        return messages
    return [{"role": "system", "content": JSON_MODE_ASK}, *messages]


def official_capabilities(name: str) -> Capabilities:
    reasoning = name.startswith(REASONING_PREFIXES)
    window = next((w for p, w in CONTEXT_WINDOWS.items() if name.startswith(p)), None)
    if reasoning:
        params = OFFICIAL_PARAMS - {"temperature", "top_p", "stop"}
    else:
        params = OFFICIAL_PARAMS | {"logprobs"}
    note = "reasoning models fix sampling; use reasoning_budget instead"
    return Capabilities(
        params=params,
        tool_options=frozenset({"strict", "cache_control"}),
        reasoning=reasoning,
        efforts=frozenset(EFFORTS) if reasoning else frozenset(),
        vision=True,
        documents=frozenset({"data", "file_id", "filename"}),
        audio="audio" in name,  # gpt-4o-audio-preview, gpt-audio: the models that hear
        service_tiers=SERVICE_TIERS,
        structured=frozenset({"native"}),
        context_window=window,
        notes={
            "temperature": note,
            "top_p": note,
            "stop": "reasoning models take no stop",
            "logprobs": "reasoning models return no logprobs",
            "defer_loading": "Chat Completions loads every tool up front; drop defer_loading",
            "documents": "OpenAI's Chat Completions takes files as base64 data or an "
            "uploaded file_id, with a filename; put a text document in a TextPart",
            "audio": "use an audio model (gpt-4o-audio-preview, gpt-audio), or send a "
            "transcript as text",
        },
    )


_ENDPOINT_NOTE = (
    "tether declares only the common parameters for an OpenAI-compatible endpoint; pass "
    "what this server takes beyond them in provider_options={'openai': {...}}"
)


class OpenAIProvider(Provider):
    """OpenAI, or any OpenAI-compatible server. Options: base_url, api_key, api_key_env,
    http_client, and for a server (``compatible``, the default with a base_url) what it
    declares: tools, reasoning, vision, json_schema, context_window."""

    name = "openai"

    def __init__(self, model_name: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(model_name, options)
        self.base_url: str | None = self.options.get("base_url")
        # Another server speaking the API, unless told it is OpenAI at another address.
        self.compatible = bool(self.options.get("compatible", self.base_url is not None))
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncOpenAI] = (
            weakref.WeakKeyDictionary()
        )

    def capabilities(self) -> Capabilities:
        if not self.compatible:
            return official_capabilities(self.model_name)
        opts = self.options
        params = BASE_PARAMS if opts.get("tools", True) else BASE_PARAMS - {"tool_choice"}
        return Capabilities(
            params=params,
            tools=bool(opts.get("tools", True)),
            # strict goes to the server in OpenAI's own tool shape, as it always has
            tool_options=frozenset({"strict"}),
            reasoning=bool(opts.get("reasoning", False)),
            efforts=frozenset(EFFORTS) if opts.get("reasoning") else frozenset(),
            vision=bool(opts.get("vision", False)),
            # Servers differ: llama.cpp's answers 500 to response_format json_schema.
            structured=frozenset({"native"} if opts.get("json_schema") else ()),
            context_window=opts.get("context_window"),
            notes={
                "output": "declare json_schema = true for this endpoint if the server takes "
                "response_format json_schema, or use strategy='repair'",
                **{name: _ENDPOINT_NOTE for name in ("user", "service_tier", "n")},
                "cache_control": "this server declares no prompt caching; remove cache_control",
            },
        )

    def price(self) -> Price | None:
        """OpenAI's prices apply to OpenAI only; another server's cost is set on its alias."""
        return None if self.compatible else super().price()

    def client(self) -> AsyncOpenAI:
        """One client per event loop: async connection pools belong to the loop that made them."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            from openai import AsyncOpenAI

            client = AsyncOpenAI(
                api_key=self._key(),
                base_url=self.base_url,
                max_retries=0,  # retries belong to tether's middleware, which honours Retry-After
                http_client=self.options.get("http_client"),
            )
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close this loop's client (those of other loops cannot be closed from here and are
        dropped); an injected http_client belongs to its owner and stays open."""
        clients, self._clients = self._clients, weakref.WeakKeyDictionary()
        client = clients.get(asyncio.get_running_loop())
        if client is not None and self.options.get("http_client") is None:
            await client.close()

    def _key(self) -> str:
        if key := self.options.get("api_key"):
            return str(key)
        env = self.options.get("api_key_env")
        if env:
            return secret(env, self.options.get("home"))
        if not self.compatible:
            return secret("OPENAI_API_KEY", self.options.get("home"))
        return "unused"  # local servers take no key, but the SDK wants one

    def arguments(self, request: Request) -> dict[str, Any]:
        """The Chat Completions arguments for a Request."""
        params = request.params
        args: dict[str, Any] = {
            "model": self.model_name,
            "messages": chat_messages(
                request.messages, developer="system" if self.compatible else "developer"
            ),
        }
        for name in ("temperature", "top_p", "seed", "stop", "user", "service_tier", "n"):
            if (value := getattr(params, name)) is not None:
                args[name] = value
        if params.max_tokens is not None:
            # OpenAI itself wants max_completion_tokens; compatible servers know max_tokens.
            key = "max_tokens" if self.compatible else "max_completion_tokens"
            args[key] = params.max_tokens
        if params.reasoning_budget is not None:
            args["reasoning_effort"] = effort_for(params.reasoning_budget)
        if params.logprobs is not None:
            args["logprobs"] = True
            if params.logprobs:
                args["top_logprobs"] = params.logprobs
        if request.tools:
            args["tools"] = tool_definitions(request.tools)
        if params.tool_choice is not None:
            args["tool_choice"] = tool_choice(params.tool_choice)
        if request.output is not None:
            args["response_format"] = response_format(request.output)
            if args["response_format"]["type"] == "json_object":
                args["messages"] = asked_for_json(args["messages"])
        return with_provider_options(args, request, self.name, _create_keywords())

    async def request(self, request: Request) -> Response:
        args = self.arguments(request)
        try:
            completion = await self.client().chat.completions.create(**args)
        except failures() as exc:
            raise map_error(exc, self.model_id) from exc
        # The SDK hands back a str for a body that is not JSON, and builds its models without
        # validating them, so a payload of the wrong shape only shows as it is read.
        with reading(completion, model=self.model_id, provider=self.name, hint=MALFORMED_HINT):
            return from_openai(completion.model_dump(), self.model_id)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        args = self.arguments(request)
        args["stream"] = True
        args["stream_options"] = {"include_usage": True}
        state = _StreamState()
        try:
            chunks = await self.client().chat.completions.create(**args)
            async for chunk in chunks:
                with reading(chunk, model=self.model_id, provider=self.name, hint=MALFORMED_HINT):
                    events = state.feed(chunk)
                for event in events:
                    yield event
        except failures() as exc:
            raise map_error(exc, self.model_id) from exc
        for event in state.end():
            yield event


@cache
def _create_keywords() -> frozenset[str]:
    from openai.resources.chat.completions import AsyncCompletions

    return sdk_keywords(AsyncCompletions.create)


@dataclass
class _StreamState:
    """Chat Completions chunks as tether events, keeping what the end of the stream needs."""

    usage: Usage | None = None
    finish: FinishReason | None = None
    provider_id: str | None = None
    deltas: int = 0
    refused: bool = False

    def feed(self, chunk: Any) -> list[StreamEvent]:
        self.provider_id = chunk.id or self.provider_id
        if chunk.usage is not None:
            self.usage = usage_from(chunk.usage.model_dump())
        events: list[StreamEvent] = []
        for choice in chunk.choices:
            if choice.index:
                continue  # a stream carries the first answer only (stream() refuses n > 1)
            delta = choice.delta
            if delta.content:
                events.append(TextDelta(text=delta.content))
            if delta.refusal:
                # as in from_openai: a refusal is the answer's text, finish "refusal"
                self.refused = True
                events.append(TextDelta(text=delta.refusal))
            for call in delta.tool_calls or []:
                function = call.function
                events.append(
                    ToolCallDelta(
                        index=call.index,
                        id=call.id,
                        name=function.name if function else None,
                        arguments=(function.arguments or "") if function else "",
                    )
                )
            if choice.finish_reason:
                self.finish = FINISH.get(choice.finish_reason, "stop")
        self.deltas += len(events)
        return events

    def end(self) -> list[StreamEvent]:
        """Usage, then the finish; nothing for a stream cut before its finish reason (then
        ProviderModel raises Unavailable)."""
        if self.finish is None:
            return []
        usage = self.usage
        if usage is None:
            # Some compatible servers (llama.cpp's) send no usage in streams: count the
            # deltas, one token each on those servers, and say the figure is estimated.
            usage = Usage(output_tokens=self.deltas, estimated=True)
        finish: FinishReason = "refusal" if self.refused else self.finish
        return [
            UsageEvent(usage=usage),
            FinishEvent(finish_reason=finish, provider_id=self.provider_id),
        ]


def usage_from(data: dict[str, Any]) -> Usage:
    prompt_details = data.get("prompt_tokens_details") or {}
    output_details = data.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=data.get("prompt_tokens") or 0,
        output_tokens=data.get("completion_tokens") or 0,
        cached_tokens=prompt_details.get("cached_tokens") or 0,
        cache_write_tokens=prompt_details.get("cache_write_tokens") or 0,
        reasoning_tokens=output_details.get("reasoning_tokens") or 0,
    )


def token_logprob(entry: dict[str, Any]) -> TokenLogprob:
    top = [(alt["token"], alt["logprob"]) for alt in entry.get("top_logprobs") or []]
    return TokenLogprob(token=entry["token"], logprob=entry["logprob"], top=top)


def from_openai(data: dict[str, Any], model_id: str) -> Response:
    """A Chat Completions response (as a dict) as a tether Response; a payload of the wrong
    shape raises what reading it raises (KeyError, TypeError, ValueError). Several choices
    (``n``) all go to Response.choices; the first is also the Response's own."""
    if not data.get("choices"):
        raise ValueError("the response holds no choices")
    ordered = sorted(data["choices"], key=lambda choice: choice.get("index") or 0)
    choices = [_choice(choice) for choice in ordered]
    first = choices[0]
    return Response(
        message=first.message,
        finish_reason=first.finish_reason,
        usage=usage_from(data.get("usage") or {}),
        logprobs=first.logprobs,
        choices=choices if len(choices) > 1 else [],
        model=model_id,
        provider_id=data.get("id"),
    )


def _choice(choice: dict[str, Any]) -> Choice:
    message = choice.get("message") or {}
    parts: list[Part] = []
    finish = FINISH.get(choice.get("finish_reason") or "stop", "stop")
    if message.get("refusal"):
        parts.append(TextPart(text=message["refusal"]))
        finish = "refusal"
    elif message.get("content"):
        parts.append(TextPart(text=message["content"]))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        parts.append(
            ToolCallPart(
                id=call.get("id") or "",
                name=function.get("name") or "",
                arguments=function.get("arguments") or "{}",
            )
        )
    logprobs = (choice.get("logprobs") or {}).get("content")
    return Choice(
        message=Message(role="assistant", content=parts),
        finish_reason=finish,
        logprobs=[token_logprob(entry) for entry in logprobs] if logprobs is not None else None,
    )


@cache
def failures() -> tuple[type[Exception], ...]:
    """What the SDK, the transport or the body's JSON raise: the exceptions map_error maps.
    Anything else raised during a call is tether's own and surfaces as itself."""
    import httpx2
    import openai

    return (openai.OpenAIError, httpx2.HTTPError, json.JSONDecodeError)


def map_error(exc: Exception, model_id: str) -> TetherError:
    """Every openai SDK (and transport) exception as the most specific tether error."""
    import httpx2
    import openai

    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    kw: dict[str, Any] = {"model": model_id, "provider": "openai", "status": status}
    detail = _detail(exc)
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return Timeout(f"{model_id} timed out; try again or raise the timeout", **kw)
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        return Unavailable(
            f"{model_id}: could not reach the server or the connection dropped ({detail}); "
            "check base_url and that the server is running",
            **kw,
        )
    if isinstance(exc, openai.RateLimitError):
        wait = retry_after(response.headers if response is not None else None)
        return RateLimited(
            f"{model_id} is rate limited ({detail}); slow down or raise your quota",
            retry_after=wait,
            **kw,
        )
    from openai._exceptions import SubjectTokenProviderError

    auth = (openai.AuthenticationError, openai.PermissionDeniedError, SubjectTokenProviderError)
    if isinstance(exc, auth):
        return AuthError(
            f"{model_id}: the API key was rejected ({detail}); check OPENAI_API_KEY "
            "or the endpoint's api_key_env",
            **kw,
        )
    if isinstance(exc, openai.BadRequestError) and "context_length" in f"{detail} {exc.body}":
        return ContextTooLong(f"{model_id}: the prompt is too long ({detail}); shorten it", **kw)
    if isinstance(exc, openai.NotFoundError):
        return BadRequest(
            f"{model_id}: the server does not know this model or path ({detail}); "
            "check the model name and base_url",
            **kw,
        )
    if isinstance(exc, openai.APIStatusError):
        if status is not None and (status >= 500 or status == 408):
            kind: type[ProviderError] = Timeout if status == 408 else Unavailable
            return kind(f"{model_id}: server error {status} ({detail}); try again", **kw)
        return BadRequest(f"{model_id} rejected the request ({detail}); fix it and retry", **kw)
    if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError):
        received = exc.doc if isinstance(exc, json.JSONDecodeError) else exc.body
        return malformed(exc, received, model=model_id, provider="openai", hint=MALFORMED_HINT)
    if isinstance(exc, openai.APIError | openai.WebSocketConnectionClosedError):
        # an error event in the middle of a stream, or the socket closing under it
        return Unavailable(f"{model_id}: the server failed mid-answer ({detail}); try again", **kw)
    if isinstance(exc, openai.OpenAIError):
        return BadRequest(
            f"{model_id}: the openai SDK refused the call ({detail}); check the endpoint's "
            "options in tether.toml",
            **kw,
        )
    return ProviderError(f"{model_id}: unexpected failure: {exc!r}", **kw)


def _detail(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message")
        if message:
            return str(message)
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "..."


__all__ = ["OpenAIProvider", "from_openai", "map_error"]
