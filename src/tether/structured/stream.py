"""Streaming structured outputs: the fields of the object as they complete, then the object.

Keys arrive in order, so while the JSON is still open every field but the last one read is
complete; each time that set grows the stream yields it, as a dict. The last item is the
validated object. Streams make one attempt: a final answer that does not validate raises
OutputInvalid (use ``generate``, which repairs, when a retry is worth more than early fields).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar

import pydantic_core
from pydantic import BaseModel

from tether import _sync
from tether.errors import OutputInvalid, UnsupportedParameter
from tether.models.base import Model, Prompt, build_request, check_keywords, closing
from tether.structured.generate import (
    Strategy,
    error_lines,
    parse,
    raise_if_refused,
    request_for,
    warn_falling_back,
)
from tether.types import Response, ResponseEvent, TextDelta

T = TypeVar("T", bound=BaseModel)


def complete_fields(text: str) -> dict[str, Any]:
    """The top-level fields of a JSON object that are certainly complete in ``text``."""
    start = text.find("{")
    if start < 0:
        return {}
    try:
        value = pydantic_core.from_json(text[start:], allow_partial=True)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    try:
        json.loads(text[start:])
        return value  # the object is closed: every field is complete
    except ValueError:
        return dict(list(value.items())[:-1])  # the last field read may still grow


async def astream(
    model: Model,
    prompt: Prompt,
    output: type[T],
    *,
    strategy: Strategy = "auto",
    **params: Any,
) -> AsyncIterator[dict[str, Any] | T]:
    """Yield dicts of the fields completed so far, then the validated ``output``."""
    check_keywords(params, "stream", ("output", "strategy"))
    base = build_request(prompt, **params)
    request = request_for(base, output, "repair" if strategy == "repair" else "native")
    response: Response | None = None
    seen, text = 0, ""
    try:
        async with closing(model.request_stream(request)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    text += event.text
                    if len(fields := complete_fields(text)) > seen:
                        seen = len(fields)
                        yield fields
                elif isinstance(event, ResponseEvent):
                    response = event.response
    except UnsupportedParameter as exc:
        if strategy != "auto" or request.output is None or text:
            raise
        warn_falling_back(model, exc)
        async for item in astream(model, prompt, output, strategy="repair", **params):
            yield item
        return
    if response is None:
        raise OutputInvalid(f"{model.id} ended its stream without a response", text=text)
    yield _final(model, response, output)


def _final(model: Model, response: Response, output: type[T]) -> T:
    raise_if_refused(model, response)
    try:
        return parse(response.text, output)
    except ValueError as exc:
        cut = " (cut off by max_tokens: raise it)" if response.finish_reason == "length" else ""
        raise OutputInvalid(
            f"{model.id}: the streamed answer is not a valid {output.__name__}{cut}",
            text=response.text,
            errors=error_lines(exc),
            usage=response.usage,
        ) from exc


def stream(
    model: Model,
    prompt: Prompt,
    output: type[T],
    *,
    strategy: Strategy = "auto",
    **params: Any,
) -> Iterator[dict[str, Any] | T]:
    """Sync twin of astream; works inside a running event loop."""
    return _sync.iterate(astream(model, prompt, output, strategy=strategy, **params))
