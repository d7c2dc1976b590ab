"""Ingestion end to end (incremental, bad files, a crash mid-run) and checked answers."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import tether
from tether.retrieval import Grounding
from tether.testing import ScriptedModel


def folder(root: Path, count: int = 3) -> Path:
    docs = root / "docs"
    docs.mkdir(exist_ok=True)
    for i in range(count):
        (docs / f"note{i}.txt").write_text(f"Note {i} says the number {i} is lucky for team {i}.")
    return docs


def test_ingest_is_incremental(project: Path) -> None:
    docs = folder(project)
    index = tether.index("docs")
    first = index.ingest(docs)
    assert (first.documents_added, first.files_seen) == (3, 3)
    again = index.ingest(docs)
    assert again.files_skipped == 3 and again.documents_written == 0
    (docs / "note1.txt").write_text("Note one now talks about penguins.")
    (docs / "note2.txt").unlink()
    third = index.ingest(docs)
    assert (third.documents_replaced, third.documents_removed) == (1, 1)
    assert index.stats()["documents"] == 2
    assert index.search("penguins", mode="lexical")[0].source.endswith("note1.txt")


def test_bad_files_are_reported_and_the_rest_goes_on(project: Path) -> None:
    docs = folder(project, 1)
    (docs / "empty.txt").write_bytes(b"")
    (docs / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (docs / "big.txt").write_text("word " * 5000)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (docs / "rows.jsonl").write_text('{"text": "a good row"}\n{not json\n')
    report = tether.index("docs").ingest(docs, max_bytes=10_000)
    assert report.documents_added == 2  # note0 and the good row
    assert set(map(lambda p: Path(p).name, report.failed)) == {
        "empty.txt",
        "binary.txt",
        "big.txt",
        "broken.pdf",
    }
    assert "max_bytes" in report.failed[str(docs / "big.txt")]
    assert any("line 2" in problem for problem in report.problems)


def test_a_file_changing_while_read_is_stored_as_read_and_picked_up_later(
    project: Path, monkeypatch: object
) -> None:
    docs = folder(project, 1)
    path = docs / "note0.txt"
    index = tether.index("docs")
    original = Path.read_bytes

    def read_then_change(self: Path) -> bytes:
        data = original(self)
        if self == path:
            self.write_text("Changed while being read: walruses.")
            os.utime(self, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
        return data

    import pytest

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "read_bytes", read_then_change)
        report = index.ingest(docs)
    assert report.changed_while_read == [str(path)]
    assert index.search("lucky", mode="lexical")  # what was read
    later = index.ingest(docs)
    assert later.documents_replaced == 1
    assert index.search("walruses", mode="lexical")


INGEST = """
import sys, tether
tether.index("docs").ingest(sys.argv[1])
"""


def test_sigkill_mid_ingest_then_a_rerun_loses_and_duplicates_nothing(project: Path) -> None:
    docs = folder(project, 300)
    env = {**os.environ, "TETHER_HOME": str(project / ".tether")}
    process = subprocess.Popen([sys.executable, "-c", INGEST, str(docs)], env=env)
    db_path = project / ".tether" / "tether.db"
    deadline = time.monotonic() + 120
    written = 0
    while time.monotonic() < deadline and process.poll() is None:
        if db_path.exists():
            try:
                with sqlite3.connect(db_path, timeout=1) as db:
                    (written,) = db.execute("SELECT count(*) FROM rag_documents").fetchone()
            except sqlite3.OperationalError:
                written = 0
            if 0 < written < 300:
                break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 0 < written < 300, "the ingest should have been killed half-way"
    report = tether.index("docs").ingest(docs)
    db = sqlite3.connect(db_path)
    (documents, sources) = db.execute(
        "SELECT count(*), count(DISTINCT source) FROM rag_documents"
    ).fetchone()
    assert documents == sources == 300
    chunks_per_doc = db.execute("SELECT count(*) FROM rag_chunks GROUP BY doc_id").fetchall()
    assert len(chunks_per_doc) == 300 and all(n == 1 for (n,) in chunks_per_doc)
    (fts,) = db.execute("SELECT count(*) FROM rag_fts_1").fetchone()
    assert fts == 300
    assert 0 < report.documents_added <= 300 - written  # more may land before the kill


def test_ask_keeps_supported_sentences_and_drops_the_rest(project: Path) -> None:
    docs = folder(project, 3)
    index = tether.index("docs")
    index.ingest(docs)
    model = ScriptedModel(
        "Note 1 says the number 1 is lucky for team 1 [1]. The moon is made of cheese [1]."
    )
    answer = tether.ask("Which number is lucky for team 1?", index=index, model=model)
    assert not answer.abstained
    assert [s.supported for s in answer.sentences] == [True, False]
    assert "cheese" not in answer.text and "lucky" in answer.text
    citation = answer.citations[0]
    text = index.store.document_text(index.info, citation.source)
    assert text is not None and text[citation.start : citation.end] == citation.quote
    flagged = tether.ask(
        "Which number is lucky for team 1?",
        index=index,
        model=ScriptedModel("The moon is made of cheese."),
        grounding=Grounding(unsupported="flag"),
    )
    assert flagged.abstained  # nothing supported: the documents do not say


def test_ask_abstains_on_weak_evidence_without_calling_the_model(project: Path) -> None:
    docs = folder(project, 2)
    index = tether.index("docs")
    index.ingest(docs)
    model = ScriptedModel()  # an empty script: any call would fail
    answer = tether.ask(
        "What is the boiling point of tungsten?",
        index=index,
        model=model,
        grounding=Grounding(min_relevance=0.9),
    )
    assert answer.abstained and "min_relevance" in (answer.reason or "")
    assert answer.text == "The documents do not say."


def tea(project: Path) -> tether.Index:
    notes = project / "notes"
    notes.mkdir()
    (notes / "tea.md").write_text(
        "# Tea\n\nGreen tea is steeped at 80 degrees for two minutes.\n\n"
        "## Black tea\n\nBlack tea is steeped at 95 degrees for four minutes.\n"
    )
    index = tether.index("notes")
    index.ingest(notes)
    return index


def test_a_sentence_with_a_figure_no_source_holds_is_unsupported(project: Path) -> None:
    index = tea(project)
    made_up = ScriptedModel(
        "Black tea is steeped at 95 degrees for ten minutes [1]. "
        "Black tea is steeped at 95 degrees for 4 minutes [1]."
    )
    answer = tether.ask("How long is black tea steeped?", index=index, model=made_up)
    # "ten" is in no source, though every other word is; "4" is "four" written out.
    assert [s.supported for s in answer.sentences] == [False, True]
    assert "ten minutes" not in answer.text and "4 minutes" in answer.text
    unchecked = tether.ask(
        "How long is black tea steeped?",
        index=index,
        model=ScriptedModel("Black tea is steeped at 95 degrees for ten minutes [1]."),
        grounding=Grounding(check_numbers=False),
    )
    assert unchecked.sentences[0].supported  # the words alone would have let it through


def test_a_sentence_that_only_repeats_a_source_label_is_left_out(project: Path) -> None:
    index = tea(project)
    echo = ScriptedModel("(Tea) [1]. ## Black tea [2]. Green tea is steeped at 80 degrees [1].")
    answer = tether.ask("At what temperature is green tea steeped?", index=index, model=echo)
    assert [s.text for s in answer.sentences] == ["Green tea is steeped at 80 degrees."]


def test_similar_meaning_without_shared_words_is_not_support(project: Path) -> None:
    index = tea(project)
    vague = ScriptedModel("Each kind of leaf needs its own brewing routine [1].")
    # Any similarity would do here, yet the sentence shares none of its words with a source.
    strict = tether.ask(
        "How is tea brewed?", index=index, model=vague, grounding=Grounding(min_semantic=0.0)
    )
    assert strict.abstained and not strict.sentences[0].supported
    loose = tether.ask(
        "How is tea brewed?",
        index=index,
        model=ScriptedModel("Each kind of leaf needs its own brewing routine [1]."),
        grounding=Grounding(min_semantic=0.0, min_overlap=0.0),
    )
    assert not loose.abstained  # with the overlap floor off too, it passes


def test_a_sentence_that_repeats_the_question_is_left_out_and_dots_in_words_split_nothing(
    project: Path,
) -> None:
    index = tea(project)
    echo = ScriptedModel(
        "Question: At what temperature is green tea steeped? [1] "
        "Green tea is steeped at 80 degrees in a tether.glass pot [1]."
    )
    answer = tether.ask("At what temperature is green tea steeped?", index=index, model=echo)
    assert [s.text for s in answer.sentences] == [
        "Green tea is steeped at 80 degrees in a tether.glass pot."
    ]


def test_the_ask_span_reports_its_thresholds_and_counts(project: Path) -> None:
    import json

    from tether.tracing.setup import flush

    index = tea(project)
    model = ScriptedModel("Green tea is steeped at 80 degrees [1]. It costs 7 dollars [1].")
    tether.ask("At what temperature is green tea steeped?", index=index, model=model,
               grounding=Grounding(min_overlap=0.25))  # fmt: skip
    assert flush()
    db = sqlite3.connect(project / ".tether" / "tether.db")
    (attributes,) = db.execute(
        "SELECT attributes FROM spans WHERE name = 'ask notes' ORDER BY start_ns DESC"
    ).fetchone()
    data = json.loads(attributes)
    assert data["tether.answer.min_overlap"] == 0.25
    assert data["tether.answer.check_numbers"] is True
    assert data["tether.answer.min_relevance"] == 0.35
    assert (data["tether.answer.supported"], data["tether.answer.unsupported"]) == (1, 1)
    assert data["tether.answer.abstained"] is False


def test_the_rendered_mark_names_the_chunk_cited_when_a_document_has_several(
    project: Path,
) -> None:
    index = tether.index("birds", chunking={"size": 24, "overlap": 0, "strategy": "sentence"})
    index.add(
        [
            tether.Document(
                source="birds.txt",
                text="Penguins live in Antarctica and eat krill every single day of the year. "
                "Penguins cannot fly but they swim very fast through the cold water.",
            )
        ]
    )
    question = "Where do penguins live and what do they eat?"
    hits = index.search(question, k=5)
    assert [h.source for h in hits] == ["birds.txt", "birds.txt"]
    assert hits[0].start < hits[1].start  # the earlier chunk first, the one a mark once named
    second = next(n for n, h in enumerate(hits, start=1) if "swim" in h.text)
    model = ScriptedModel(f"Penguins swim very fast through the cold water [{second}].")
    answer = tether.ask(question, index=index, model=model)
    assert answer.text == f"Penguins swim very fast through the cold water. [{second}]"
