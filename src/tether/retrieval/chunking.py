"""Splitting documents into chunks that fit the embedder, each with its exact offsets.

Three ways, one rule: a chunk is ``text[start:end]`` of its document, trimmed of surrounding
whitespace, at most ``size`` tokens (as the embedder counts them), and consecutive chunks
share about ``overlap`` tokens so a sentence cut at a boundary is whole in one of them.

- ``recursive``: split on paragraphs, then lines, sentences, words, and characters only as a
  last resort; pack the pieces up to the size.
- ``markdown``: split at headings first (never inside a code fence); every chunk keeps its
  heading path (``["Install", "From source"]``), then each section goes recursively.
- ``sentence``: pack whole sentences; a sentence longer than the size goes recursively.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tether.retrieval.types import Chunk, Document

Span = tuple[int, int]
Counter = Callable[[str], int]
Strategy = Literal["recursive", "markdown", "sentence"]

SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n")
SEPARATORS = (re.compile(r"\n\s*\n"), re.compile(r"\n"), SENTENCE_END, re.compile(r"\s+"))


class Chunking(BaseModel):
    """How an index cuts its documents; stored with the index so every run cuts alike."""

    model_config = ConfigDict(extra="forbid")

    strategy: Strategy | Literal["auto"] = "auto"  # auto: markdown for .md files, else recursive
    size: int = Field(default=200, ge=8)
    overlap: int = Field(default=30, ge=0)
    # A model id: it writes one sentence situating each chunk (tether.retrieval.enrich).
    enrich: str | None = None

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Chunking:
        if self.overlap >= self.size:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than size ({self.size})")
        return self


def chunk(document: Document, chunking: Chunking, count: Counter) -> list[Chunk]:
    """The chunks of ``document``, in order, with offsets, pages and heading paths."""
    strategy = chunking.strategy
    if strategy == "auto":
        is_markdown = document.source.lower().split("#")[0].endswith((".md", ".markdown"))
        strategy = "markdown" if is_markdown else "recursive"
    text = document.text
    sections: list[tuple[Span, list[str]]]
    if strategy == "markdown":
        sections = markdown_sections(text)
    else:  # the title heads every chunk's path: a chunk is searched with what it is part of
        sections = [((0, len(text)), [document.title] if document.title else [])]
    chunks: list[Chunk] = []
    for (start, end), headings in sections:
        if strategy == "sentence":
            spans = pack(text, sentence_spans(text, start, end), chunking, count)
        else:
            spans = pack(text, pieces(text, start, end, chunking.size, count), chunking, count)
        for a, b in spans:
            chunks.append(
                Chunk(
                    text=text[a:b],
                    start=a,
                    end=b,
                    ordinal=len(chunks),
                    page=document.page_at(a),
                    headings=headings,
                )
            )
    return chunks


def trim(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _split(text: str, start: int, end: int, separator: re.Pattern[str]) -> list[Span]:
    """``text[start:end]`` cut after each separator match (the separator stays with the
    piece before it, so the pieces tile the span)."""
    spans, at = [], start
    for match in separator.finditer(text, start, end):
        if match.end() > at:
            spans.append((at, match.end()))
            at = match.end()
    if at < end:
        spans.append((at, end))
    return spans


def pieces(
    text: str, start: int, end: int, size: int, count: Counter, level: int = 0
) -> list[Span]:
    """Spans tiling ``text[start:end]``, each within ``size`` tokens, cut at the coarsest
    separator that makes them fit."""
    if count(text[start:end]) <= size:
        return [(start, end)]
    if level >= len(SEPARATORS):
        return _hard_cut(text, start, end, size, count)
    out: list[Span] = []
    for a, b in _split(text, start, end, SEPARATORS[level]):
        out.extend(pieces(text, a, b, size, count, level + 1))
    return out


def _hard_cut(text: str, start: int, end: int, size: int, count: Counter) -> list[Span]:
    """A run with no whitespace (a URL, a hash) longer than the size: cut by characters,
    each piece found by bisection so it stays within the size."""
    out = []
    while start < end:
        low, high = start + 1, end
        while low < high:
            middle = (low + high + 1) // 2
            if count(text[start:middle]) <= size:
                low = middle
            else:
                high = middle - 1
        out.append((start, low))
        start = low
    return out


def pack(text: str, spans: list[Span], chunking: Chunking, count: Counter) -> list[Span]:
    """Consecutive spans merged into chunks of at most ``size`` tokens; each chunk after the
    first starts with the last pieces of the one before, up to ``overlap`` tokens."""
    sizes = [count(text[a:b]) for a, b in spans]
    chunks: list[Span] = []
    first = 0
    while first < len(spans):
        last, total = first, sizes[first]
        while last + 1 < len(spans) and total + sizes[last + 1] <= chunking.size:
            last += 1
            total += sizes[last]
        a, b = trim(text, spans[first][0], spans[last][1])
        if a < b:
            chunks.append((a, b))
        if last + 1 >= len(spans):
            break
        # Step back over whole pieces while they fit in the overlap; always move forward.
        back, kept = last + 1, 0
        while back - 1 > first and kept + sizes[back - 1] <= chunking.overlap:
            back -= 1
            kept += sizes[back]
        first = back
    return chunks


def sentence_spans(text: str, start: int, end: int) -> list[Span]:
    return _split(text, start, end, SENTENCE_END)


def _headings(text: str) -> Iterator[tuple[int, int, str]]:
    """(offset, level, title) of each ATX or setext heading, through markdown-it, so a ``#``
    line inside a code fence is not taken for one."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(text)
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    for at, token in enumerate(tokens):
        if token.type == "heading_open" and token.map is not None:
            title = tokens[at + 1].content.strip() if at + 1 < len(tokens) else ""
            yield line_starts[token.map[0]], int(token.tag[1:]), title


def markdown_sections(text: str) -> list[tuple[Span, list[str]]]:
    """The spans between headings, each with the heading path above it (its own heading
    included, and kept in the text so the chunk reads as it does in the file)."""
    sections: list[tuple[Span, list[str]]] = []
    path: list[tuple[int, str]] = []
    at = 0
    for offset, level, title in _headings(text):
        if offset > at:
            sections.append(((at, offset), [t for _, t in path]))
        path = [(lv, t) for lv, t in path if lv < level] + [(level, title)]
        at = offset
    if at < len(text):
        sections.append(((at, len(text)), [t for _, t in path]))
    return sections
