"""CSV, JSON and JSONL: one document per row, object or line, its source ``path#id``.

A row that cannot become a document (a malformed JSONL line, no text, a missing or repeated
id) is skipped and reported as a problem naming its line or row; the file fails only when no
row at all becomes a document. Which field is the text, the title and the id:

* CSV: ``text_field`` (else every column, as ``column: value`` lines), ``title_field``
  (else none), ``id_field`` (else the row's number from 1). Each named column must exist.
* JSON and JSONL: ``text_field`` (else the first of ``text``, ``content``, ``body``,
  ``abstract`` in the first object), ``title_field`` (else ``title`` when present),
  ``id_field`` (else ``_id`` or ``id`` when present, else the line or item number).

Metadata is every other field of the row (the id included), CSV values as strings and JSON's
scalar values only.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.errors import DocumentError
from tether.retrieval.loaders.common import Fields, empty
from tether.retrieval.loaders.text import decode
from tether.retrieval.types import Document

Loaded = tuple[list[Document], list[str]]
TEXT_FIELDS = ("text", "content", "body", "abstract")
ID_FIELDS = ("_id", "id")
_SNIFF_BYTES = 4096
_SCALARS = (str, int, float, bool)


@dataclass
class _Rows:
    """Turns rows into documents, collecting the problems of the rows it skips."""

    path: Path
    text: Callable[[dict[str, Any]], str]
    text_name: str  # how a problem names the text: "field 'text'", "every column"
    used: frozenset[str]  # fields that are not metadata
    title: str | None
    id: str | None
    documents: list[Document] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)

    def add(self, where: str, number: int, row: dict[str, Any]) -> None:
        label = f"{self.path} {where}"
        ident = row.get(self.id) if self.id else number
        if ident is None or isinstance(ident, dict | list) or not str(ident).strip():
            self.problems.append(f"{label}: no {self.id!r} to identify it; skipped")
            return
        source = f"{self.path}#{str(ident).strip()}"
        if source in self._seen:
            self.problems.append(f"{label}: id {ident!r} repeats an earlier row's; skipped")
            return
        text = self.text(row)
        if not text.strip():
            self.problems.append(f"{label}: {self.text_name} is missing or empty; skipped")
            return
        self._seen.add(source)
        title = row.get(self.title) if self.title else None
        if isinstance(title, _SCALARS):
            title = " ".join(str(title).split()) or None
        metadata = {k: v for k, v in row.items() if k not in self.used and isinstance(v, _SCALARS)}
        self.documents.append(
            Document(
                source=source,
                text=text,
                title=title if isinstance(title, str) else None,
                metadata=metadata,
            )
        )

    def result(self) -> Loaded:
        if self.documents:
            return self.documents, self.problems
        if self.problems:
            raise DocumentError(
                f"{self.path}: no row could be read ({len(self.problems)} skipped; the first: "
                f"{self.problems[0]})",
                source=str(self.path),
            )
        raise empty(self.path, "no rows")


def load_csv(path: Path, data: bytes, fields: Fields) -> Loaded:
    """One document per row of a CSV (or tab- or semicolon-separated) file with a header."""
    text = decode(data, str(path))
    # A long text column is the point of such a file; the default limit is 128 KiB a field.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    columns = [c for c in reader.fieldnames or [] if c]
    if not columns:
        raise empty(path, "no header row")
    for name in (fields.text, fields.title, fields.id):
        if name is not None and name not in columns:
            raise DocumentError(
                f"{path} has no column {name!r}; its columns are {', '.join(columns)}",
                source=str(path),
            )
    text_of: Callable[[dict[str, Any]], str] = _columns
    text_name = "every column"
    if fields.text:
        text_of, text_name = _field(fields.text), f"column {fields.text!r}"
    used = frozenset(name for name in (fields.text, fields.title) if name)
    rows = _Rows(path, text_of, text_name, used, fields.title, fields.id)
    try:
        for number, row in enumerate(reader, start=1):
            values = {k: v or "" for k, v in row.items() if isinstance(k, str) and k}
            if any(v.strip() for v in values.values()):  # an empty row is no problem
                rows.add(f"row {number}", number, values)
    except csv.Error as exc:
        raise DocumentError(
            f"{path} line {reader.line_num}: malformed CSV ({exc}); fix the quoting there",
            source=str(path),
        ) from exc
    return rows.result()


def _columns(row: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in row.items() if v)


def _field(name: str) -> Callable[[dict[str, Any]], str]:
    def text(row: dict[str, Any]) -> str:
        value = row.get(name)
        return str(value) if isinstance(value, _SCALARS) else ""

    return text


def _delimiter(text: str) -> str:
    sample = text[:_SNIFF_BYTES]
    if len(text) > _SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;").delimiter
    except csv.Error:
        return ","


def load_json(path: Path, data: bytes, fields: Fields) -> Loaded:
    """One document for a JSON object, or one per object of a JSON list."""
    text = decode(data, str(path))
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # one object per line, named .json
            return _lines(path, text, fields)
        raise DocumentError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "fix it there",
            source=str(path),
        ) from exc
    if isinstance(value, dict):
        rows = _json_rows(path, value, fields)
        rows.add("object", 1, value)
        documents, problems = rows.result()
        documents[0].source = str(path)  # the file's only document
        return documents, problems
    if not isinstance(value, list):
        raise DocumentError(
            f"{path} holds a JSON {type(value).__name__}; give an object or a list of objects",
            source=str(path),
        )
    items = ((f"item {n}", n, v) for n, v in enumerate(value, start=1))
    return _collect(path, items, fields, [])


def load_jsonl(path: Path, data: bytes, fields: Fields) -> Loaded:
    """One document per line of a JSON Lines file; blank lines are skipped."""
    return _lines(path, decode(data, str(path)), fields)


def _lines(path: Path, text: str, fields: Fields) -> Loaded:
    problems: list[str] = []
    parsed: list[tuple[str, int, Any]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            parsed.append((f"line {number}", number, json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(
                f"{path} line {number}: not valid JSON ({exc.msg} at column {exc.colno}); skipped"
            )
    if not parsed and problems:
        raise DocumentError(
            f"{path}: no line is valid JSON ({len(problems)} lines; the first: {problems[0]})",
            source=str(path),
        )
    return _collect(path, parsed, fields, problems)


def _collect(
    path: Path, items: Iterable[tuple[str, int, Any]], fields: Fields, problems: list[str]
) -> Loaded:
    rows: _Rows | None = None
    for where, number, value in items:
        if not isinstance(value, dict):
            problems.append(f"{path} {where}: a JSON {type(value).__name__}, not an object")
            continue
        if rows is None:  # the first object chooses the default fields
            rows = _json_rows(path, value, fields)
            rows.problems = problems
        rows.add(where, number, value)
    if rows is None:
        if problems:
            raise DocumentError(f"{path}: no JSON objects ({problems[0]})", source=str(path))
        raise empty(path, "no JSON objects")
    return rows.result()


def _json_rows(path: Path, first: dict[str, Any], fields: Fields) -> _Rows:
    text_field = fields.text or next((k for k in TEXT_FIELDS if k in first), None)
    if text_field is None:
        keys = ", ".join(first) or "none"
        raise DocumentError(
            f"{path}: no text field in its objects (keys: {keys}); name the one holding the "
            f"text with text_field (tried {', '.join(TEXT_FIELDS)})",
            source=str(path),
        )
    title = fields.title or ("title" if "title" in first else None)
    ident = fields.id or next((k for k in ID_FIELDS if k in first), None)
    used = frozenset(name for name in (text_field, title) if name)
    return _Rows(path, _field(text_field), f"field {text_field!r}", used, title, ident)
