"""PDF: the text layer of every page, with where each page lies in the document's text.

Pages are joined with a blank line; ``Document.pages`` holds each page's ``[start, end)``
offsets, so a chunk or a citation knows its page. Reading is pypdf's, which decrypts RC4
itself and AES with the ``cryptography`` package (in the retrieval extra).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from tether.errors import DocumentError
from tether.retrieval.loaders.common import missing_package, title_or_stem
from tether.retrieval.types import Document, Page

_SEPARATOR = "\n\n"


def load_pdf(path: Path, data: bytes) -> Document:
    """One PDF as a document; raises DocumentError when it is malformed, password-protected
    or has no text layer."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import DependencyError, PyPdfError
    except ImportError as exc:
        raise missing_package(path, "pypdf") from exc
    # What pypdf raises on damaged input goes beyond its own errors: these come out of its
    # parser on truncated or garbage files. Only pypdf runs inside the try.
    malformed = (
        PyPdfError,
        ValueError,
        KeyError,
        IndexError,
        TypeError,
        AttributeError,
        AssertionError,
        ArithmeticError,
        RecursionError,
        EOFError,
        NotImplementedError,
        struct.error,
        zlib.error,
    )
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):  # many use an empty user password
            raise _locked(path)
        texts = [(page.extract_text() or "").replace("\r\n", "\n").strip() for page in reader.pages]
        title = reader.metadata.title if reader.metadata else None
    except DependencyError as exc:
        raise DocumentError(
            f"{path} is AES-encrypted and reading it needs the cryptography package: "
            "pip install cryptography",
            source=str(path),
        ) from exc
    except malformed as exc:
        raise DocumentError(
            f"{path} is a malformed PDF ({type(exc).__name__}: {exc}); repair or re-export it "
            "(e.g. qpdf in.pdf out.pdf)",
            source=str(path),
        ) from exc
    if not texts:
        raise DocumentError(f"{path} is a PDF with no pages; re-export it", source=str(path))
    if not any(texts):
        raise DocumentError(
            f"{path} has no text layer (a scanned PDF?); OCR it first (e.g. ocrmypdf in.pdf "
            "out.pdf)",
            source=str(path),
        )
    text, pages = _join(texts)
    return Document(source=str(path), text=text, title=title_or_stem(title, path), pages=pages)


def _locked(path: Path) -> DocumentError:
    return DocumentError(
        f"{path} is a password-protected PDF; decrypt it first (e.g. qpdf --decrypt "
        "--password=PASSWORD in.pdf out.pdf)",
        source=str(path),
    )


def _join(texts: list[str]) -> tuple[str, list[Page]]:
    """The pages' texts joined, and each page's place in the result."""
    pages: list[Page] = []
    offset = 0
    for number, text in enumerate(texts, start=1):
        if number > 1:
            offset += len(_SEPARATOR)
        pages.append(Page(number=number, start=offset, end=offset + len(text)))
        offset += len(text)
    return _SEPARATOR.join(texts), pages
