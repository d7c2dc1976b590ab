"""Streaming structured outputs: typed partial objects as the answer grows, then the object.

Each time the JSON read so far says more, the stream yields a ``Partial[T]`` (T with every
field optional: fields not yet written are None, a string in progress shows as far as it
has come); the last item is the validated T itself, so ``isinstance(item, T)`` tells it apart.
Streams make one attempt: a final answer that does not validate raises OutputInvalid (use
``generate``, which repairs, when a retry is worth more than early fields).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar, overload

from tether import _sync
from tether.errors import OutputInvalid, UnsupportedParameter
from tether.models.base import Model, Prompt, build_request, check_keywords, closing
from tether.structured.generate import (
    Strategy,
    raise_if_refused,
    request_for,
    warn_falling_back,
)
from tether.structured.output import OutputType, error_lines, output_type
from tether.structured.partial import Partial, partial_value
from tether.types import Bounds, Request, Response, ResponseEvent, TextDelta

T = TypeVar("T")


@overload
def astream(
    model: Model,
    prompt: Prompt,
    output: type[T],
    *,
    strategy: Strategy = "auto",
    bounds: Bounds | None = None,
    **params: Any,
) -> AsyncIterator[Partial[T] | T]: ...
@overload
def astream(
    model: Model,
    prompt: Prompt,
    output: Any,
    *,
    strategy: Strategy = "auto",
    bounds: Bounds | None = None,
    **params: Any,
) -> AsyncIterator[Any]: ...
def astream(
    model: Model,
    prompt: Prompt,
    output: Any,
    *,
    strategy: Strategy = "auto",
    bounds: Bounds | None = None,
    strict: bool = True,
    **params: Any,
) -> AsyncIterator[Any]:
    """Yield ``Partial[output]`` objects as the answer grows, then the validated ``output``
    (``strict`` as in tether.structured.generate)."""
    check_keywords(params, "stream", ("output", "strategy", "bounds", "strict"))
    kind = output_type(output)
    base = build_request(prompt, **params)
    return _astream(model, kind, strategy, bounds, base, strict)


async def _astream(
    model: Model,
    kind: OutputType[Any],
    strategy: Strategy,
    bounds: Bounds | None,
    base: Request,
    strict: bool = True,
) -> AsyncIterator[Any]:
    request = request_for(base, kind, strategy, model, bounds, strict)
    response: Response | None = None
    last: Any = None
    text = ""
    try:
        async with closing(model.request_stream(request)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    text += event.text
                    found = partial_value(kind, text)
                    if _says_something(found) and found != last:
                        last = found
                        yield found
                elif isinstance(event, ResponseEvent):
                    response = event.response
    except UnsupportedParameter as exc:
        if strategy != "auto" or request.output is None or text:
            raise
        warn_falling_back(model, exc)
        async for item in _astream(model, kind, "repair", bounds, base):
            yield item
        return
    if response is None:
        raise OutputInvalid(f"{model.id} ended its stream without a response", text=text)
    yield _final(model, response, kind)


def _says_something(found: Any) -> bool:
    """A partial worth yielding: one with a field (or an item) begun."""
    if found is None or found == []:
        return False
    fields = getattr(found, "__pydantic_fields_set__", None)
    return bool(fields) if fields is not None else True


def _final(model: Model, response: Response, kind: OutputType[Any]) -> Any:
    raise_if_refused(model, response)
    try:
        return kind.parse(response.text)
    except ValueError as exc:
        cut = " (cut off by max_tokens: raise it)" if response.finish_reason == "length" else ""
        raise OutputInvalid(
            f"{model.id}: the streamed answer is not a valid {kind.display}{cut}",
            text=response.text,
            errors=error_lines(exc),
            usage=response.usage,
        ) from exc


@overload
def stream(
    model: Model,
    prompt: Prompt,
    output: type[T],
    *,
    strategy: Strategy = "auto",
    bounds: Bounds | None = None,
    **params: Any,
) -> Iterator[Partial[T] | T]: ...
@overload
def stream(
    model: Model,
    prompt: Prompt,
    output: Any,
    *,
    strategy: Strategy = "auto",
    bounds: Bounds | None = None,
    **params: Any,
) -> Iterator[Any]: ...
def stream(
    model: Model,
    prompt: Prompt,
    output: Any,
    *,
    strategy: Strategy = "auto",
    bounds: Bounds | None = None,
    **params: Any,
) -> Iterator[Any]:
    """Sync twin of astream; works inside a running event loop."""
    return _sync.iterate(astream(model, prompt, output, strategy=strategy, bounds=bounds, **params))
