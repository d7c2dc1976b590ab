"""Reading a provider's answer: what tether cannot read is a MalformedResponse, not an outage.

An adapter reads each answer (or stream event) inside ``reading``, so a payload of the wrong
shape fails once, non-retryable, with the start of what came back, instead of posing as an
outage that retries and fallbacks would pay for again and hide.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from tether.errors import MalformedResponse

# What reading a payload of the wrong shape raises: a missing key or index, None where a
# value was expected, a value pydantic refuses (its ValidationError is a ValueError).
PARSE_FAILURES = (AttributeError, LookupError, TypeError, ValueError)
EXCERPT_CHARS = 300


def excerpt(received: object) -> str:
    """The start of ``received`` as text: a body, a decoded payload or an SDK model ("" for
    None: nothing is known of it)."""
    if received is None:
        return ""
    if isinstance(received, bytes):
        text = received.decode("utf-8", errors="replace")
    elif isinstance(received, str):
        text = received
    else:
        try:
            dump = getattr(received, "model_dump", None)
            data = dump() if callable(dump) else received
            text = json.dumps(data, ensure_ascii=False, default=repr)
        except Exception:  # the excerpt must never fail the error it belongs to
            text = repr(received)
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."


def malformed(
    exc: BaseException, received: object, *, model: str, provider: str, hint: str
) -> MalformedResponse:
    """The error for an answer tether could not read; ``hint`` says what to check."""
    shown = excerpt(received)
    began = f". It began: {shown}" if shown else ""
    return MalformedResponse(
        f"{model}: tether could not read the answer ({type(exc).__name__}: {exc}); "
        f"asking again will not help: {hint}{began}",
        excerpt=shown,
        model=model,
        provider=provider,
    )


@contextmanager
def reading(received: object, *, model: str, provider: str, hint: str) -> Iterator[None]:
    """Read ``received`` in the block; a parse failure there becomes a MalformedResponse."""
    try:
        yield
    except PARSE_FAILURES as exc:
        raise malformed(exc, received, model=model, provider=provider, hint=hint) from exc
