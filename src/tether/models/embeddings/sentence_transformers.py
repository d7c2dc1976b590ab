"""``sentence-transformers:NAME``: any sentence-transformers model (the optional ``torch``
extra), by hub name or local folder. Loading from the hub downloads the weights once."""

from __future__ import annotations

import asyncio
import threading
from functools import cached_property
from typing import Any

from tether.errors import ConfigError
from tether.models.embeddings.backend import Backend, Batch
from tether.models.embeddings.local import normalise


class SentenceTransformerEmbedder(Backend):
    provider = "sentence-transformers"

    def __init__(self, name: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(name)
        self.device: str | None = (options or {}).get("device")
        self._lock = threading.Lock()

    @cached_property
    def model(self) -> Any:
        try:
            from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]
        except ImportError as exc:
            raise ConfigError(
                f"{self.id} needs sentence-transformers: pip install 'tether[torch]'"
            ) from exc
        return SentenceTransformer(self.name, device=self.device)

    @property
    def dimensions(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    @property
    def window(self) -> int:
        return int(self.model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenizer.tokenize(text))

    async def embed(self, texts: list[str]) -> Batch:
        return await asyncio.to_thread(self._embed, texts)

    def _embed(self, texts: list[str]) -> Batch:
        with self._lock:
            vectors = self.model.encode(texts, batch_size=len(texts), convert_to_numpy=True)
        tokens = sum(min(self.count_tokens(t), self.window) for t in texts)
        truncated = sum(1 for t in texts if self.count_tokens(t) > self.window)
        return Batch(vectors=normalise(vectors), tokens=tokens, truncated=truncated)
