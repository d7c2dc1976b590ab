"""Rendering prompt templates: Jinja2 in its sandbox, variables checked before rendering.

Prompt files may come from anyone who can edit the repository, so templates render in
Jinja2's ``SandboxedEnvironment`` (no reaching Python internals) with ``StrictUndefined``
(a typo is an error, never an empty string). Every failure is a PromptError that names the
file and, where there is one, the line in the .prompt.md file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.errors import PromptError

if TYPE_CHECKING:
    from jinja2 import Template
    from jinja2.sandbox import SandboxedEnvironment

TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "float": (int, float),  # an int is a fine float; a bool is neither (checked below)
    "bool": bool,
    "list": list,
    "dict": dict,
}


@dataclass(frozen=True)
class Input:
    """One declared template variable. ``type`` None accepts any value."""

    name: str
    type: str | None = "str"
    required: bool = True
    default: Any = None

    def accepts(self, value: Any) -> bool:
        if self.type is None:
            return True
        if isinstance(value, bool) and self.type != "bool":
            return False  # bool is an int subclass in Python, never in a prompt
        return isinstance(value, TYPES[self.type])


@cache
def environment() -> SandboxedEnvironment:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
    )


def compile_section(source: str, path: Path, first_line: int) -> Template:
    """Compile one section whose text starts at ``first_line`` of the file."""
    from jinja2 import TemplateSyntaxError

    try:
        return environment().from_string(source)
    except TemplateSyntaxError as exc:
        line = first_line + (exc.lineno or 1) - 1
        raise PromptError(
            f"{path}:{line}: template syntax error: {exc.message}; fix the template"
        ) from exc


def variables(source: str) -> set[str]:
    """The names a template reads from its caller (loop variables and globals excluded)."""
    from jinja2 import meta

    env = environment()
    return meta.find_undeclared_variables(env.parse(source)) - set(env.globals)


def check_inputs(inputs: dict[str, Input], given: dict[str, Any], path: Path) -> dict[str, Any]:
    """The variables to render with: defaults filled in, every value checked."""
    unknown = sorted(set(given) - set(inputs))
    if unknown:
        raise PromptError(
            f"{path}: unknown variable {unknown[0]!r}; this prompt takes: "
            f"{', '.join(inputs) or 'no variables'}"
        )
    values: dict[str, Any] = {}
    for name, spec in inputs.items():
        if name not in given:
            if spec.required:
                raise PromptError(
                    f"{path}: missing required variable {name!r} ({spec.type or 'any'}); "
                    f"pass {name}=..."
                )
            values[name] = spec.default
            continue
        value = given[name]
        if not spec.accepts(value):
            raise PromptError(
                f"{path}: variable {name!r} must be {spec.type}, "
                f"got {type(value).__name__} {value!r}"
            )
        values[name] = value
    return values


def render(template: Template, values: dict[str, Any], path: Path) -> str:
    """Render in the sandbox; unsafe access and undefined names become PromptErrors."""
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError, UndefinedError

    try:
        return template.render(values).strip()
    except SecurityError as exc:
        raise PromptError(
            f"{path}: the template tried an unsafe operation ({exc}); templates may only "
            "read their variables"
        ) from exc
    except UndefinedError as exc:
        raise PromptError(f"{path}: {exc.message}; declare it under input") from exc
    except TemplateError as exc:
        raise PromptError(f"{path}: the template failed to render: {exc}") from exc
