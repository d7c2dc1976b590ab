"""The Embedder a user holds: batching by length, the cache, a span per batch, cost."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, overload

from tether import _sync
from tether.config import Settings, load_settings
from tether.errors import ConfigError, ModelNotFound
from tether.models.embeddings.backend import Backend, Batch
from tether.models.embeddings.cache import EmbeddingCache
from tether.redaction import redact
from tether.tracing import semconv as sc
from tether.types import Usage

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]


class Embedder:
    """Text to unit-length vectors. ``embed("one")`` gives one vector, ``embed([...])`` a
    matrix with one row per text, in order.

    Texts are embedded in batches of similar length (less padding), unchanged text comes
    from the cache, and every call to the model is a span with its tokens and cost. A text
    longer than the model's window is cut to it (counted on the span as ``truncated``).
    """

    def __init__(self, backend: Backend, settings: Settings, *, cache: bool = True) -> None:
        self.backend = backend
        self.settings = settings
        self.cache = EmbeddingCache(settings.db_path) if cache else None
        self._tracer: Any = None

    @property
    def id(self) -> str:
        return self.backend.id

    @property
    def dimensions(self) -> int:
        return self.backend.dimensions

    @property
    def window(self) -> int:
        return self.backend.window

    def count_tokens(self, text: str) -> int:
        return self.backend.count_tokens(text)

    @overload
    async def aembed(self, texts: str) -> Vectors: ...
    @overload
    async def aembed(self, texts: Sequence[str]) -> Vectors: ...
    async def aembed(self, texts: str | Sequence[str]) -> Vectors:
        import numpy as np

        if isinstance(texts, str):
            one: Vectors = (await self.aembed([texts]))[0]
            return one
        texts = list(texts)
        if not texts:
            return np.zeros((0, self._dimensions_or(0)), dtype=np.float32)
        hashes = [hashlib.sha256(text.encode()).hexdigest() for text in texts]
        known = self._cached(hashes)
        todo = {h: t for h, t in zip(hashes, texts, strict=True) if h not in known}
        missing = sorted(todo.items(), key=lambda item: len(item[1]))  # less padding
        size = self.backend.batch_size
        for at in range(0, len(missing), size):
            part = missing[at : at + size]
            batch = await self._call([text for _, text in part], cached=len(known))
            fresh = list(zip((h for h, _ in part), batch.vectors, strict=True))
            known.update(fresh)
            if self.cache is not None:
                self.cache.put(self.id, fresh)
        return np.stack([known[h] for h in hashes])

    @overload
    def embed(self, texts: str) -> Vectors: ...
    @overload
    def embed(self, texts: Sequence[str]) -> Vectors: ...
    def embed(self, texts: str | Sequence[str]) -> Vectors:
        """Sync twin of aembed; works inside a running event loop."""
        return _sync.run(self.aembed(texts))

    def _dimensions_or(self, default: int) -> int:
        try:
            return self.dimensions
        except ConfigError:
            return default

    def _cached(self, hashes: list[str]) -> dict[str, Vectors]:
        dimensions = self._dimensions_or(0)
        if self.cache is None or not dimensions:
            return {}
        return self.cache.get(self.id, hashes, dimensions)

    def tracer(self) -> Any:
        if self._tracer is None:
            from tether.tracing.setup import tracer

            self._tracer = tracer(self.settings.db_path, self.settings.tracing.queue_size)
        return self._tracer

    async def _call(self, texts: list[str], *, cached: int) -> Batch:
        if not self.settings.tracing.enabled:
            return await self.backend.embed(texts)
        from opentelemetry.trace import StatusCode

        attrs = {
            sc.OPERATION: "embeddings",
            sc.PROVIDER: self.backend.provider,
            sc.REQUEST_MODEL: self.id,
            sc.EMBEDDINGS_COUNT: len(texts),
            sc.EMBEDDINGS_CACHED: cached,
        }
        span = self.tracer().start_span(f"embeddings {self.id}", attributes=attrs)
        started = time.perf_counter()
        try:
            batch = await self.backend.embed(texts)
        except BaseException as error:
            span.set_attribute(sc.LATENCY, time.perf_counter() - started)
            span.set_attribute(sc.ERROR_TYPE, type(error).__name__)
            span.set_status(StatusCode.ERROR, redact(str(error)))
            raise
        else:
            price = self.backend.price()
            usage = Usage(input_tokens=batch.tokens)
            span.set_attributes(
                {
                    sc.USAGE_INPUT: batch.tokens,
                    sc.LATENCY: time.perf_counter() - started,
                    sc.EMBEDDINGS_TRUNCATED: batch.truncated,
                    **({sc.COST: price.cost(usage)} if price is not None else {}),
                }
            )
            return batch
        finally:
            span.end()

    async def aclose(self) -> None:
        await self.backend.aclose()
        if self.cache is not None:
            self.cache.close()

    def close(self) -> None:
        _sync.run(self.aclose())

    def __repr__(self) -> str:
        return f"Embedder({self.id!r})"


def backend(embedder_id: str, settings: Settings, **options: Any) -> Backend:
    """The bare backend for ``provider:name`` or ``ENDPOINT:name``."""
    prefix, sep, name = embedder_id.partition(":")
    if not sep or not name:
        raise ModelNotFound(_unknown(embedder_id, settings))
    if prefix == "local":
        from tether.models.embeddings.local import LocalEmbedder

        return LocalEmbedder(name, {"threads": settings.local.threads, **options})
    if prefix == "sentence-transformers":
        from tether.models.embeddings.sentence_transformers import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(name, options)
    if prefix == "openai" or settings.endpoints.get(prefix, None) is not None:
        if prefix in settings.endpoints and settings.endpoints[prefix].provider != "openai":
            raise ModelNotFound(
                f"{embedder_id}: endpoint {prefix!r} speaks the "
                f"{settings.endpoints[prefix].provider} API, which has no embeddings"
            )
        from tether.config import ModelConfig
        from tether.models.embeddings.openai import OpenAIEmbedder
        from tether.models.openai import OpenAIProvider
        from tether.models.registry import build_provider

        connection = {k: options.pop(k) for k in CONNECTION if k in options}
        chat = build_provider(embedder_id, settings, ModelConfig(id=embedder_id, **connection))
        assert isinstance(chat, OpenAIProvider)
        if "http_client" in options:
            chat.options["http_client"] = options.pop("http_client")
        if "compatible" in options:  # another server at base_url, not OpenAI behind a proxy
            chat.compatible = bool(options.pop("compatible"))
        if prefix in settings.endpoints:
            options["endpoint"] = prefix
        return OpenAIEmbedder(chat, options)
    raise ModelNotFound(_unknown(embedder_id, settings))


CONNECTION = ("base_url", "api_key", "api_key_env")


def _unknown(embedder_id: str, settings: Settings) -> str:
    known = ["local:minilm", "openai:text-embedding-3-small", "sentence-transformers:NAME"]
    known += [f"{e}:NAME" for e, c in settings.endpoints.items() if c.provider == "openai"]
    return f"unknown embedder {embedder_id!r}; ids look like {', '.join(known)}"


def embedder(
    embedder_id: str = "local:minilm",
    *,
    settings: Settings | None = None,
    cache: bool = True,
    **options: Any,
) -> Embedder:
    """A ready Embedder. ``options`` go to the backend: ``dimensions=``, ``window=``,
    ``base_url=``, ``api_key_env=``, ``api_key=`` (OpenAI and compatible servers),
    ``threads=`` (local), ``device=`` (sentence-transformers)."""
    settings = settings or load_settings()
    made = backend(embedder_id, settings, **options)
    return Embedder(made, settings, cache=cache)
