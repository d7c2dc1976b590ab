"""Classification on top of structured outputs: one label from a fixed set, with confidence.

The label is constrained to the set (an enum in the schema: a grammar for local models, a
strict schema for OpenAI), so the answer is always one of the labels. Confidence is
self-reported by the model, between 0 and 1: callers route or escalate on it
(``if result.confidence < 0.6: ask a bigger model``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from tether import _sync
from tether.errors import ConfigError
from tether.models.base import Model
from tether.structured.generate import Strategy, agenerate


class Classification(BaseModel):
    label: str
    confidence: float = Field(ge=0, le=1)


def _answer_model(labels: Sequence[str]) -> type[BaseModel]:
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ConfigError(f"classify needs two or more distinct labels, got {list(labels)}")
    choice: Any = Literal[tuple(labels)]
    model: type[BaseModel] = create_model(
        "Classification",
        label=(choice, Field(description="the one label that fits best")),
        confidence=(float, Field(ge=0, le=1, description="how sure, from 0 to 1")),
    )
    return model


def _prompt(text: str, labels: Sequence[str], instructions: str | None) -> str:
    lines = [
        instructions or "Classify the text into exactly one of the labels.",
        f"Labels: {', '.join(labels)}",
        "Give the label and your confidence between 0 and 1.",
        f"Text: {text}",
    ]
    return "\n".join(lines)


async def aclassify(
    model: Model,
    text: str,
    labels: Sequence[str],
    *,
    instructions: str | None = None,
    strategy: Strategy = "auto",
    **params: Any,
) -> Classification:
    """The label that fits ``text`` best, with the model's confidence in it."""
    answer = await agenerate(
        model,
        _prompt(text, labels, instructions),
        _answer_model(labels),
        strategy=strategy,
        **params,
    )
    return Classification.model_validate(answer.model_dump())


def classify(
    model: Model,
    text: str,
    labels: Sequence[str],
    *,
    instructions: str | None = None,
    strategy: Strategy = "auto",
    **params: Any,
) -> Classification:
    """Sync twin of aclassify; works inside a running event loop."""
    return _sync.run(
        aclassify(model, text, labels, instructions=instructions, strategy=strategy, **params)
    )
