"""Extraction: a validated object from a piece of text, in one call.

``tether.extract(text, Invoice)`` is ``model.generate(prompt, output=Invoice)`` with the
prompt written for you: an instruction naming what to extract, then the text. Field names and
descriptions carry the rest of the guidance, through the schema.
"""

from __future__ import annotations

from typing import Any, TypeVar, overload

from tether import _sync
from tether.models.base import Model, check_keywords
from tether.models.registry import as_model
from tether.structured.generate import Strategy, agenerate, default_bounds
from tether.structured.output import output_type
from tether.types import Bounds

T = TypeVar("T")


def extraction_prompt(text: str, output: Any, instructions: str | None) -> str:
    lead = instructions or (
        f"Extract the {output_type(output).display} from the text below. Copy values exactly "
        "as they are written; where the text does not say and a field may be null, use null."
    )
    return f"{lead}\n\nText:\n{text}"


def extraction_bounds(text: str, bounds: Bounds) -> Bounds:
    """Bounds for values copied out of ``text``: no string longer than the text, no list
    longer than its words (with room for a short text), within the configured ones."""
    string = max(64, len(text))
    items = max(8, len(text.split()))
    return bounds.model_copy(
        update={
            "string": min(bounds.string, string) if bounds.string else None,
            "items": min(bounds.items, items) if bounds.items else None,
        }
    )


@overload
async def aextract(
    text: str,
    output: type[T],
    *,
    model: str | Model | None = None,
    instructions: str | None = None,
    strategy: Strategy = "auto",
    attempts: int = 3,
    bounds: Bounds | None = None,
    **params: Any,
) -> T: ...
@overload
async def aextract(
    text: str,
    output: Any,
    *,
    model: str | Model | None = None,
    instructions: str | None = None,
    strategy: Strategy = "auto",
    attempts: int = 3,
    bounds: Bounds | None = None,
    **params: Any,
) -> Any: ...
async def aextract(
    text: str,
    output: Any,
    *,
    model: str | Model | None = None,
    instructions: str | None = None,
    strategy: Strategy = "auto",
    attempts: int = 3,
    bounds: Bounds | None = None,
    **params: Any,
) -> Any:
    """``output`` (a Pydantic model or any type pydantic validates), extracted from ``text``
    by ``model`` (a Model, a model id, or None for the configured default). Under a grammar,
    strings and lists the schema leaves unbounded are bounded by the text (see
    extraction_bounds) unless ``bounds`` says otherwise. Fails as tether.structured.generate
    does."""
    check_keywords(params, "extract", ("model", "instructions", "strategy", "attempts", "bounds"))
    return await agenerate(
        as_model(model),
        extraction_prompt(text, output, instructions),
        output,
        strategy=strategy,
        attempts=attempts,
        bounds=bounds or extraction_bounds(text, default_bounds()),
        **params,
    )


@overload
def extract(
    text: str,
    output: type[T],
    *,
    model: str | Model | None = None,
    instructions: str | None = None,
    strategy: Strategy = "auto",
    attempts: int = 3,
    bounds: Bounds | None = None,
    **params: Any,
) -> T: ...
@overload
def extract(
    text: str,
    output: Any,
    *,
    model: str | Model | None = None,
    instructions: str | None = None,
    strategy: Strategy = "auto",
    attempts: int = 3,
    bounds: Bounds | None = None,
    **params: Any,
) -> Any: ...
def extract(
    text: str,
    output: Any,
    *,
    model: str | Model | None = None,
    instructions: str | None = None,
    strategy: Strategy = "auto",
    attempts: int = 3,
    bounds: Bounds | None = None,
    **params: Any,
) -> Any:
    """Sync twin of aextract; works inside a running event loop."""
    return _sync.run(
        aextract(
            text,
            output,
            model=model,
            instructions=instructions,
            strategy=strategy,
            attempts=attempts,
            bounds=bounds,
            **params,
        )
    )
