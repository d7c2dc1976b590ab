"""Chunks fit the size, overlap, keep exact offsets and Markdown heading paths."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError

from tether.retrieval.chunking import Chunking, chunk
from tether.retrieval.types import Document, Page


def words(text: str) -> int:
    return len(text.split())


PROSE = " ".join(
    f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(120)
)


def test_every_chunk_is_its_exact_span_and_fits() -> None:
    document = Document(source="a.txt", text=PROSE)
    chunks = chunk(document, Chunking(size=50, overlap=10, strategy="recursive"), words)
    assert len(chunks) > 5
    for c in chunks:
        assert document.text[c.start : c.end] == c.text
        assert words(c.text) <= 50
        assert c.text == c.text.strip()
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    # Nothing of the text is lost: the chunks cover it from first word to last.
    assert chunks[0].start == 0 and chunks[-1].end == len(document.text)
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.end  # consecutive chunks overlap
        assert after.start > before.start  # and always move forward


def test_paragraphs_are_kept_whole_when_they_fit() -> None:
    text = "First paragraph here.\n\nSecond paragraph there.\n\nThird one."
    chunks = chunk(Document(source="p.txt", text=text), Chunking(size=25, overlap=0), len)
    assert [c.text for c in chunks] == [
        "First paragraph here.",
        "Second paragraph there.",
        "Third one.",
    ]


def test_a_run_without_spaces_is_cut_by_characters() -> None:
    text = "x" * 1000
    chunks = chunk(Document(source="h.txt", text=text), Chunking(size=10, overlap=0), len)
    assert all(len(c.text) <= 10 for c in chunks)
    assert "".join(c.text for c in chunks) == text


def test_markdown_chunks_keep_their_heading_path_and_skip_code_fences() -> None:
    text = (
        "# Guide\n\nIntro text.\n\n## Install\n\nRun pip.\n\n```sh\n# not a heading\nmake\n```\n\n"
        "### From source\n\nClone it.\n\n## Use\n\nCall it.\n"
    )
    document = Document(source="guide.md", text=text)
    chunks = chunk(document, Chunking(size=100, overlap=0), words)
    paths = {c.text.splitlines()[0]: c.headings for c in chunks}
    assert paths["# Guide"] == ["Guide"]
    assert paths["## Install"] == ["Guide", "Install"]
    assert paths["### From source"] == ["Guide", "Install", "From source"]
    assert paths["## Use"] == ["Guide", "Use"]
    install = next(c for c in chunks if c.headings == ["Guide", "Install"])
    assert "# not a heading" in install.text  # the fence stayed inside its section
    assert install.searchable.startswith("Guide > Install\n")
    for c in chunks:
        assert text[c.start : c.end] == c.text


def test_sentence_strategy_packs_whole_sentences() -> None:
    document = Document(source="s.txt", text=PROSE)
    chunks = chunk(document, Chunking(size=30, overlap=0, strategy="sentence"), words)
    for c in chunks:
        assert c.text.endswith(".") and c.text[0].isupper()


def test_chunks_know_their_page() -> None:
    text = "Page one text.\n\nPage two text."
    document = Document(
        source="d.pdf",
        text=text,
        pages=[Page(number=1, start=0, end=14), Page(number=2, start=16, end=30)],
    )
    chunks = chunk(document, Chunking(size=16, overlap=0), len)
    assert [(c.text, c.page) for c in chunks] == [("Page one text.", 1), ("Page two text.", 2)]


def test_overlap_must_be_smaller_than_size() -> None:
    with pytest.raises(ValidationError, match="overlap"):
        Chunking(size=10, overlap=10)
    with pytest.raises(ValidationError):
        Chunking(sise=10)  # type: ignore[call-arg]
