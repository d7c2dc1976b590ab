"""What every loader shares: the errors they raise alike, and the fields a row loader reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tether.errors import DocumentError


@dataclass(frozen=True)
class Fields:
    """Which field of a CSV, JSON or JSONL row holds the text, the title and the id (``None``:
    the loader's defaults)."""

    text: str | None = None
    title: str | None = None
    id: str | None = None


def empty(path: Path, what: str = "no text") -> DocumentError:
    """The file holds nothing to index; nothing can be done but to leave it out."""
    return DocumentError(
        f"{path} is empty ({what}); add text to it or exclude it from ingestion",
        source=str(path),
    )


def missing_package(path: Path, package: str) -> DocumentError:
    """A format whose optional library is not installed."""
    return DocumentError(
        f"reading {path.suffix.lower()} files needs the {package} package: "
        f"pip install {package} (or pip install 'tether[retrieval]')",
        source=str(path),
    )


def title_or_stem(title: object, path: Path) -> str:
    """A document's own title when it has a usable one, else the file's stem."""
    text = " ".join(str(title).split()) if title is not None else ""
    return text or path.stem
