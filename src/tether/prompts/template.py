"""Rendering prompt templates: Jinja2 in its sandbox, variables checked before rendering.

Prompt files may come from anyone who can edit the repository, so templates render in a
sandbox (tether.prompts.sandbox: no reaching Python internals, no changing the caller's
data, a bound on what a render builds) with ``StrictUndefined`` (a typo is an error, never
an empty string), and a render stops as soon as its output passes ``max_chars``. Every
failure is a PromptError that names the file and, where there is one, the line in the
.prompt.md file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.config import PromptsConfig
from tether.errors import PromptError

if TYPE_CHECKING:
    from jinja2 import Template

    from tether.prompts.sandbox import BoundedSandbox

MAX_CHARS = PromptsConfig().max_chars  # the most a render may output, by default

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
def environment() -> BoundedSandbox:
    from jinja2 import StrictUndefined

    from tether.prompts.sandbox import BoundedSandbox

    return BoundedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


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


def render(
    template: Template, values: dict[str, Any], path: Path, max_chars: int = MAX_CHARS
) -> str:
    """Render in the sandbox, at most ``max_chars`` characters; unsafe access, too large a
    render and undefined names become PromptErrors."""
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError, UndefinedError

    from tether.prompts.sandbox import TooLarge, budget

    too_large = (
        f"prompts render at most {max_chars:,} characters; if this one really needs more, "
        "raise [prompts] max_chars in tether.toml"
    )
    try:
        with budget(max_chars):
            pieces, size = [], 0
            for piece in template.generate(values):
                size += len(piece)
                if size > max_chars:
                    raise PromptError(f"{path}: the rendered prompt passes the cap: {too_large}")
                pieces.append(piece)
        return "".join(pieces).strip()
    except TooLarge as exc:
        raise PromptError(
            f"{path}: the template is too large to render ({exc}); {too_large}"
        ) from exc
    except SecurityError as exc:
        raise PromptError(
            f"{path}: the template tried an unsafe operation ({exc}); templates may only "
            "read their variables"
        ) from exc
    except UndefinedError as exc:
        raise PromptError(f"{path}: {exc.message}; declare it under input") from exc
    except (TemplateError, ArithmeticError, RecursionError, TypeError, ValueError) as exc:
        raise PromptError(f"{path}: the template failed to render: {exc}") from exc
