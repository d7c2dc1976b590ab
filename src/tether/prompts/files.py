"""Prompt files: ``prompts/NAME.prompt.md``, YAML front matter and a sectioned template.

Parsing checks everything it can up front (front matter keys, params, input types, template
syntax, variables the template reads but does not declare), so a broken prompt fails when it
is loaded, naming the file and line, never half-way through a model call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.errors import PromptError
from tether.prompts.template import TYPES, Input, compile_section, variables
from tether.types import Params, check_params

if TYPE_CHECKING:
    from jinja2 import Template

SUFFIX = ".prompt.md"
HEADING = re.compile(r"^#\s*(system|user|assistant)\s*$")
KEYS = ("model", "params", "input", "output", "examples")


@dataclass(frozen=True)
class Section:
    """One ``# role`` section: its template and the file line its text starts on."""

    role: str
    source: str
    first_line: int
    template: Template


@dataclass(frozen=True)
class Example:
    """A few-shot example: variables for the user template, and the answer to show."""

    input: dict[str, Any]
    output: str


@dataclass(frozen=True)
class Parsed:
    """Everything a prompt file declares, checked."""

    model: str | None
    params: Params
    inputs: dict[str, Input]
    output: str | None
    examples: list[Example]
    sections: list[Section]


def split_front_matter(text: str, path: Path) -> tuple[dict[str, Any], str, int]:
    """(front matter, body, file line the body starts on)."""
    import yaml

    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return {}, text, 1
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        raise PromptError(f"{path}:1: front matter opens with '---' but no '---' line closes it")
    try:
        data = yaml.safe_load("".join(lines[1:end]))
    except yaml.YAMLError as exc:
        # PyYAML counts lines within the front matter; report the line in the file instead.
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detail = f"{problem} ({context})" if context else problem
        raise PromptError(
            f"{path}{line}: front matter is not valid YAML: {detail}; fix the YAML between "
            "the '---' lines"
        ) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PromptError(f"{path}: front matter must be a mapping of keys ({', '.join(KEYS)})")
    return data, "".join(lines[end + 1 :]), end + 2


def split_sections(body: str, first_line: int, path: Path) -> list[tuple[str, str, int]]:
    """(role, source, first line) per ``# role`` heading; no heading: one user section."""
    sections: list[tuple[str, list[str], int]] = []
    preamble: list[str] = []
    for number, line in enumerate(body.splitlines(keepends=True), start=first_line):
        if heading := HEADING.match(line.strip()):
            sections.append((heading.group(1), [], number + 1))
        elif sections:
            sections[-1][1].append(line)
        else:
            preamble.append(line)
    if not sections:
        return [("user", body, first_line)]
    if "".join(preamble).strip():
        raise PromptError(
            f"{path}:{first_line}: text before the first section heading; start the body "
            "with '# system', '# user' or '# assistant'"
        )
    return [(role, "".join(lines), start) for role, lines, start in sections]


def parse_params(raw: Any, path: Path, line: int | None = None) -> Params:
    """The front matter's params, checked as every caller's are; ``line`` is where they are
    set in the file."""
    where = f"{path}:{line}" if line else str(path)
    if raw is None:
        return Params()
    if not isinstance(raw, dict):
        raise PromptError(f"{where}: params must be a mapping, e.g. {{max_tokens: 200}}")
    return check_params(raw, source=f"{where}: params", error=PromptError)


def key_line(text: str, key: str) -> int | None:
    """The file line that sets ``key`` at the top of the front matter, if any."""
    top = re.compile(rf"{re.escape(key)}\s*:")
    return next((n for n, line in enumerate(text.splitlines(), 1) if top.match(line)), None)


def parse_inputs(raw: Any, path: Path) -> dict[str, Input]:
    if not isinstance(raw, dict):
        raise PromptError(f"{path}: input must map variable names to types, e.g. {{text: str}}")
    inputs: dict[str, Input] = {}
    for name, spec in raw.items():
        if isinstance(spec, str):
            spec = {"type": spec}
        if not isinstance(spec, dict) or set(spec) - {"type", "required", "default"}:
            raise PromptError(
                f"{path}: input {name!r} must be a type name or {{type, required, default}}"
            )
        kind = spec.get("type", "str")
        if kind not in TYPES:
            raise PromptError(
                f"{path}: input {name!r} has unknown type {kind!r}; types: {', '.join(TYPES)}"
            )
        required = bool(spec.get("required", "default" not in spec))
        inputs[str(name)] = Input(str(name), kind, required, spec.get("default"))
    return inputs


def parse_examples(raw: Any, path: Path) -> list[Example]:
    if raw is None:
        return []
    shape = "a list of {input: {...}, output: text}"
    if not isinstance(raw, list):
        raise PromptError(f"{path}: examples must be {shape}")
    examples = []
    for number, item in enumerate(raw, start=1):
        if not (
            isinstance(item, dict)
            and isinstance(item.get("input", {}), dict)
            and isinstance(item.get("output"), str)
        ):
            raise PromptError(f"{path}: example {number} is not {shape}")
        examples.append(Example(dict(item.get("input", {})), item["output"]))
    return examples


def _optional_str(data: dict[str, Any], key: str, path: Path) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise PromptError(f"{path}: {key} must be a string, not {type(value).__name__}")
    return value


def parse(text: str, path: Path) -> Parsed:
    """Check a prompt file's text completely; raise PromptError naming file and line."""
    data, body, body_line = split_front_matter(text, path)
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise PromptError(
            f"{path}: unknown front matter key {unknown[0]!r}; valid: {', '.join(KEYS)}"
        )
    sections = [
        Section(role, source, start, compile_section(source, path, start))
        for role, source, start in split_sections(body, body_line, path)
    ]
    used = set().union(*(variables(s.source) for s in sections))
    if "input" in data:
        inputs = parse_inputs(data["input"], path)
        undeclared = sorted(used - set(inputs))
        if undeclared:
            raise PromptError(
                f"{path}: the template uses {undeclared[0]!r}, which is not declared under "
                f"input; declared: {', '.join(inputs) or 'nothing'}"
            )
    else:  # no declaration: every variable the template reads is required, of any type
        inputs = {name: Input(name, None) for name in sorted(used)}
    examples = parse_examples(data.get("examples"), path)
    if examples and not any(s.role == "user" for s in sections):
        raise PromptError(f"{path}: examples need a '# user' section to render their input")
    return Parsed(
        model=_optional_str(data, "model", path),
        params=parse_params(data.get("params"), path, key_line(text, "params")),
        inputs=inputs,
        output=_optional_str(data, "output", path),
        examples=examples,
        sections=sections,
    )
