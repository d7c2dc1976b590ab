"""Extraction: a validated object from a piece of text, in one call.

``tether.extract(text, Invoice)`` is ``model.generate(prompt, output=Invoice)`` with the
prompt written for you: an instruction naming what to extract, then the text. Field names and
descriptions carry the rest of the guidance, through the schema.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from tether import _sync
from tether.models.base import Model, check_keywords
from tether.models.registry import as_model
from tether.structured.generate import Strategy, agenerate

T = TypeVar("T", bound=BaseModel)


def extraction_prompt(text: str, output: type[BaseModel], instructions: str | None) -> str:
    lead = instructions or (
        f"Extract the {output.__name__} from the text below. Copy values exactly as they are "
        "written; where the text does not say and a field may be null, use null."
    )
    return f"{lead}\n\nText:\n{text}"


async def aextract(
    text: str,
    output: type[T],
    *,
    model: str | Model | None = None,
    instructions: str | None = None,
    strategy: Strategy = "auto",
    attempts: int = 3,
    **params: Any,
) -> T:
    """``output``, validated, extracted from ``text`` by ``model`` (a Model, a model id, or
    None for the configured default). Fails as tether.structured.generate does."""
    check_keywords(params, "extract", ("model", "instructions", "strategy", "attempts"))
    return await agenerate(
        as_model(model),
        extraction_prompt(text, output, instructions),
        output,
        strategy=strategy,
        attempts=attempts,
        **params,
    )


def extract(
    text: str,
    output: type[T],
    *,
    model: str | Model | None = None,
    instructions: str | None = None,
    strategy: Strategy = "auto",
    attempts: int = 3,
    **params: Any,
) -> T:
    """Sync twin of aextract; works inside a running event loop."""
    return _sync.run(
        aextract(
            text,
            output,
            model=model,
            instructions=instructions,
            strategy=strategy,
            attempts=attempts,
            **params,
        )
    )
