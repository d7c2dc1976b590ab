"""Datasets: the samples a suite runs on, read from JSONL, CSV or Python, versioned by content.

A Sample is one case: its ``input`` (text or a dict of fields), what is ``expected`` (one
answer, or a list of acceptable ones), ``metadata`` (category, difficulty: what reports break
results down by) and an optional human ``label`` (for calibrating judges). A Dataset's
``version`` is a hash of its samples, so a run records exactly what it ran on and two runs
on different versions are never compared as if they were the same.

Rows that cannot be read are skipped and listed in ``dataset.problems`` with their line
numbers (``strict=True`` raises on the first instead), so one bad line does not sink a run.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from tether.errors import DatasetError

# Fields read by name when the caller does not say which; the first one present wins.
INPUT_FIELDS = ("input", "question", "prompt", "text")
EXPECTED_FIELDS = ("expected", "target", "answer", "answers", "output", "label")
ID_FIELDS = ("id", "_id", "sample_id")


class Sample(BaseModel):
    """One case of a dataset."""

    id: str
    input: Any
    expected: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    label: Any = None  # a human's judgement of this sample, for judge calibration

    @property
    def targets(self) -> list[Any]:
        """The acceptable answers as a list (empty when nothing is expected)."""
        if self.expected is None:
            return []
        return list(self.expected) if isinstance(self.expected, list) else [self.expected]


class Dataset(BaseModel):
    name: str
    samples: list[Sample]
    problems: list[str] = Field(default_factory=list)  # rows skipped, with where they were
    source: str | None = None

    @property
    def version(self) -> str:
        """A hash of the samples: any change to any of them is a new version."""
        digest = hashlib.sha256()
        for sample in self.samples:
            digest.update(sample.model_dump_json().encode("utf-8"))
            digest.update(b"\n")
        return digest.hexdigest()[:16]

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Any:  # pydantic's own __iter__ yields fields; a dataset yields samples
        return iter(self.samples)

    def slice(self, limit: int | None) -> Dataset:
        """The first ``limit`` samples (all of them for None), a dataset of its own version."""
        if limit is None or limit >= len(self.samples):
            return self
        return self.model_copy(update={"samples": self.samples[:limit]})

    @classmethod
    def from_list(
        cls,
        rows: Iterable[Sample | Mapping[str, Any] | str],
        *,
        name: str = "dataset",
        fields: Fields | Mapping[str, Any] | None = None,
        strict: bool = False,
    ) -> Dataset:
        """Samples from Python: Sample objects, dicts (fields found by name) or bare strings
        (inputs with nothing expected)."""
        plan = fields if isinstance(fields, Fields) else Fields(**(fields or {}))
        reader = _Reader(name, plan, strict)
        for number, row in enumerate(rows, start=1):
            if isinstance(row, Sample):
                reader.samples.append(row)
            elif isinstance(row, str):
                reader.add({"input": row}, f"item {number}")
            else:
                reader.add(dict(row), f"item {number}")
        return reader.dataset(source=None)

    @classmethod
    def from_traces(
        cls,
        db_path: Path | None = None,
        *,
        model: str | None = None,
        limit: int = 100,
        name: str = "traces",
    ) -> Dataset:
        """Regression cases from real calls in the trace store: each traced chat call's
        last user message is the input and the answer it got is the expected output (its
        system prompt and model go in the metadata). Calls whose text was not stored
        (tracing content off, or cut short) are listed in ``problems``."""
        from tether.config import load_settings
        from tether.tracing.query import recent_calls

        path = db_path or load_settings().db_path
        reader = _Reader(name, Fields(), strict=False)
        calls = [
            c for c in recent_calls(path, limit=limit, model=model) if c["name"].startswith("chat ")
        ]
        for call in reversed(calls):  # oldest first, as they happened
            where = f"span {call['span_id']}"
            try:
                messages = json.loads(call["prompt"]) if call["prompt"] else None
                answer = json.loads(call["completion"]) if call["completion"] else None
            except json.JSONDecodeError:
                reader.fail(f"{where}: its text was cut short when traced (tracing max_chars)")
                continue
            if not messages or answer is None:
                reader.fail(f"{where}: no text stored (tracing content is off)")
                continue
            user = [m for m in messages if m.get("role") == "user"]
            system = [m for m in messages if m.get("role") == "system"]
            row = {
                "id": call["span_id"],
                "input": _text(user[-1]) if user else "",
                "expected": _text(answer),
                "metadata": {
                    "model": call["model"],
                    "trace_id": call["trace_id"],
                    **({"system": _text(system[0])} if system else {}),
                },
            }
            reader.add(row, where)
        return reader.dataset(source=str(path))


def _text(message: dict[str, Any]) -> str:
    """The text parts of a message as the trace store keeps it."""
    return "".join(part.get("text", "") for part in message.get("content", []))


class Fields(BaseModel):
    """Which columns of a file hold what; None means "look for the usual names"."""

    input: str | Sequence[str] | None = None  # several: the input is a dict of them
    expected: str | None = None
    id: str | None = None
    metadata: Sequence[str] | None = None  # default: every other column
    label: str | None = None


def load_dataset(
    path: str | Path,
    *,
    name: str | None = None,
    fields: Fields | Mapping[str, Any] | None = None,
    strict: bool = False,
) -> Dataset:
    """A dataset from a .jsonl/.json or .csv file; the name defaults to the file's stem."""
    path = Path(path)
    plan = fields if isinstance(fields, Fields) else Fields(**(fields or {}))
    reader = _Reader(name or path.stem, plan, strict)
    try:
        text = path.read_text("utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(
            f"{path} does not exist; give the path of a .jsonl or .csv file"
        ) from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                reader.fail(f"{path}:{number}: not JSON ({exc.msg} at column {exc.colno})")
                continue
            reader.add(row, f"{path}:{number}")
    elif suffix == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from exc
        if not isinstance(rows, list):
            raise DatasetError(f"{path} holds a JSON {type(rows).__name__}, not a list of rows")
        for number, row in enumerate(rows, start=1):
            reader.add(row, f"{path} row {number}")
    elif suffix in (".csv", ".tsv"):
        dialect = "excel-tab" if suffix == ".tsv" else "excel"
        table = csv.DictReader(text.splitlines(), dialect=dialect)
        for row in table:
            where = f"{path}:{table.line_num}"
            if None in row:  # more cells than the header names
                columns = len(row) - 1
                reader.rows += 1
                reader.fail(f"{where}: more cells than the header's {columns} columns")
                continue
            reader.add({k: v for k, v in row.items() if v is not None}, where)
    else:
        raise DatasetError(f"{path}: unknown dataset format {suffix!r}; use .jsonl, .json or .csv")
    return reader.dataset(source=str(path))


class _Reader:
    """Turns rows into samples, collecting what could not be read."""

    def __init__(self, name: str, fields: Fields, strict: bool) -> None:
        self.name = name
        self.fields = fields
        self.strict = strict
        self.samples: list[Sample] = []
        self.problems: list[str] = []
        self.rows = 0
        self._ids: set[str] = set()

    def fail(self, problem: str) -> None:
        if self.strict:
            raise DatasetError(f"{problem} (strict: fix the row, or run without --strict)")
        self.problems.append(problem)

    def add(self, row: Any, where: str) -> None:
        self.rows += 1
        if not isinstance(row, dict):
            self.fail(f"{where}: a row is an object with fields, not a {type(row).__name__}")
            return
        try:
            sample = self._sample(row, where)
        except (DatasetError, ValidationError) as exc:
            self.fail(str(exc) if isinstance(exc, DatasetError) else f"{where}: {exc}")
            return
        if sample.id in self._ids:
            self.fail(f"{where}: id {sample.id!r} is already used by an earlier row")
            return
        self._ids.add(sample.id)
        self.samples.append(sample)

    def _sample(self, row: dict[str, Any], where: str) -> Sample:
        f = self.fields
        used: set[str] = set()

        def pick(given: str | None, names: Sequence[str], what: str) -> tuple[str | None, Any]:
            if given is not None:
                if given not in row:
                    raise DatasetError(f"{where}: no field {given!r} for the {what}")
                return given, row[given]
            found = next((n for n in names if n in row), None)
            return found, (row[found] if found is not None else None)

        if isinstance(f.input, (list, tuple)):
            missing = [n for n in f.input if n not in row]
            if missing:
                raise DatasetError(f"{where}: no field {missing[0]!r} for the input")
            value: Any = {n: row[n] for n in f.input}
            used |= set(f.input)
        else:
            key, value = pick(f.input if isinstance(f.input, str) else None, INPUT_FIELDS, "input")
            if key is None:
                raise DatasetError(
                    f"{where}: no input field (looked for {', '.join(INPUT_FIELDS)}); name "
                    "it with fields={'input': 'COLUMN'}"
                )
            used.add(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise DatasetError(f"{where}: the input is empty")
        label_key = f.label or ("human_label" if "human_label" in row else None)
        expected_names = [n for n in EXPECTED_FIELDS if n != label_key]
        expected_key, expected = pick(f.expected, expected_names, "expected output")
        id_key, given_id = pick(f.id, ID_FIELDS, "id")
        for key in (expected_key, id_key, label_key):
            if key is not None:
                used.add(key)
        label = row.get(label_key) if label_key else None
        if "metadata" in row and isinstance(row["metadata"], dict) and f.metadata is None:
            metadata = dict(row["metadata"])
            used.add("metadata")
        else:
            keep = f.metadata if f.metadata is not None else [k for k in row if k not in used]
            metadata = {k: row[k] for k in keep if k in row}
        sample_id = str(given_id) if given_id not in (None, "") else str(len(self.samples) + 1)
        return Sample(id=sample_id, input=value, expected=expected, metadata=metadata, label=label)

    def dataset(self, source: str | None) -> Dataset:
        if not self.samples:
            detail = f": {self.problems[0]}" if self.problems else ""
            raise DatasetError(f"dataset {self.name!r} has no readable samples{detail}")
        return Dataset(name=self.name, samples=self.samples, problems=self.problems, source=source)
