"""One OpenTelemetry tracer provider per project database, created on first use.

tether keeps its own TracerProvider so it neither needs nor disturbs an application's global
one. To send the same spans elsewhere (OTLP, a console), add a processor to it:
``tether.tracing.tracer_provider().add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))``.
At exit every provider is shut down: queued spans are stored, the writer threads stopped,
and the processors added to it (an OTLP exporter's batch) flushed too.
"""

from __future__ import annotations

import atexit
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from tether.tracing.store import StoreProcessor

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

_lock = threading.Lock()
_providers: dict[Path, tuple[TracerProvider, StoreProcessor]] = {}


def _provider(db_path: Path, queue_size: int = 10_000) -> tuple[TracerProvider, StoreProcessor]:
    from opentelemetry.sdk.trace import TracerProvider

    key = db_path.absolute()
    with _lock:
        if key not in _providers:
            processor = StoreProcessor(key, queue_size=queue_size)
            # Shut down by shutdown() below, which bounds the wait for the store.
            provider = TracerProvider(shutdown_on_exit=False)
            provider.add_span_processor(processor)
            _providers[key] = (provider, processor)
        return _providers[key]


def tracer(db_path: Path, queue_size: int = 10_000) -> Tracer:
    return _provider(db_path, queue_size)[0].get_tracer("tether")


def tracer_provider(db_path: Path | None = None) -> TracerProvider:
    """The provider that traces calls into ``db_path`` (default: the current project's)."""
    if db_path is None:
        from tether.config import load_settings

        db_path = load_settings().db_path
    return _provider(db_path)[0]


def store_processor(db_path: Path) -> StoreProcessor | None:
    return _providers.get(db_path.absolute(), (None, None))[1]


def flush(timeout: float = 10.0) -> bool:
    """Wait until every finished span is stored; True when nothing is left waiting."""
    with _lock:
        processors = [processor for _, processor in _providers.values()]
    return all(p.force_flush(int(timeout * 1000)) for p in processors)


def shutdown(timeout: float = 5.0) -> None:
    """Store every queued span, stop the writer threads and shut the providers down (the
    processors added to them too). Runs at exit; spans that end after it are lost, counted."""
    with _lock:
        entries = list(_providers.values())
        _providers.clear()
    for provider, processor in entries:
        processor.shutdown(timeout)  # the provider's own shutdown would wait without bound
        provider.shutdown()


atexit.register(shutdown, 5.0)
