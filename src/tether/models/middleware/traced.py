"""Traced: every model call becomes an OpenTelemetry span (GenAI semantic conventions).

The span carries the request parameters, usage, cost, latency, the error if any, and the
prompt and completion as the settings allow (off, truncated, full). Every string on it is
redacted first (tether.redaction): this is the one producer of tether's spans, so every
processor on the provider, the trace store and an OTLP exporter alike, gets them clean. The
wrapped model never knows it is traced, and a failure to trace never fails the call.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from tether.config import Settings
from tether.models.base import Model, Wrapper, closing
from tether.redaction import known_secrets, redact, redact_data, redact_field
from tether.tracing import semconv as sc
from tether.types import Request, Response, ResponseEvent, StreamEvent

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer


class Traced(Wrapper):
    def __init__(self, inner: Model, settings: Settings, *, alias: str | None = None) -> None:
        super().__init__(inner)
        self.alias = alias
        self.content = settings.tracing.content
        self.max_chars = settings.tracing.max_chars
        self.db_path = settings.db_path
        self.queue_size = settings.tracing.queue_size
        self._tracer: Tracer | None = None

    def tracer(self) -> Tracer:
        if self._tracer is None:
            from tether.tracing.setup import tracer

            self._tracer = tracer(self.db_path, self.queue_size)
        return self._tracer

    def _text(self, value: Any, secrets: tuple[str, ...]) -> str | None:
        if self.content == "off":
            return None
        # Redacted before it is cut: a key cut in two would no longer be recognised.
        text = redact(json.dumps(value, ensure_ascii=False), secrets)
        if self.content == "truncated" and len(text) > self.max_chars:
            return text[: self.max_chars] + f"... [{len(text) - self.max_chars} more chars]"
        return text

    def _start(self, request: Request, *, stream: bool) -> Span:
        secrets = known_secrets()
        provider, _, _ = self.id.partition(":")
        attrs: dict[str, Any] = {
            sc.OPERATION: "chat",
            sc.PROVIDER: provider,
            sc.REQUEST_MODEL: self.id,
            sc.STREAM: stream,
        }
        params = request.params
        for key, value in (
            (sc.REQUEST_TEMPERATURE, params.temperature),
            (sc.REQUEST_TOP_P, params.top_p),
            (sc.REQUEST_MAX_TOKENS, params.max_tokens),
            (sc.REQUEST_SEED, params.seed),
            (sc.REQUEST_STOP, params.stop),
            (sc.ALIAS, self.alias),
        ):
            if value is not None:
                attrs[key] = value
        if request.output is not None:
            attrs[sc.OUTPUT_TYPE] = "json"
            attrs[sc.OUTPUT_NAME] = request.output.name
            attrs[sc.OUTPUT_MODE] = request.output.mode or "auto"
            if request.output.bounds is not None:
                attrs[sc.OUTPUT_BOUNDS] = request.output.bounds.describe()
        attrs = redact_data(attrs, secrets)
        for key, value in request.metadata.items():  # e.g. prompt name and version, route
            attrs[f"{sc.METADATA}.{key}"] = redact_field(key, value, secrets)
        messages = [m.model_dump(exclude_defaults=True) for m in request.messages]
        prompt = self._text(messages, secrets)
        if prompt is not None:
            attrs[sc.INPUT_MESSAGES] = prompt
        name = redact(f"chat {self.id}", secrets)
        return self.tracer().start_span(name, attributes=attrs)

    def _succeed(self, span: Span, response: Response) -> None:
        secrets = known_secrets()
        usage = response.usage
        attrs: dict[str, Any] = {
            sc.RESPONSE_MODEL: response.model,
            sc.RESPONSE_FINISH: [response.finish_reason],
            sc.USAGE_INPUT: usage.input_tokens,
            sc.USAGE_OUTPUT: usage.output_tokens,
            sc.USAGE_CACHE_READ: usage.cached_tokens,
            sc.USAGE_CACHE_WRITE: usage.cache_write_tokens,
            sc.USAGE_REASONING: usage.reasoning_tokens,
            sc.LATENCY: response.latency_s,
        }
        if response.provider_id:
            attrs[sc.RESPONSE_ID] = response.provider_id
        if response.cost_usd is not None:
            attrs[sc.COST] = response.cost_usd
        attrs = redact_data(attrs, secrets)
        completion = self._text(response.message.model_dump(exclude_defaults=True), secrets)
        if completion is not None:
            attrs[sc.OUTPUT_MESSAGES] = completion
        span.set_attributes(attrs)

    def _fail(self, span: Span, error: BaseException, started: float) -> None:
        from opentelemetry.trace import StatusCode

        span.set_attribute(sc.LATENCY, time.perf_counter() - started)
        if isinstance(error, GeneratorExit | asyncio.CancelledError):
            # The caller stopped reading or gave up: the call did not fail.
            span.set_attribute(sc.CANCELLED, True)
            return
        span.set_attribute(sc.ERROR_TYPE, type(error).__name__)
        span.set_status(StatusCode.ERROR, redact(str(error)))

    async def request(self, request: Request) -> Response:
        span = self._start(request, stream=False)
        started = time.perf_counter()
        try:
            response = await self.inner.request(request)
        except BaseException as error:
            self._fail(span, error, started)
            raise
        else:
            self._succeed(span, response)
            return response
        finally:
            span.end()

    async def request_stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        span = self._start(request, stream=True)
        started = time.perf_counter()
        first, answered = True, False
        try:
            async with closing(self.inner.request_stream(request)) as events:
                async for event in events:
                    if first:
                        span.set_attribute(sc.TIME_TO_FIRST, time.perf_counter() - started)
                        first = False
                    if isinstance(event, ResponseEvent):
                        self._succeed(span, event.response)
                        answered = True
                    yield event
        except BaseException as error:
            if not answered:  # stopping after the final event is no failure
                self._fail(span, error, started)
            raise
        finally:
            span.end()
