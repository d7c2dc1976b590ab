"""``tether prompt``: list, render, run and diff the prompt files in ``prompts/``."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tether.cli.common import (
    JsonFlag,
    ModelOption,
    PairOptions,
    ParamOptions,
    err,
    footer,
    out,
    parse_pairs,
    parse_params,
    print_stream,
    write,
)
from tether.errors import PromptError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from tether.models.base import Model
    from tether.prompts import Prompt
    from tether.types import Request, Response

app = typer.Typer(no_args_is_help=True, help="Versioned prompt files: list, render, run, diff.")

NameArgument = Annotated[str, typer.Argument(help="The prompt's name: prompts/NAME.prompt.md.")]
VarOptions = Annotated[
    list[str] | None,
    typer.Option(
        "-v",
        "--var",
        metavar="KEY=VALUE",
        help="A template variable; VALUE is parsed as JSON when it parses (repeatable).",
    ),
]


def _describe(prompt: Prompt) -> dict[str, Any]:
    return {
        "name": prompt.name,
        "version": prompt.version,
        "model": prompt.model,
        "inputs": {
            name: {"type": spec.type, "required": spec.required}
            for name, spec in prompt.inputs.items()
        },
        "path": str(prompt.path),
    }


def parse_vars(pairs: list[str] | None) -> dict[str, Any]:
    """``-v key=value`` as template variables."""
    return parse_pairs(pairs, "-v")


@app.command("list")
def list_command(as_json: JsonFlag = False) -> None:
    """List the prompts with their versions, models and inputs."""
    from rich.table import Table

    from tether.prompts import list_prompts

    prompts = [_describe(p) for p in list_prompts()]
    if as_json:
        write(json.dumps(prompts, indent=2) + "\n")
        return
    table = Table("name", "version", "model", "inputs")
    for row in prompts:
        inputs = ", ".join(
            f"{name}: {spec['type'] or 'any'}{'' if spec['required'] else '?'}"
            for name, spec in row["inputs"].items()
        )
        table.add_row(row["name"], row["version"], row["model"] or "(default)", inputs)
    out.print(table)


@app.command("render")
def render_command(name: NameArgument, var: VarOptions = None, as_json: JsonFlag = False) -> None:
    """Print the messages a prompt renders to, without calling a model."""
    import tether

    messages = tether.prompt(name).render(**parse_vars(var))
    if as_json:
        write(json.dumps([m.model_dump(mode="json") for m in messages], indent=2) + "\n")
        return
    for message in messages:
        out.print(f"[bold]{message.role}[/]")
        write(message.text + "\n\n")


TextFlag = Annotated[
    bool,
    typer.Option("--text", help="Stream the answer as text even when the file names an output."),
]


@app.command("run", cls=PairOptions)
def run_command(
    name: NameArgument,
    var: VarOptions = None,
    model: ModelOption = None,
    option: ParamOptions = None,
    text: TextFlag = False,
) -> None:
    """Render a prompt and stream the model's answer; -o overrides the file's params. When the
    front matter names an `output`, print the validated object as JSON instead."""
    import tether

    prompt = tether.prompt(name)
    request = prompt.request(**parse_vars(var))
    params = parse_params(option)
    # a bad output reference fails here, before the model is built
    output = _output_model(prompt) if prompt.output and not text else None
    chosen = tether.model(model or prompt.model)
    if output is not None:
        found, response = _structured(chosen, request, output, params)
        write(found.model_dump_json(indent=2) + "\n")
    else:
        response = print_stream(chosen, request, **params)
    err.print(footer(response), style="dim")


def _output_model(prompt: Prompt) -> type[BaseModel]:
    """The file's output model, importable from the folder tether runs in (as with
    ``python -m``) or the one holding prompts/: that is where an application's modules live."""
    for folder in (str(prompt.path.parent.parent), os.getcwd()):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    return prompt.output_model()


def _structured(
    model: Model, request: Request, output: type[BaseModel], params: dict[str, Any]
) -> tuple[BaseModel, Response]:
    from tether import _sync
    from tether.structured.generate import agenerate_with_response

    return _sync.run(agenerate_with_response(model, request, output, **params))


def _text_at(ref: str) -> tuple[str, str]:
    """(label, text) for ``NAME``, ``NAME@current`` or ``NAME@VERSION``."""
    import tether
    from tether.prompts import versions

    name, _, version = ref.partition("@")
    current = tether.prompt(name)  # loading also records the file's version
    if version in ("", "current", current.version):
        return f"{name}@{current.version}", current.text
    known = versions.stored(name)
    if version not in known:
        raise PromptError(
            f"no version {version!r} of prompt {name!r}; known versions: "
            f"{', '.join(known)} (current: {current.version})"
        )
    return f"{name}@{version}", known[version]


@app.command("diff")
def diff_command(
    old: Annotated[str, typer.Argument(help="NAME@VERSION (NAME alone: the file on disk).")],
    new: Annotated[str, typer.Argument(help="NAME@VERSION (NAME alone: the file on disk).")],
) -> None:
    """Show a unified diff between two versions of a prompt."""
    import difflib

    old_label, old_text = _text_at(old)
    new_label, new_text = _text_at(new)
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        new_text.splitlines(keepends=True),
        fromfile=old_label,
        tofile=new_label,
    )
    write("".join(lines))
