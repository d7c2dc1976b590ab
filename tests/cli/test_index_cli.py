"""``tether index``, in-process, on the embedded embedder and model."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from tether.cli.main import app


def tether(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def notes(project: Path) -> Path:
    folder = project / "notes"
    folder.mkdir()
    (folder / "tea.md").write_text(
        "# Tea\n\nGreen tea is steeped at 80 degrees for two minutes.\n\n"
        "## Black tea\n\nBlack tea is steeped at 95 degrees for four minutes.\n"
    )
    (folder / "bread.txt").write_text("Sourdough rises because wild yeast ferments the dough.")
    (folder / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)
    return folder


def test_create_ingest_search_stats_list_and_rm(project: Path) -> None:
    folder = notes(project)
    made = tether("index", "create", "notes", "--size", "64", "--overlap", "8")
    assert made.exit_code == 0 and "created index notes (local:minilm, 384 dims)" in made.stdout

    ingested = tether("index", "ingest", "notes", str(folder))
    assert ingested.exit_code == 0, ingested.output
    assert "3 files (0 unchanged)" in ingested.stdout and "2 documents added" in ingested.stdout
    assert "blob.bin" in ingested.stderr  # the binary file is named, the rest went in
    again = tether("index", "ingest", "notes", str(folder), "--json")
    report = json.loads(again.stdout)
    assert report["files_skipped"] == 2 and report["documents_added"] == 0

    found = tether("index", "search", "notes", "black tea temperature", "-k", "1")
    assert found.exit_code == 0 and "tea.md" in found.stdout and "fused=" in found.stdout
    hits = json.loads(tether("index", "search", "notes", "yeast", "--json").stdout)
    assert hits[0]["source"].endswith("bread.txt")
    lexical = tether("index", "search", "notes", "yeast", "--mode", "lexical", "-k", "1")
    assert "bread.txt" in lexical.stdout and "lexical=" in lexical.stdout

    stats = json.loads(tether("index", "stats", "notes", "--json").stdout)
    assert stats["documents"] == 2 and stats["chunking"]["size"] == 64
    assert "notes" in tether("index", "list").stdout

    assert tether("index", "rm", "notes", "--yes").exit_code == 0
    assert "no indexes yet" in tether("index", "list").stdout


def test_search_with_an_llm_reranker_and_rewrites(project: Path) -> None:
    tether("index", "ingest", "notes", str(notes(project)))
    result = tether(
        "index", "search", "notes", "how long for black tea?", "-k", "2",
        "--rerank", "local:smollm2", "--rewrite", "local:smollm2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rerank=" in result.stdout


def test_ask_prints_a_cited_answer_or_abstains(project: Path) -> None:
    tether("index", "ingest", "notes", str(notes(project)))
    result = tether("index", "ask", "notes", "How long is black tea steeped?", "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["question"] == "How long is black tea steeped?"
    assert answer["hits"] and answer["hits"][0]["source"].endswith("tea.md")
    assert answer["abstained"] or answer["sentences"]


def test_an_unknown_index_is_a_clear_error(project: Path) -> None:
    result = tether("index", "search", "missing", "anything")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "no index named 'missing'" in result.stderr
    removed = tether("index", "rm", "missing", "--yes")
    assert removed.exit_code == 1 and "tether index list" in removed.stderr


def test_a_bad_rerank_model_is_refused_with_the_known_ones(project: Path) -> None:
    tether("index", "ingest", "notes", str(notes(project)))
    result = tether("index", "search", "notes", "tea", "--rerank", "nosuch:model")
    assert result.exit_code == 1 and "nosuch" in result.stderr
