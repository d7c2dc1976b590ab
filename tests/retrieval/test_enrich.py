"""Contextual enrichment, on both stores: a model's situating sentence is searched with its
chunk, cached by what the model was shown, and never breaks a citation's span."""

from __future__ import annotations

import pytest

import tether
from tether.config import Settings
from tether.errors import IndexMismatch, Unavailable
from tether.retrieval import Document
from tether.retrieval.enrich import WINDOW_CHARS, document_window, prompt
from tether.retrieval.types import Chunk
from tether.testing import FunctionModel, ScriptedModel
from tether.types import Request

REPORT = Document(
    source="acme-2023.txt",
    title="ACME annual report 2023",
    text="Revenue rose three percent over the year.\n\nHeadcount stayed flat.",
)


def situating(request: Request) -> str:
    asked = request.messages[-1].text
    passage = asked.split("<passage>\n", 1)[1].split("\n</passage>", 1)[0]
    return f"From the widget maker's yearly filing, about: {passage.split()[0].lower()}.\nextra"


def test_the_sentence_is_searched_with_the_chunk_and_spans_stay_exact(settings: Settings) -> None:
    writer = FunctionModel(situating)
    index = tether.index("reports", enrich=writer, chunking={"size": 12, "overlap": 2},
                         settings=settings)  # fmt: skip
    report = index.add([REPORT])
    assert report.contexts_written == report.chunks_added >= 2
    assert "chunk contexts written" in report.summary()
    # "widget" is only in the model's sentence, never in the document.
    hits = index.search("widget maker filing", k=2, mode="lexical")
    assert hits and hits[0].source == "acme-2023.txt"
    for hit in hits:
        assert REPORT.text[hit.start : hit.end] == hit.text  # the citation is the chunk's own
        assert "widget" not in hit.text
    assert index.stats()["chunking"]["enrich"] == "function:test"


def test_sentences_are_cached_across_runs_and_indexes(settings: Settings) -> None:
    writer = FunctionModel(situating)
    first = tether.index("a", enrich=writer, settings=settings)
    first.add([REPORT])
    asked = len(writer.requests)
    assert asked >= 1
    second = tether.index("b", enrich=writer, settings=settings)
    report = second.add([REPORT])
    assert len(writer.requests) == asked  # nothing asked again
    assert report.contexts_cached == report.chunks_added and report.contexts_written == 0
    hits = second.search("widget maker", k=1, mode="lexical")
    assert hits and hits[0].source == "acme-2023.txt"


def test_a_changed_document_asks_only_for_its_new_chunks(settings: Settings) -> None:
    writer = FunctionModel(situating)
    index = tether.index("r", enrich=writer, chunking={"size": 12, "overlap": 2},
                         settings=settings)  # fmt: skip
    index.add([REPORT])
    asked = len(writer.requests)
    changed = REPORT.model_copy(update={"text": "Completely new wording about margins."})
    index.add([changed])
    assert len(writer.requests) == asked + 1  # the one new chunk


def test_another_enrich_model_on_an_existing_index_is_refused(settings: Settings) -> None:
    tether.index("r", enrich=FunctionModel(situating), settings=settings)
    with pytest.raises(IndexMismatch, match=r"enrich='function:test', not 'scripted:other'"):
        tether.index("r", enrich=ScriptedModel(id="scripted:other"), settings=settings)


def test_a_model_error_stops_the_ingest_and_nothing_half_written_stays(
    settings: Settings,
) -> None:
    first = Document(source="one.txt", text="The first document is fine.")
    second = Document(source="two.txt", text="The second one meets an outage.")
    writer = ScriptedModel("About the first document.", Unavailable("provider down"))
    index = tether.index("r", enrich=writer, settings=settings)
    with pytest.raises(Unavailable):
        index.add([first, second])
    stored = index.stats()
    # Whatever was written is whole; the failed document is not stored without its sentence.
    assert stored["documents"] <= 1
    again = tether.index("r", enrich=FunctionModel(situating, id="scripted:test"),
                         settings=settings)  # fmt: skip
    report = again.add([first, second])
    assert again.stats()["documents"] == 2
    assert report.documents_added == 2 - stored["documents"]


def test_a_long_document_is_shown_by_its_opening_and_the_chunks_surroundings() -> None:
    text = "intro " * 2000 + "NEEDLE here. " + "tail " * 2000
    document = Document(source="long.txt", text=text)
    at = text.index("NEEDLE")
    window = document_window(document, Chunk(text="NEEDLE here.", start=at, end=at + 12))
    assert len(window) <= WINDOW_CHARS + 20 and "NEEDLE" in window
    assert window.startswith("intro ")
    assert "NEEDLE here." in prompt(document, Chunk(text="NEEDLE here.", start=at, end=at + 12))


@pytest.mark.slow
def test_the_embedded_model_writes_a_sentence_per_chunk(project: object) -> None:
    settings = Settings(home=project / ".tether")  # type: ignore[operator]
    index = tether.index("reports", enrich="local:smollm2", settings=settings)
    report = index.add([REPORT])
    assert report.contexts_written == report.chunks_added == 1
    (stored,) = index.store.db.execute(  # type: ignore[attr-defined]
        "SELECT context FROM rag_chunks"
    ).fetchone()
    assert stored and len(stored) <= 400 and "\n" not in stored


def test_the_sentence_is_the_first_line_with_words_without_echoed_tags() -> None:
    from tether.retrieval.enrich import first_sentence

    assert first_sentence("<passage>\nIt covers ACME's 2023 revenue.\nMore.") == (
        "It covers ACME's 2023 revenue."
    )
    assert first_sentence("  \n</passage> --- \n") is None
    assert len(first_sentence("word " * 500) or "") == 400
