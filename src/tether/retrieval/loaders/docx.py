"""Word (.docx): paragraphs and tables in document order, headings marked as in Markdown.

A heading styled "Heading N" becomes ``N`` ``#`` marks and a space (the "Title" style one),
so the heading-aware chunker treats a Word file as it treats Markdown. A table row is one
paragraph, its cells joined with `` | ``. Reading is python-docx's.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from tether.errors import DocumentError
from tether.retrieval.loaders.common import empty, missing_package, title_or_stem
from tether.retrieval.types import Document

if TYPE_CHECKING:
    from docx.table import Table
    from docx.text.paragraph import Paragraph

# Encrypted .docx files (and legacy .doc) are OLE compound files, not zip archives.
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HEADING = re.compile(r"heading\s*(\d)", re.IGNORECASE)


def load_docx(path: Path, data: bytes) -> Document:
    """One Word document; raises DocumentError when it is encrypted, legacy or malformed."""
    if data.startswith(_OLE):
        raise DocumentError(
            f"{path} is password-protected or legacy .doc (an OLE file, not a .docx zip); "
            "remove the password, or save it as .docx from Word or LibreOffice",
            source=str(path),
        )
    try:
        import docx
        from docx.opc.exceptions import OpcError
        from docx.table import Table
    except ImportError as exc:
        raise missing_package(path, "python-docx") from exc
    # python-docx lets zip, lxml (a SyntaxError) and lookup errors through on damaged files.
    damaged = (
        OpcError,
        zipfile.BadZipFile,
        KeyError,
        ValueError,
        SyntaxError,
        EOFError,
        zlib.error,
    )
    try:
        document = docx.Document(io.BytesIO(data))
        blocks = [
            _table(item) if isinstance(item, Table) else _paragraph(item)
            for item in document.iter_inner_content()
        ]
        title = document.core_properties.title
    except damaged as exc:
        raise DocumentError(
            f"{path} is not a readable .docx ({type(exc).__name__}: {exc}); re-save it from "
            "Word or LibreOffice",
            source=str(path),
        ) from exc
    text = "\n\n".join(block for block in blocks if block)
    if not text.strip():
        raise empty(path, "no text in the document")
    first = next((b.lstrip("#").strip() for b in blocks if b.startswith("#")), None)
    return Document(source=str(path), text=text, title=title_or_stem(title or first, path))


def _paragraph(paragraph: Paragraph) -> str:
    text = paragraph.text.strip()
    if not text:
        return ""
    level = _level(paragraph)
    return f"{'#' * level} {text}" if level else text


def _level(paragraph: Paragraph) -> int:
    """The heading level from the paragraph's style name, 0 for body text."""
    try:
        name = paragraph.style.name if paragraph.style is not None else ""
    except (KeyError, ValueError):  # a style id the styles part does not define
        return 0
    name = name or ""
    if name.lower() == "title":
        return 1
    match = _HEADING.fullmatch(name.strip())
    return min(int(match.group(1)), 6) if match and match.group(1) != "0" else 0


def _table(table: Table) -> str:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:  # a cell spanning columns comes once for each column
            text = " ".join(cell.text.split()) if cell is not previous else ""
            previous = cell
            if text:
                cells.append(text)
        if cells:
            rows.append(" | ".join(cells))
    return "\n\n".join(rows)
