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
    """The instruction (naming what to extract and its fields, which a small model reads
    better than a schema it never sees under a grammar), then the text."""
    lead = instructions or (
        f"Extract {_what(output)} from the text below{_fields(output)}. Copy values exactly "
        "as they are written; where the text does not say and a field may be null, use null."
    )
    return f"{lead}\n\nText:\n{text}"


def _item_schema(output: Any) -> dict[str, Any] | None:
    """The schema of one item, for a list answer; None for any other."""
    kind = output_type(output)
    if kind.key != "items":
        return None
    item = kind.schema["properties"]["items"].get("items") or {}
    ref = item.get("$ref", "")
    if ref.startswith("#/$defs/"):
        return dict(kind.schema.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {}))
    return dict(item)


def _what(output: Any) -> str:
    item = _item_schema(output)
    if item is not None and item.get("title"):
        return f"every {item['title']}"
    return f"the {output_type(output).display}"


def _fields(output: Any) -> str:
    schema = _item_schema(output) or output_type(output).schema
    names = list(schema.get("properties") or {})
    if not names or output_type(output).key == "value":
        return ""
    return ": " + ", ".join(names)


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
