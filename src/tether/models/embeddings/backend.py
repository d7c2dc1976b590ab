"""The seam an embedding provider implements: one async method over one batch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tether.types import Price

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


@dataclass
class Batch:
    """A batch's vectors (one row per text, unit length), the tokens it cost, and how many
    texts were cut to the model's window."""

    vectors: npt.NDArray[np.float32]
    tokens: int
    truncated: int = 0


class Backend(ABC):
    """An embedding model: ``embed`` one batch; everything else (batching, the cache,
    tracing, cost) is the Embedder's."""

    provider: str = ""
    #: Texts per call: the Embedder splits larger inputs.
    batch_size: int = 32

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def id(self) -> str:
        return f"{self.provider}:{self.name}"

    @property
    @abstractmethod
    def dimensions(self) -> int:
        """The length of every vector it returns."""

    @property
    @abstractmethod
    def window(self) -> int:
        """The most tokens of one text it reads; longer texts are cut to it."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as this model counts them (chunk sizes are measured in them)."""

    @abstractmethod
    async def embed(self, texts: list[str]) -> Batch:
        """Vectors for ``texts``, in order, each normalised to unit length."""

    def price(self) -> Price | None:
        return None

    async def aclose(self) -> None:  # noqa: B027 - optional: most hold nothing to close
        """Free what it holds (HTTP clients)."""
