"""Plain text and Markdown, and the decoding every text format shares.

How bytes become text (``decode``):

1. a UTF-8 BOM: UTF-8, the BOM dropped; a UTF-32 or UTF-16 BOM: that encoding;
2. otherwise NUL bytes, or many other control bytes, mean the file is binary: DocumentError;
3. valid UTF-8: UTF-8;
4. invalid UTF-8 that still holds at least as many valid multi-byte UTF-8 characters as
   invalid sequences: UTF-8 with each invalid sequence replaced by U+FFFD (a UTF-8 file with
   a stray byte pasted in from elsewhere); legacy text almost never forms a valid multi-byte
   sequence by chance, so one such character is good evidence;
5. anything else: cp1252 (a superset of latin-1's printable characters), or latin-1 when the
   bytes use one of the five positions cp1252 leaves undefined.

Newlines become ``\\n`` whatever the file used.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from tether.errors import DocumentError
from tether.retrieval.loaders.common import empty
from tether.retrieval.types import Document

_BOMS = (  # UTF-32 first: its little-endian BOM starts with UTF-16's
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# C0 control bytes that text does not use (tab, newlines, form feed and ESC are kept apart).
_CONTROL = re.compile(rb"[\x01-\x08\x0e-\x1a\x1c-\x1f]")
_SAMPLE = 8192
_MAX_CONTROL_SHARE = 0.05
_HEADING = re.compile(r" {0,3}# +(.+?)(?:\s+#+)?\s*$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


def decode(data: bytes, source: str | None = None) -> str:
    """The text of ``data`` by the rules in this module's docstring; raises DocumentError when
    the bytes are binary or do not decode."""
    text = _decode(data, source)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(data: bytes, source: str | None) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding, errors="strict")
            except UnicodeDecodeError as exc:
                raise DocumentError(
                    f"{source or 'the file'} starts with a {encoding} byte-order mark but does "
                    f"not decode as {encoding} ({exc.reason}); re-save it as UTF-8",
                    source=source,
                ) from exc
    if _binary(data):
        raise DocumentError(
            f"{source or 'the file'} looks binary (it holds NUL or control bytes), not text; "
            "exclude it, or convert it to a supported format",
            source=source,
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    replaced = data.decode("utf-8", errors="replace")
    invalid = replaced.count("\ufffd") - data.count("\ufffd".encode())
    non_ascii = len(replaced) - len(replaced.encode("ascii", errors="ignore"))
    if non_ascii - invalid >= invalid:  # valid multi-byte characters outnumber the damage
        return replaced
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _binary(data: bytes) -> bool:
    if b"\x00" in data:
        return True
    sample = data[:_SAMPLE]
    return len(_CONTROL.findall(sample)) > _MAX_CONTROL_SHARE * len(sample)


def load_text(path: Path, data: bytes) -> Document:
    """A plain-text file as one document titled by the file's stem."""
    text = decode(data, str(path))
    if not text.strip():
        raise empty(path, "only whitespace")
    return Document(source=str(path), text=text, title=path.stem)


def load_markdown(path: Path, data: bytes) -> Document:
    """A Markdown file, kept as its source (the chunker splits it on its headings and offsets
    index into it), titled by its first ``# `` heading or else the file's stem."""
    text = decode(data, str(path))
    if not text.strip():
        raise empty(path, "only whitespace")
    return Document(source=str(path), text=text, title=markdown_title(text) or path.stem)


def markdown_title(text: str) -> str | None:
    """The first level-one ATX heading outside fenced code, without its ``#`` marks."""
    fence: str | None = None
    for line in text.split("\n"):
        if fence is not None:
            mark = line.strip()
            if len(mark) >= len(fence) and set(mark) == {fence[0]}:
                fence = None
            continue
        opened = _FENCE.match(line)
        if opened:
            fence = opened.group(1)
            continue
        heading = _HEADING.match(line)
        if heading:
            return heading.group(1).strip()[:200] or None
    return None
