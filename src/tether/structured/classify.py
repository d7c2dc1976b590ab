"""Classification on top of structured outputs: one label from a fixed set, with confidence.

The label is constrained to the set (an enum in the schema: a grammar for local models, a
strict schema for OpenAI), so the answer is always one of the labels. Confidence, between 0
and 1, is the probability the model gave the label's tokens where it returns log-probabilities
(local models, OpenAI's), else the model's own figure: callers route or escalate on it
(``if result.confidence < 0.6: ask a bigger model``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from tether import _sync
from tether.errors import ConfigError
from tether.models.base import Model, check_keywords
from tether.models.registry import as_model
from tether.structured.generate import Strategy, agenerate_with_response
from tether.types import TokenLogprob


class Classification(BaseModel):
    label: str
    confidence: float = Field(ge=0, le=1)
    source: Literal["logprobs", "self-reported"] = "self-reported"


def label_probability(text: str, label: str, logprobs: Sequence[TokenLogprob]) -> float | None:
    """The probability of the tokens that spell ``label`` as the answer's "label" value, up to
    and including its closing quote (where the model chose "card" over "card_lost"), or None
    when the tokens cannot be lined up with the text."""
    if "".join(t.token for t in logprobs) != text:
        return None
    key = text.find('"label"')
    colon = text.find(":", key) if key >= 0 else -1
    start = text.find('"', colon + 1) + 1 if colon >= 0 else 0
    end = start + len(label) + 1  # the closing quote
    if start <= 0 or text[start:end] != f'{label}"':
        return None
    total, offset, seen = 0.0, 0, False
    for token in logprobs:
        first, offset = offset, offset + len(token.token)
        if offset > start and first < end:
            total += token.logprob
            seen = True
    return math.exp(total) if seen else None


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
    text: str,
    labels: Sequence[str],
    *,
    model: str | Model | None = None,
    instructions: str | None = None,
    strategy: Strategy = "auto",
    **params: Any,
) -> Classification:
    """The label that fits ``text`` best, with the model's confidence in it: from its
    log-probabilities where the model returns them, else self-reported. ``model``: a Model,
    a model id, or None for the configured default."""
    answer_model = _answer_model(labels)  # bad labels fail before a model is built
    check_keywords(params, "classify", ("model", "instructions", "strategy", "attempts"))
    chosen = as_model(model)
    capabilities = chosen.capabilities()
    if capabilities is not None and "logprobs" in capabilities.params:
        params.setdefault("logprobs", 0)
    answer, response = await agenerate_with_response(
        chosen,
        _prompt(text, labels, instructions),
        answer_model,
        strategy=strategy,
        **params,
    )
    result = Classification.model_validate(answer.model_dump())
    if response.logprobs:
        found = label_probability(response.text, result.label, response.logprobs)
        if found is not None:
            result.confidence, result.source = found, "logprobs"
    return result


def classify(
    text: str,
    labels: Sequence[str],
    *,
    model: str | Model | None = None,
    instructions: str | None = None,
    strategy: Strategy = "auto",
    **params: Any,
) -> Classification:
    """Sync twin of aclassify; works inside a running event loop."""
    return _sync.run(
        aclassify(text, labels, model=model, instructions=instructions, strategy=strategy, **params)
    )
