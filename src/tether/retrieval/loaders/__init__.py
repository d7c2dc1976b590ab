"""Files in, documents out: one loader per format, chosen by the file's suffix.

``load_with_problems`` returns a file's documents and the rows it skipped (CSV, JSON and
JSONL files hold one document per row, and one bad row does not fail the file); ``load``
returns the documents alone. Every file that cannot be read as a document at all (empty,
binary, too large, encrypted, malformed) raises DocumentError saying what to do. The PDF,
Word and HTML libraries are imported only when a file of their kind is read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tether.errors import DocumentError
from tether.retrieval.loaders.common import Fields, empty
from tether.retrieval.loaders.docx import load_docx
from tether.retrieval.loaders.html import load_html
from tether.retrieval.loaders.pdf import load_pdf
from tether.retrieval.loaders.tabular import load_csv, load_json, load_jsonl
from tether.retrieval.loaders.text import decode, load_markdown, load_text
from tether.retrieval.loaders.walk import walk
from tether.retrieval.types import Document

__all__ = ["SUFFIXES", "decode", "load", "load_with_problems", "walk"]

_Single = Callable[[Path, bytes], Document]
_Rows = Callable[[Path, bytes, Fields], tuple[list[Document], list[str]]]

_SINGLE: dict[str, _Single] = {
    **dict.fromkeys((".txt", ".text", ".rst", ".log"), load_text),
    **dict.fromkeys((".md", ".markdown"), load_markdown),
    **dict.fromkeys((".html", ".htm"), load_html),
    ".pdf": load_pdf,
    ".docx": load_docx,
}
_ROWS: dict[str, _Rows] = {
    ".csv": load_csv,
    ".json": load_json,
    **dict.fromkeys((".jsonl", ".ndjson"), load_jsonl),
}
SUFFIXES = tuple(sorted([*_SINGLE, *_ROWS]))
"""The suffixes with a loader of their own; any other file is read as text if it is text."""


def load(
    path: Path,
    *,
    data: bytes | None = None,
    max_bytes: int = 50_000_000,
    text_field: str | None = None,
    title_field: str | None = None,
    id_field: str | None = None,
) -> list[Document]:
    """The documents in one file, leaving out the rows ``load_with_problems`` reports."""
    return load_with_problems(
        path,
        data=data,
        max_bytes=max_bytes,
        text_field=text_field,
        title_field=title_field,
        id_field=id_field,
    )[0]


def load_with_problems(
    path: Path,
    *,
    data: bytes | None = None,
    max_bytes: int = 50_000_000,
    text_field: str | None = None,
    title_field: str | None = None,
    id_field: str | None = None,
) -> tuple[list[Document], list[str]]:
    """The documents in one file, and a message for each row that was skipped.

    ``data`` is the file's content when the caller has read it already (ingestion hashes the
    very bytes it parses, so a file changing meanwhile cannot give text that differs from its
    hash); otherwise the file is read here. ``text_field``, ``title_field`` and ``id_field``
    choose the columns of CSV, JSON and JSONL rows. Raises DocumentError for a file that
    cannot be read as a document, and OSError when it cannot be read at all.
    """
    try:
        modified: float | None = path.stat().st_mtime
    except OSError:  # bytes given for a file that is gone, or never was one
        modified = None
    if data is None:
        _check_size(path, path.stat().st_size, max_bytes)  # before reading a huge file
        data = path.read_bytes()
    _check_size(path, len(data), max_bytes)
    if not data:
        raise empty(path, "0 bytes")
    suffix = path.suffix.lower()
    problems: list[str] = []
    if suffix in _SINGLE:
        documents = [_SINGLE[suffix](path, data)]
    elif suffix in _ROWS:
        documents, problems = _ROWS[suffix](path, data, Fields(text_field, title_field, id_field))
    else:
        documents = [_unknown(path, data)]
    for document in documents:
        document.modified = modified
    return documents, problems


def _check_size(path: Path, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise DocumentError(
            f"{path} is {size:,} bytes, over the limit of {max_bytes:,}; raise max_bytes to "
            "read it, or exclude it",
            source=str(path),
        )


def _unknown(path: Path, data: bytes) -> Document:
    """A file of no known format is read as plain text, when it is text."""
    try:
        decode(data, str(path))
    except DocumentError as exc:
        raise DocumentError(
            f"{path} has an unsupported suffix {path.suffix or '(none)'!r} and is not text; "
            f"supported suffixes: {', '.join(SUFFIXES)}",
            source=str(path),
        ) from exc
    return load_text(path, data)
