"""The ``local`` provider: a GGUF model run in-process by llama.cpp (llama-cpp-python).

Which file a model id names and how it is checked: tether.models.local_files; the model in
memory and its samplers: tether.models.local_llama; the thread it runs on:
tether.models.threads. Here: what a local model can honour, and requests and answers in
llama-cpp-python's chat format. The chat template comes from the GGUF metadata.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from tether.errors import (
    BadRequest,
    ConfigError,
    ContextTooLong,
    OutputInvalid,
    ProviderError,
    TetherError,
    Unavailable,
)
from tether.models.base import Capabilities, Provider, closing
from tether.models.chat_format import chat_messages, tool_choice, tool_definitions
from tether.models.json_guard import JsonGuard
from tether.models.local_files import EMBEDDED, resolve_path
from tether.models.local_llama import Loaded, load, logprobs_of, unload
from tether.models.local_sampling import grammar_for
from tether.models.provider_options import with_provider_options
from tether.models.reading import malformed
from tether.models.threads import call_in_thread, in_thread
from tether.types import (
    FinishEvent,
    FinishReason,
    Message,
    Part,
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

CAPABILITIES = Capabilities(
    # cache_control: llama.cpp reuses the prompt prefix it shares with the previous call by
    # itself; provider_options["local"] go to llama-cpp-python's create_chat_completion.
    params=frozenset(
        {"temperature", "top_p", "max_tokens", "stop", "seed", "tool_choice", "logprobs"}
        | {"cache_control", "provider_options"}
    ),
    tools=True,
    # strict: a named tool's call is grammar-constrained to its schema anyway
    tool_options=frozenset({"strict", "cache_control"}),
    structured=frozenset({"grammar"}),  # a grammar built from the schema: valid by construction
    tool_choice=frozenset({"none", "named"}),
    notes={
        "tool_choice": "a local model calls a tool only when tool_choice names it "
        "(the call is then grammar-constrained to the tool's schema)",
        "reasoning_budget": "local models have no reasoning budget; leave it unset",
        "user": "a local model serves no end users of its own; leave user unset",
        "service_tier": "a local model has no service tiers; leave service_tier unset",
        "n": "a local model gives one answer per call; make n calls (with a seed each)",
        "defer_loading": "a local model loads every tool up front; drop defer_loading",
        "documents": "a local model reads text only; put the document's text in a TextPart",
        "audio": "a local model reads text only; send a transcript as text",
    },
)


def _finish(reason: str | None) -> FinishReason:
    known = {"length": "length", "tool_calls": "tool_calls", "repetition": "repetition"}
    return known.get(reason or "", "stop")  # type: ignore[return-value]


def grammar_constrained(request: Request) -> bool:
    """Whether llama.cpp decodes the answer under a grammar: a schema, or a forced tool call."""
    forced_tool = bool(request.tools) and request.params.tool_choice not in (None, "none")
    return request.output is not None or forced_tool


class LocalProvider(Provider):
    name = "local"

    def __init__(self, model_name: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(model_name, options)
        self.n_ctx = int(self.options.get("n_ctx", 2048))
        # None keeps llama.cpp's default, half the cores: generation from a small model is
        # bound by memory, and a free core keeps the application's own threads off its back.
        self.threads: int | None = self.options.get("threads")
        self._loaded: Loaded | None = None  # the model this provider last used, for aclose

    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def model(self) -> Loaded:
        path = resolve_path(self.model_name)
        self._loaded = load(path, self.n_ctx, self.threads)
        return self._loaded

    async def aclose(self) -> None:
        """Free the loaded model and its thread, for every provider sharing it; the next
        call loads it again."""
        loaded, self._loaded = self._loaded, None
        if loaded is not None:
            await asyncio.to_thread(unload, loaded)

    def text_defaults(self) -> dict[str, Any]:
        """What a text answer gets for the arguments its caller left unset: an embedded
        model's own (EmbeddedModel), and ``[local] repeat_penalty`` from tether.toml."""
        spec = EMBEDDED.get(self.model_name)
        defaults = dict(spec.params) if spec else {}
        penalty = self.options.get("repeat_penalty")
        if penalty is None and spec:
            penalty = spec.repeat_penalty
        if penalty is not None:
            defaults["repeat_penalty"] = penalty
        return defaults

    def _arguments(self, request: Request) -> dict[str, Any]:
        params = request.params
        args: dict[str, Any] = {"messages": chat_messages(request.messages, empty_assistant="")}
        for name in ("temperature", "top_p", "max_tokens", "stop", "seed"):
            value = getattr(params, name)
            if value is not None:
                args[name] = value
        if request.output is not None:
            args["grammar"] = grammar_for(request.output.schema_)
        if request.tools and params.tool_choice not in (None, "none"):
            args["tools"] = tool_definitions(request.tools)
            args["tool_choice"] = tool_choice(params.tool_choice)
        args = with_provider_options(args, request, self.name)
        if not grammar_constrained(request):  # defaults fill only what the caller left unset
            for name, value in self.text_defaults().items():
                args.setdefault(name, value)
        return _known_options(args)

    def _guard(self, request: Request) -> JsonGuard | None:
        """The guard that ends a runaway value, for an answer held to a schema with bounds."""
        spec = request.output
        if spec is None or spec.bounds is None:
            return None
        return JsonGuard(spec.schema_, spec.bounds)

    def _check_fits(self, loaded: Loaded, args: dict[str, Any], reserve: int) -> None:
        """``reserve``: the room the caller asked for. A default cap asks for none: llama.cpp
        shortens it to what the window has left."""
        prompt_tokens = loaded.count_prompt(args["messages"], args.get("tools"))
        if prompt_tokens + reserve > loaded.n_ctx:
            raise ContextTooLong(
                f"{self.model_id}: the prompt is {prompt_tokens} tokens and the answer may take "
                f"{reserve}, but the context window is {loaded.n_ctx}; shorten the prompt, "
                f"lower max_tokens, or raise [local] n_ctx in tether.toml (this model was "
                f"trained on {loaded.llama._model.n_ctx_train()})",
                model=self.model_id,
                provider=self.name,
            )

    async def check_context(self, request: Request) -> None:
        loaded = await asyncio.to_thread(self.model)
        args = self._arguments(request)
        reserve = request.params.max_tokens or 1
        await call_in_thread(lambda _stop: self._check_fits(loaded, args, reserve), loaded.thread)

    def _chunks(self, loaded: Loaded, request: Request) -> Callable[[], Iterator[Any]]:
        """The streamed chunks of a chat completion, then its exact usage (llama-cpp-python
        reports none in streams; its generate() is wrapped to count)."""
        args = self._arguments(request)
        guard = self._guard(request)
        llama = loaded.llama
        watch_loops = not grammar_constrained(request)

        def chunks_then_usage() -> Iterator[Any]:
            # Runs on the model's thread: the counts are read before another call resets them.
            llama.guard, llama.watch_loops, llama.best_first = guard, watch_loops, None
            try:
                yield from llama.create_chat_completion(stream=True, **args)
                warn_if_unguarded(llama, self.model_id)
            finally:
                llama.guard, llama.watch_loops = None, False
            yield Usage(
                input_tokens=llama.last_prompt_tokens, output_tokens=llama.last_completion_tokens
            )
            if llama.looped:
                yield LOOPED

        return chunks_then_usage

    async def request(self, request: Request) -> Response:
        """llama.cpp's plain completion (its fastest path), stopped before the next token if
        the call is cancelled or times out, so the model is never left busy for nobody."""
        loaded = await asyncio.to_thread(self.model)
        args = self._arguments(request)
        guard = self._guard(request)
        watch_loops = not grammar_constrained(request)

        def complete(stop: threading.Event) -> tuple[Any, list[TokenLogprob] | None]:
            llama = loaded.llama
            llama.stop, llama.record_logprobs, llama.recorder = stop, request.params.logprobs, None
            llama.guard, llama.watch_loops = guard, watch_loops
            try:
                llama.best_first = None
                result = llama.create_chat_completion(**args)
                warn_if_unguarded(llama, self.model_id)
                if llama.looped:
                    result["choices"][0]["finish_reason"] = "repetition"
                text = result["choices"][0]["message"].get("content") or ""
                return result, logprobs_of(llama, text)
            finally:
                llama.stop, llama.record_logprobs = None, None
                llama.guard, llama.watch_loops = None, False

        try:
            result, logprobs = await call_in_thread(complete, loaded.thread)
            response = self._response(result)
        except TetherError:
            raise
        except Exception as exc:
            raise map_error(exc, self.model_id, closed=loaded.closed) from exc
        response.logprobs = logprobs
        return response

    def _response(self, result: dict[str, Any]) -> Response:
        choice = result["choices"][0]
        message = choice["message"]
        parts: list[Part] = []
        if message.get("content"):
            parts.append(TextPart(text=message["content"]))
        for call in message.get("tool_calls") or []:
            function = call["function"]
            parts.append(
                ToolCallPart(id=call["id"], name=function["name"], arguments=function["arguments"])
            )
        usage = result["usage"]
        return Response(
            message=Message(role="assistant", content=parts),
            finish_reason=_finish(choice.get("finish_reason")),
            usage=Usage(
                input_tokens=usage["prompt_tokens"], output_tokens=usage["completion_tokens"]
            ),
            model=self.model_id,
            provider_id=result.get("id"),
        )

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        loaded = await asyncio.to_thread(self.model)
        reader = _ChunkReader()
        try:
            # Closed with this stream, not when collected: that stops the generation at once.
            # The buffer holds a whole generation (it cannot outgrow the context window), so
            # the generation never waits on its reader: a reader may call this model again
            # while it reads, and the thread is free as soon as the answer is written.
            produce = self._chunks(loaded, request)
            whole = loaded.n_ctx + 8
            async with closing(in_thread(produce, loaded.thread, buffer=whole)) as chunks:
                async for chunk in chunks:
                    for event in reader.feed(chunk):
                        yield event
        except TetherError:
            raise
        except Exception as exc:
            raise map_error(exc, self.model_id, closed=loaded.closed) from exc
        yield reader.finish()


def warn_if_unguarded(llama: Any, model_id: str) -> None:
    """Say so when tether's grammar sampler failed at some step and fell back to llama.cpp's
    plain grammar there: the answer is still valid, but the JSON guard's bounds did not hold
    for it."""
    sampler = llama.best_first
    if sampler is not None and sampler.failure is not None:
        warnings.warn(
            f"{model_id}: the grammar guard failed ({sampler.failure!r}) and this answer was "
            "decoded under the plain grammar from then on; please report it",
            stacklevel=2,
        )


LOOPED = "repetition"  # sent after a streamed answer's usage when the loop guard ended it


class _ChunkReader:
    """llama-cpp-python's streamed chunks as tether events."""

    def __init__(self) -> None:
        self.finish_reason: str | None = None
        self.provider_id: str | None = None

    def feed(self, chunk: Any) -> list[StreamEvent]:
        if isinstance(chunk, Usage):
            return [UsageEvent(usage=chunk)]
        if chunk == LOOPED:
            self.finish_reason = LOOPED
            return []
        self.provider_id = chunk.get("id", self.provider_id)
        choice = chunk["choices"][0]
        delta = choice.get("delta") or {}
        self.finish_reason = choice.get("finish_reason") or self.finish_reason
        text, calls = delta.get("content"), delta.get("tool_calls")
        if not calls:  # nearly every chunk: one token of text
            return [TextDelta(text=text)] if text else []
        events: list[StreamEvent] = [TextDelta(text=text)] if text else []
        for call in calls:
            function = call.get("function") or {}
            events.append(
                ToolCallDelta(
                    index=call.get("index", 0),
                    id=call.get("id"),
                    name=function.get("name"),
                    arguments=function.get("arguments") or "",
                )
            )
        return events

    def finish(self) -> FinishEvent:
        return FinishEvent(finish_reason=_finish(self.finish_reason), provider_id=self.provider_id)


def _known_options(args: dict[str, Any]) -> dict[str, Any]:
    """``args`` as they are, once every key is one create_chat_completion takes: a misspelt
    provider option is a ConfigError naming the valid ones, not a TypeError mid-call."""
    from llama_cpp import Llama

    known = inspect.signature(Llama.create_chat_completion).parameters
    if unknown := sorted(key for key in args if key not in known):
        valid = ", ".join(name for name in known if name != "self")
        raise ConfigError(
            f"provider_options.local: llama-cpp-python's create_chat_completion takes no "
            f"{', '.join(unknown)}; it takes: {valid}"
        )
    return args


def map_error(exc: Exception, model_id: str, *, closed: bool = False) -> TetherError:
    """llama.cpp raises ValueError for requests it cannot serve; name what went wrong. A
    result of a shape tether cannot read is a MalformedResponse, not worth a retry. A call
    that met its model closed (by another holder of it) may simply be made again."""
    from pydantic import ValidationError

    text = str(exc)
    if closed:
        return Unavailable(
            f"{model_id}: the model was closed while this call waited for it; call again, "
            "and it loads anew",
            model=model_id,
            provider="local",
        )
    if "exceed context window" in text:
        return ContextTooLong(
            f"{model_id}: {text}; shorten the prompt or raise [local] n_ctx in tether.toml",
            model=model_id,
            provider="local",
        )
    if isinstance(exc, json.JSONDecodeError):
        return OutputInvalid(f"{model_id}: the model wrote malformed JSON ({exc})", text=exc.doc)
    if isinstance(exc, ValidationError | LookupError | TypeError | AttributeError):
        hint = "check that the installed llama-cpp-python is the version tether supports"
        return malformed(exc, None, model=model_id, provider="local", hint=hint)
    if isinstance(exc, ValueError):
        return BadRequest(f"{model_id}: {text}", model=model_id, provider="local")
    return ProviderError(
        f"{model_id}: llama.cpp failed ({exc!r}); check the model file with "
        "`tether models --check`, and report it with the traceback if it persists",
        model=model_id,
        provider="local",
    )
