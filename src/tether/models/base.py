"""The Model interface, the provider adapter seam, and the adapter-to-Model bridge.

A provider adapter (``Provider``) implements one async ``request`` and one async ``stream``.
``ProviderModel`` turns an adapter into a ``Model``: it checks parameters against the
adapter's declared capabilities, times the call, prices it, and accumulates streams into the
same Response a plain call returns. Middleware (retries, tracing, ...) are Models wrapping
Models, so an adapter never knows what surrounds it.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Self, TypeVar, overload

from pydantic import ValidationError

from tether import _sync
from tether.errors import ConfigError, Unavailable
from tether.models.accumulate import Accumulator
from tether.models.capabilities import Capabilities, check_request
from tether.types import (
    TOOL_SHAPES,
    Message,
    Price,
    Request,
    Response,
    ResponseEvent,
    StreamEvent,
    ToolSpec,
    check_params,
    problems,
)

Prompt = str | Message | Sequence[Message] | Request
T = TypeVar("T")
Out = TypeVar("Out")
STRUCTURED_ONLY = (
    "strategy",
    "attempts",
    "bounds",
    "strict",
)  # keywords that only mean something with output=
REQUEST_KEYWORDS = ("system", "tools", "metadata")  # build_request's own, beside the Params


@asynccontextmanager
async def closing(stream: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Close a wrapped stream as soon as its wrapper stops, not when it is collected.

    A wrapper that stops early (its consumer broke off, an error, a timeout) must end the
    stream it reads at once: that closes the HTTP response, ends the span, stops generation.
    """
    try:
        yield stream
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


def build_request(
    prompt: Prompt,
    *,
    system: str | None = None,
    tools: Sequence[ToolSpec | dict[str, Any]] | None = None,
    metadata: dict[str, str] | None = None,
    **params: Any,
) -> Request:
    """Normalise what a caller passed (text, messages or a Request) into a Request; a
    ConfigError for a keyword that is no parameter, a wrong value or a tool of no known
    shape."""
    if isinstance(prompt, Request):
        request = prompt
    else:
        if isinstance(prompt, str):
            messages = [Message.user(prompt)]
        elif isinstance(prompt, Message):
            messages = [prompt]
        else:
            messages = list(prompt)
        request = Request(messages=messages)
    update: dict[str, Any] = {}
    if system is not None:
        rest = [m for m in request.messages if m.role != "system"]
        update["messages"] = [Message.system(system), *rest]
    if tools is not None:
        update["tools"] = _tools(tools)
    if metadata:
        update["metadata"] = {**request.metadata, **metadata}
    if params:
        merged = {**request.params.set_fields(), **params}
        update["params"] = check_params(merged, keywords=REQUEST_KEYWORDS)
    return request.model_copy(update=update) if update else request


def check_keywords(params: Mapping[str, Any], method: str, own: Sequence[str] = ()) -> None:
    """Raise ConfigError for a keyword ``method`` does not take, naming all it does take:
    build_request's, ``method``'s ``own``, then the Params fields; and for a wrong value."""
    keywords = (*REQUEST_KEYWORDS, *own)
    values = {key: value for key, value in params.items() if key not in keywords}
    check_params(values, source=f"{method}()", keywords=keywords)


def _tools(tools: Sequence[ToolSpec | dict[str, Any]]) -> list[ToolSpec]:
    specs = []
    for number, tool in enumerate(tools):
        try:
            specs.append(ToolSpec.model_validate(tool))
        except ValidationError as exc:
            found = "; ".join(problems(exc))
            raise ConfigError(f"tools[{number}]: {found}; a tool is {TOOL_SHAPES}") from exc
    return specs


def _refuse_structured_only(params: dict[str, Any], method: str) -> None:
    if misplaced := [name for name in STRUCTURED_ONLY if name in params]:
        raise ConfigError(
            f"{', '.join(misplaced)} only apply to a structured answer: pass output=YourModel "
            f"(a Pydantic model) to generate() for a validated object, not to {method}()"
        )


class Model(ABC):
    """Anything that answers a Request: a provider, or middleware wrapping other Models."""

    id: str

    def __reduce_ex__(self, protocol: Any) -> Any:
        """A model built by ``tether.model`` travels (to a Ray worker, say) as the id and
        settings it was built from, and is built anew there: its clients and loaded weights
        never cross a process boundary. Any other Model pickles as its fields."""
        recipe = self.__dict__.get("_recipe")
        if recipe is not None:
            from tether.models.registry import rebuild

            return (rebuild, recipe)
        return super().__reduce_ex__(protocol)

    @abstractmethod
    async def request(self, request: Request) -> Response:
        """Answer a Request in one piece."""

    @abstractmethod
    def request_stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """Answer a Request as events, ending with a ResponseEvent."""

    def capabilities(self) -> Capabilities | None:
        """What this model accepts, where that is known (not for a chain of several)."""
        return None

    # Two forms, output= first: a params dict such as {"temperature": 0.2} must still match
    # the second (a None-typed output keyword would not accept its float values).
    @overload
    async def agenerate(self, prompt: Prompt, *, output: type[Out], **params: Any) -> Out: ...
    @overload
    async def agenerate(self, prompt: Prompt, **params: Any) -> Response: ...
    async def agenerate(self, prompt: Prompt, *, output: Any = None, **params: Any) -> Any:
        """Generate a response. Keyword arguments: system, tools, and any Params field.

        With ``output=`` (a Pydantic model, or any type pydantic validates: ``list[Item]``,
        ``Literal[...]``, ``int``) the answer is that type, validated, through
        tether.structured (``strategy=``, ``attempts=`` and ``bounds=`` apply then). The one
        place the model layer reaches up: a convenience, as tether.structured only calls
        ``request``."""
        if output is None:
            _refuse_structured_only(params, "generate")
            check_keywords(params, "generate", ("output",))
            return await self.request(build_request(prompt, **params))
        from tether.structured.generate import agenerate

        return await agenerate(self, prompt, output, **params)

    def astream(self, prompt: Prompt, **params: Any) -> AsyncIterator[StreamEvent]:
        """Stream text, reasoning and tool-call deltas, usage, then the final Response."""
        if "output" in params:
            raise ConfigError(
                "stream() gives text events; for partial objects as fields complete, use "
                "tether.structured.stream(model, prompt, YourModel)"
            )
        _refuse_structured_only(params, "stream")
        check_keywords(params, "stream")
        return self.request_stream(build_request(prompt, **params))

    @overload
    def generate(self, prompt: Prompt, *, output: type[Out], **params: Any) -> Out: ...
    @overload
    def generate(self, prompt: Prompt, **params: Any) -> Response: ...
    def generate(self, prompt: Prompt, *, output: Any = None, **params: Any) -> Any:
        """Sync twin of agenerate; works inside a running event loop."""
        if output is not None:
            params["output"] = output
        return _sync.run(self.agenerate(prompt, **params))

    def stream(self, prompt: Prompt, **params: Any) -> Iterator[StreamEvent]:
        """Sync twin of astream; works inside a running event loop."""
        return _sync.iterate(self.astream(prompt, **params))

    async def aclose(self) -> None:  # noqa: B027 - optional: most models hold nothing
        """Free what this model holds (a loaded local model, HTTP clients); a no-op by
        default. A later call may load or connect again."""

    def close(self) -> None:
        """Sync twin of aclose."""
        _sync.run(self.aclose())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


async def aclose_all(models: Iterable[Model]) -> None:
    """Close each of ``models`` once, every one even if another fails (the first error is
    raised after)."""
    seen: set[int] = set()
    failure: BaseException | None = None
    for model in models:
        if id(model) in seen:
            continue
        seen.add(id(model))
        try:
            await model.aclose()
        except Exception as exc:
            failure = failure or exc
    if failure is not None:
        raise failure


class Wrapper(Model):
    """A Model around another Model; middleware subclasses override what they change."""

    def __init__(self, inner: Model) -> None:
        self.inner = inner
        self.id = inner.id

    async def request(self, request: Request) -> Response:
        return await self.inner.request(request)

    def request_stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        return self.inner.request_stream(request)

    def capabilities(self) -> Capabilities | None:
        return self.inner.capabilities()

    async def aclose(self) -> None:
        await self.inner.aclose()


class Provider(ABC):
    """A provider adapter: the wire format for one API. Registered under "tether.providers".

    Subclasses are built as ``Provider(name, options)`` where ``name`` is the part of the model
    id after ``provider:`` and ``options`` come from tether.toml (base_url, api_key_env, ...).
    """

    name: ClassVar[str]

    def __init__(self, model_name: str, options: dict[str, Any] | None = None) -> None:
        self.model_name = model_name
        self.options = dict(options or {})

    @property
    def model_id(self) -> str:
        """``provider:name``, or ``endpoint:name`` for a server declared as an endpoint."""
        return f"{self.options.get('endpoint') or self.name}:{self.model_name}"

    @abstractmethod
    def capabilities(self) -> Capabilities:
        """What this model accepts; checked before every call."""

    @abstractmethod
    async def request(self, request: Request) -> Response:
        """Send one request; return its Response without cost or latency."""

    @abstractmethod
    def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """Send one request as a stream of deltas, a UsageEvent and a FinishEvent."""

    def price(self) -> Price | None:
        """What this model costs; None when unknown (tether never guesses a price)."""
        from tether.models.pricing import price_for

        return price_for(self.model_id)

    async def check_context(self, request: Request) -> None:  # noqa: B027 - optional hook
        """Raise ContextTooLong before the call when the prompt cannot fit; a no-op by default."""

    async def count_tokens(self, messages: list[Message]) -> int | None:
        """The prompt tokens of ``messages`` by the provider's own count endpoint; None for a
        provider that has none."""
        return None

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Free what this adapter holds (its SDK clients, a loaded model); a no-op by default."""


class ProviderModel(Model):
    """Turns a Provider into a Model: checks, timing, cost, and one accumulator for streams."""

    def __init__(self, provider: Provider, *, pricing: Price | None = None) -> None:
        self.provider = provider
        self.id = provider.model_id
        self._price = pricing if pricing is not None else provider.price()

    def capabilities(self) -> Capabilities:
        return self.provider.capabilities()

    async def aclose(self) -> None:
        await self.provider.aclose()

    async def _prepare(self, request: Request, *, stream: bool = False) -> None:
        caps = self.provider.capabilities()
        check_request(request, caps, self.id, provider=self.provider.name, stream=stream)
        await self.provider.check_context(request)

    def _finish(self, response: Response, started: float) -> Response:
        response.latency_s = time.perf_counter() - started
        response.model = self.id
        response.cost_usd = self._price.cost(response.usage) if self._price else None
        return response

    async def request(self, request: Request) -> Response:
        await self._prepare(request)
        started = time.perf_counter()
        response = await self.provider.request(request)
        return self._finish(response, started)

    async def request_stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        await self._prepare(request, stream=True)
        started = time.perf_counter()
        acc = Accumulator()
        async with closing(self.provider.stream(request)) as events:
            async for event in events:
                acc.add(event)
                yield event
        if not acc.finished:
            raise Unavailable(
                f"{self.id}: the stream ended before the provider finished the response; "
                "try again (the retry middleware does this for you)",
                model=self.id,
                provider=self.provider.name,
            )
        yield ResponseEvent(response=self._finish(acc.response(self.id), started))


__all__ = [
    "Capabilities",
    "Model",
    "Prompt",
    "Provider",
    "ProviderModel",
    "Wrapper",
    "aclose_all",
    "build_request",
    "check_keywords",
    "check_request",
    "closing",
]
