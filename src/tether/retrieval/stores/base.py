"""The Store protocol: what an index needs from the database beneath it."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from tether.errors import ConfigError
from tether.retrieval.chunking import Chunking
from tether.retrieval.types import Chunk, Document, Hit

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

Filters = Mapping[str, Any]
Embed = Callable[[list[str]], "npt.NDArray[np.float32]"]
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class IndexInfo(BaseModel):
    index_id: int
    name: str
    embedder: str
    dimensions: int
    chunking: Chunking
    created_ns: int
    generation: int

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> IndexInfo:
        """From a row of INDEX_COLUMNS, as both stores select it."""
        index_id, name, embedder, dimensions, chunking, created, generation = row
        return cls(
            index_id=index_id,
            name=name,
            embedder=embedder,
            dimensions=dimensions,
            chunking=Chunking.model_validate_json(chunking),
            created_ns=created,
            generation=generation,
        )


INDEX_COLUMNS = "index_id, name, embedder, dimensions, chunking, created_ns, generation"


class StoredDocument(BaseModel):
    source: str
    file: str | None
    hash: str


class FileState(BaseModel):
    size: int
    mtime_ns: int
    hash: str


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ConfigError(
            f"index name {name!r} is not valid: use letters, digits, '_', '-' or '.', "
            "starting with a letter or digit, at most 64 characters"
        )
    return name


def query_terms(query: str) -> list[str]:
    """The words of a query, for full-text search: its operators and punctuation are the
    user's text, never syntax. Underscores part words, as FTS5's and PostgreSQL's parsers
    part them, so each word is one token to both."""
    return re.findall(r"[^\W_]+", query.lower())


class Store(Protocol):
    def create_index(
        self, name: str, embedder: str, dimensions: int, chunking: Chunking
    ) -> IndexInfo: ...
    def get_index(self, name: str) -> IndexInfo | None: ...
    def list_indexes(self) -> list[IndexInfo]: ...
    def drop_index(self, name: str) -> bool: ...
    def file_state(self, index: IndexInfo, path: str) -> FileState | None: ...
    def files(self, index: IndexInfo) -> list[str]: ...
    def documents(self, index: IndexInfo, file: str | None = None) -> list[StoredDocument]: ...
    def write_document(
        self,
        index: IndexInfo,
        document: Document,
        file: str | None,
        chunks: Sequence[Chunk],
        vectors: npt.NDArray[np.float32],
    ) -> None: ...
    def delete_documents(self, index: IndexInfo, sources: Sequence[str]) -> int: ...
    def set_file(self, index: IndexInfo, path: str, state: FileState) -> None: ...
    def delete_file(self, index: IndexInfo, path: str) -> int: ...
    def lexical(
        self, index: IndexInfo, query: str, k: int, filters: Filters | None = None
    ) -> list[tuple[int, float]]: ...
    def dense(
        self,
        index: IndexInfo,
        vector: npt.NDArray[np.float32],
        k: int,
        filters: Filters | None = None,
    ) -> list[tuple[int, float]]: ...
    def hits(self, index: IndexInfo, chunk_ids: Sequence[int]) -> dict[int, Hit]: ...
    def chunk_vectors(
        self, index: IndexInfo, chunk_ids: Sequence[int]
    ) -> npt.NDArray[np.float32]: ...
    def same_text(self, index: IndexInfo, text: str) -> str | None: ...
    def document_text(self, index: IndexInfo, source: str) -> str | None: ...
    def stats(self, index: IndexInfo) -> dict[str, Any]: ...
    def reembed(
        self, index: IndexInfo, embedder: str, dimensions: int, embed: Embed
    ) -> IndexInfo: ...
    def close(self) -> None: ...
