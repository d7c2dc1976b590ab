"""``tether run``: one prompt, one answer, streamed."""

from __future__ import annotations

from typing import Annotated

import typer

from tether.cli.common import (
    JsonFlag,
    ModelOption,
    ParamOptions,
    SystemOption,
    err,
    footer,
    parse_params,
    print_stream,
    read_prompt,
    write,
)


def run(
    prompt: Annotated[str, typer.Argument(help="The prompt; '-' reads standard input.")],
    model: ModelOption = None,
    system: SystemOption = None,
    option: ParamOptions = None,
    no_stream: Annotated[
        bool, typer.Option("--no-stream", help="Wait for the whole answer.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Send one prompt to a model and print the answer as it streams."""
    import tether

    params = parse_params(option)
    text = read_prompt(prompt)
    chosen = tether.model(model)
    if as_json or no_stream:
        response = chosen.generate(text, system=system, **params)
        if as_json:
            write(response.model_dump_json(indent=2) + "\n")
            return
        write(response.text + "\n")
    else:
        response = print_stream(chosen, text, system=system, **params)
    err.print(footer(response), style="dim")
