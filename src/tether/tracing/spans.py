"""Spans for tether's own steps (a search, an answer, an eval sample): one span a block,
its text kept as the tracing settings allow (off, truncated, full) and redacted like every
other span."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tether.config import Settings
from tether.redaction import known_secrets, redact, redact_data


def text(settings: Settings, value: Any) -> str | None:
    """``value`` as JSON for a span, or None when content tracing is off."""
    if settings.tracing.content == "off":
        return None
    rendered = redact(json.dumps(value, ensure_ascii=False, default=str), known_secrets())
    limit = settings.tracing.max_chars
    if settings.tracing.content == "truncated" and len(rendered) > limit:
        return rendered[:limit] + f"... [{len(rendered) - limit} more chars]"
    return rendered


@contextmanager
def span(settings: Settings, name: str, attributes: dict[str, Any]) -> Iterator[Any]:
    """A span around a block, or a stand-in that drops what it is given when tracing is off."""
    if not settings.tracing.enabled:
        yield _Off()
        return
    from opentelemetry.trace import StatusCode

    from tether.tracing.setup import tracer

    clean = redact_data(attributes, known_secrets())
    with tracer(settings.db_path, settings.tracing.queue_size).start_as_current_span(
        name, attributes=clean, record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except BaseException as error:
            current.set_attribute("error.type", type(error).__name__)
            current.set_status(StatusCode.ERROR, redact(str(error)))
            raise


class _Off:
    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        pass
