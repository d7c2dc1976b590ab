"""OpenAI's embeddings API, and any OpenAI-compatible ``/v1/embeddings`` (llama.cpp's server,
vLLM, Ollama), through the official SDK and the chat provider's own client and error map."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from tether.errors import ConfigError, MalformedResponse
from tether.models.embeddings.backend import Backend, Batch
from tether.models.embeddings.local import normalise
from tether.models.pricing import price_for
from tether.types import Price

if TYPE_CHECKING:
    from tether.models.openai import OpenAIProvider

# OpenAI's models: dimensions and the most tokens one input may hold.
KNOWN = {
    "text-embedding-3-small": (1536, 8191),
    "text-embedding-3-large": (3072, 8191),
    "text-embedding-ada-002": (1536, 8191),
}


def _pooled(embedding: Any) -> Any:
    """One vector per text: llama.cpp's server, on a model without pooling, answers with a
    vector per token, whose mean is the text's."""
    import numpy as np

    array = np.asarray(embedding, dtype=np.float32)
    return array.mean(axis=0) if array.ndim == 2 else array


class OpenAIEmbedder(Backend):
    """Options: what the chat provider takes (base_url, api_key_env, ...) plus
    ``dimensions`` (asked of the API where the model supports shortening, else the size a
    server's model returns) and ``window`` (a server model's input limit in tokens)."""

    provider = "openai"
    batch_size = 256

    def __init__(self, provider: OpenAIProvider, options: dict[str, Any]) -> None:
        super().__init__(provider.model_name)
        self.chat = provider
        self.provider = options.get("endpoint", "openai")
        known = KNOWN.get(self.name)
        self._dimensions: int | None = options.get("dimensions") or (known and known[0])
        self.shorten = "dimensions" in options and self.name.startswith("text-embedding-3")
        self._window: int = options.get("window") or (known[1] if known else 512)
        if self._dimensions is None and not self.chat.compatible:
            raise ConfigError(
                f"openai:{self.name} is not an embedding model tether knows "
                f"({', '.join(KNOWN)}); pass dimensions= if it is one"
            )

    @property
    def dimensions(self) -> int:
        if self._dimensions is None:
            raise ConfigError(
                f"{self.id}: the server's vector size is unknown until the first call; "
                "embed something first or pass dimensions="
            )
        return self._dimensions

    @property
    def window(self) -> int:
        return self._window

    @cached_property
    def encoding(self) -> Any:
        import tiktoken

        return tiktoken.get_encoding("cl100k_base")

    def count_tokens(self, text: str) -> int:
        return len(self.encoding.encode(text, disallowed_special=()))

    def _cut(self, text: str) -> tuple[str, bool]:
        """The API refuses an input over the window: cut it (on OpenAI's own tokenizer,
        an estimate on another server's), as the local model does."""
        tokens = self.encoding.encode(text, disallowed_special=())
        if len(tokens) <= self._window:
            return text, False
        return self.encoding.decode(tokens[: self._window]), True

    async def embed(self, texts: list[str]) -> Batch:
        from tether.models.openai import failures, map_error

        cut = [self._cut(text) for text in texts]
        # Floats: every compatible server speaks them; base64 is not universal.
        arguments: dict[str, Any] = {
            "model": self.name,
            "input": [text for text, _ in cut],
            "encoding_format": "float",
        }
        if self.shorten:
            arguments["dimensions"] = self._dimensions
        try:
            response = await self.chat.client().embeddings.create(**arguments)
        except failures() as exc:
            raise map_error(exc, self.id) from exc
        rows = sorted(response.data, key=lambda row: row.index)
        if len(rows) != len(texts):
            raise MalformedResponse(
                f"{self.id} returned {len(rows)} vectors for {len(texts)} texts",
                model=self.id,
                provider="openai",
            )
        vectors = normalise([_pooled(row.embedding) for row in rows])
        self._dimensions = self._dimensions or int(vectors.shape[1])
        usage = getattr(response, "usage", None)
        tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        return Batch(vectors=vectors, tokens=tokens, truncated=sum(1 for _, c in cut if c))

    def price(self) -> Price | None:
        return None if self.chat.compatible else price_for(f"openai:{self.name}")

    async def aclose(self) -> None:
        await self.chat.aclose()
