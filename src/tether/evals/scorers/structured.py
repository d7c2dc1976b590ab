"""Scorers for structured output: is it valid against a JSON schema (or a Pydantic model),
and how many of its fields match the expected object."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from tether.evals.dataset import Sample
from tether.evals.scorers.base import Outcome, Score, Scorer
from tether.evals.scorers.match import normalize


def as_data(output: Any) -> Any:
    """The output as plain JSON data: a model dumped, a JSON string parsed."""
    if isinstance(output, BaseModel):
        return output.model_dump(mode="json")
    if isinstance(output, str):
        try:
            return json.loads(output)
        except json.JSONDecodeError:
            return output
    return output


class JsonValid(Scorer):
    """1 when the output is valid against ``schema``: a Pydantic model class, or a JSON
    schema dict (checked with the ``jsonschema`` package, in the evals extra)."""

    name = "schema_valid"

    def __init__(self, schema: type[BaseModel] | dict[str, Any]) -> None:
        self.schema = schema

    def score(self, sample: Sample, outcome: Outcome) -> Score:
        data = as_data(outcome.output)
        if isinstance(self.schema, type):
            try:
                self.schema.model_validate(data)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "(root)"
                return Score(value=0.0, explanation=f"{where}: {first['msg']}")
            return Score(value=1.0, explanation="valid")
        try:
            import jsonschema
        except ImportError as exc:  # pragma: no cover - the evals extra installs it
            raise ImportError(
                "JSON-schema validation needs jsonschema: pip install 'tether[evals]'"
            ) from exc
        errors = sorted(
            jsonschema.Draft202012Validator(self.schema).iter_errors(data), key=lambda e: e.path
        )
        if errors:
            where = ".".join(str(p) for p in errors[0].absolute_path) or "(root)"
            return Score(value=0.0, explanation=f"{where}: {errors[0].message}")
        return Score(value=1.0, explanation="valid")


class FieldMatch(Scorer):
    """The share of the expected object's fields (or of ``fields``) that the output matches,
    compared normalised (as SQuAD normalises answers) unless ``normalized=False``; each
    field's result is in the score's metadata."""

    name = "field_match"

    def __init__(self, fields: Sequence[str] | None = None, *, normalized: bool = True) -> None:
        self.fields = list(fields) if fields is not None else None
        self.normalized = normalized

    def _same(self, got: Any, wanted: Any) -> bool:
        if self.normalized and isinstance(wanted, str):
            return got is not None and normalize(str(got)) == normalize(wanted)
        if isinstance(wanted, (int, float)) and isinstance(got, (int, float, str)):
            try:
                return abs(float(got) - float(wanted)) < 1e-9
            except ValueError:
                return False
        return bool(got == wanted)

    def score(self, sample: Sample, outcome: Outcome) -> Score:
        wanted = as_data(sample.expected)
        if not isinstance(wanted, dict):
            return Score(value=0.0, explanation="the sample's expected value is not an object")
        got = as_data(outcome.output)
        got = got if isinstance(got, dict) else {}
        names = self.fields or list(wanted)
        results = {name: self._same(got.get(name), wanted.get(name)) for name in names}
        matched = sum(results.values())
        wrong = [n for n, ok in results.items() if not ok]
        explanation = f"{matched}/{len(names)} fields match" + (
            f"; wrong: {', '.join(wrong)}" if wrong else ""
        )
        return Score(
            value=matched / len(names) if names else 0.0,
            explanation=explanation,
            metadata={"fields": results},
        )

    def aggregate(self, samples: Sequence[Sample], scores: Sequence[Score]) -> dict[str, Any]:
        """Accuracy per field over the run."""
        totals: dict[str, list[bool]] = {}
        for s in scores:
            for name, ok in s.metadata.get("fields", {}).items():
                totals.setdefault(name, []).append(bool(ok))
        return {f"field_{n}": sum(v) / len(v) for n, v in totals.items() if v}
