"""Datasets from files and lists: fields found by name, bad rows reported by line, versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tether.errors import DatasetError
from tether.evals import Dataset, Sample, load_dataset


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_rows_find_their_fields_and_keep_the_rest_as_metadata(tmp_path: Path) -> None:
    path = write(
        tmp_path / "qa.jsonl",
        '{"id": "q1", "question": "Capital of France?", "answer": "Paris", "category": "geo"}\n'
        '{"id": "q2", "question": "2+2?", "answers": ["4", "four"], "difficulty": 1}\n',
    )
    data = load_dataset(path)
    assert data.name == "qa" and len(data) == 2 and not data.problems
    first, second = data.samples
    assert (first.id, first.input, first.expected) == ("q1", "Capital of France?", "Paris")
    assert first.metadata == {"category": "geo"}
    assert second.targets == ["4", "four"] and second.metadata == {"difficulty": 1}


def test_malformed_rows_are_reported_with_their_line_and_the_rest_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.jsonl",
        '{"input": "fine", "expected": "x"}\n'
        "{not json\n"
        "\n"
        '["a", "list"]\n'
        '{"expected": "no input here"}\n'
        '{"input": "   "}\n'
        '{"id": "7", "input": "dup one"}\n'
        '{"id": "7", "input": "dup two"}\n',
    )
    data = load_dataset(path)
    assert [s.input for s in data.samples] == ["fine", "dup one"]
    lines = [p.split(":")[1] for p in data.problems]
    assert lines == ["2", "4", "5", "6", "8"]
    assert "not JSON" in data.problems[0] and "already used" in data.problems[-1]
    assert "no input field" in data.problems[2] and "fields={'input'" in data.problems[2]
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: not JSON.*strict"):
        load_dataset(path, strict=True)


def test_csv_with_named_fields_and_a_ragged_row(tmp_path: Path) -> None:
    path = write(
        tmp_path / "routes.csv",
        'text,category,split\n"I was charged, twice",billing,test\nmy card broke,card,test,extra\n'
        "app crashes,bug,test\n",
    )
    data = load_dataset(path, fields={"input": "text", "expected": "category"})
    assert [(s.input, s.expected) for s in data.samples] == [
        ("I was charged, twice", "billing"),
        ("app crashes", "bug"),
    ]
    assert data.samples[0].metadata == {"split": "test"}
    assert data.problems == [f"{path}:3: more cells than the header's 3 columns"]


def test_several_input_fields_make_a_dict_and_a_human_label_is_kept(tmp_path: Path) -> None:
    rows = [{"context": "c", "question": "q", "expected": "a", "human_label": "good"}]
    data = Dataset.from_list(rows, fields={"input": ["context", "question"]})
    sample = data.samples[0]
    assert sample.input == {"context": "c", "question": "q"} and sample.label == "good"


def test_python_lists_of_strings_dicts_and_samples() -> None:
    data = Dataset.from_list(
        ["just an input", {"input": "x", "expected": 1}, Sample(id="s", input="y")]
    )
    assert [s.id for s in data.samples] == ["1", "2", "s"]
    assert data.samples[1].expected == 1


def test_the_version_changes_with_any_sample_and_only_then(tmp_path: Path) -> None:
    rows = [{"input": "a", "expected": "1"}, {"input": "b", "expected": "2"}]
    one, two = Dataset.from_list(rows), Dataset.from_list([dict(r) for r in rows])
    assert one.version == two.version and len(one.version) == 16
    rows[1]["expected"] = "3"
    assert Dataset.from_list(rows).version != one.version
    assert one.slice(1).version != one.version and one.slice(None) is one


def test_files_that_cannot_be_datasets_say_why(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "missing.jsonl")
    with pytest.raises(DatasetError, match=r"unknown dataset format '\.txt'"):
        load_dataset(write(tmp_path / "a.txt", "x"))
    with pytest.raises(DatasetError, match="not UTF-8"):
        (tmp_path / "latin.jsonl").write_bytes(b'{"input": "caf\xe9"}\n')
        load_dataset(tmp_path / "latin.jsonl")
    with pytest.raises(DatasetError, match=r"no readable samples: .*not JSON"):
        load_dataset(write(tmp_path / "junk.jsonl", "nope\n"))
    with pytest.raises(DatasetError, match="JSON dict, not a list"):
        load_dataset(write(tmp_path / "obj.json", json.dumps({"input": "x"})))


def test_real_calls_from_the_trace_store_become_regression_cases(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tether
    from tether.tracing.setup import flush

    model = tether.model("local:smollm2")
    model.generate("Say hi.", system="Be brief.", max_tokens=4, temperature=0.0)
    answer = model.generate("Name a colour.", max_tokens=4, temperature=0.0)
    assert flush()
    data = Dataset.from_traces()
    assert [s.input for s in data.samples] == ["Say hi.", "Name a colour."]  # oldest first
    assert data.samples[1].expected == answer.text
    assert data.samples[0].metadata["system"] == "Be brief."
    assert data.samples[0].metadata["model"] == "local:smollm2"

    monkeypatch.setenv("TETHER_TRACE_CONTENT", "off")
    tether.model("local:smollm2").generate("Unrecorded.", max_tokens=2)
    assert flush()
    again = Dataset.from_traces()
    assert len(again) == 2 and "tracing content is off" in again.problems[0]
