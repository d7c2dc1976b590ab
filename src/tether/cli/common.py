"""What every command shares: the console, the same flags (-m, -s, -o, --json), parameter
parsing, and how answers stream and end with a footer. Heavy imports (providers, pydantic
models) happen inside functions so ``tether --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperCommand

from tether.errors import ConfigError, Unavailable

if TYPE_CHECKING:
    from tether.models.base import Model, Prompt
    from tether.types import Response, StreamEvent

out = Console(highlight=False, emoji=False)
err = Console(stderr=True, highlight=False, emoji=False)

ModelOption = Annotated[
    str | None,
    typer.Option(
        "-m", "--model", help="Model id or alias (default: default_model in tether.toml)."
    ),
]
SystemOption = Annotated[str | None, typer.Option("-s", "--system", help="A system prompt.")]
ParamOptions = Annotated[
    # list[Any] rather than list[tuple[str, str]]: Typer cannot declare a repeatable
    # two-value option, so PairOptions sets nargs=2 and the values arrive as pairs.
    list[Any] | None,
    typer.Option(
        "-o",
        "--option",
        metavar="KEY VALUE",
        help="A generation parameter, e.g. -o temperature 0.2 -o max_tokens 50 (repeatable).",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


class PairOptions(TyperCommand):
    """A command whose ``-o`` option takes two values (KEY VALUE) each time it is given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if param.name == "option":
                param.nargs = 2


def parse_params(pairs: Iterable[tuple[str, str]] | None) -> dict[str, Any]:
    """``-o KEY VALUE`` pairs as generation parameters, checked against Params.

    Values are parsed as JSON when they parse (``0.2``, ``50``, ``["END"]``) and kept as
    strings otherwise; a misspelt key is a ConfigError naming the valid ones.
    """
    from tether.types import check_params

    params: dict[str, Any] = {}
    for key, raw in pairs or []:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if key == "stop" and isinstance(value, str):
            value = [value]  # one stop string is the common case; Params wants a list
        params[key] = value
    check_params(params, source="-o")
    return params


def parse_pairs(pairs: list[str] | None, flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` options (``-v``, ``-f``): VALUE is JSON when it parses (``3``, ``[1]``),
    else text."""
    values: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} takes KEY=VALUE, not {pair!r}")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    return values


def read_prompt(prompt: str) -> str:
    """The prompt itself, or standard input when it is ``-``."""
    if prompt != "-":
        return prompt
    text = sys.stdin.read()
    if not text.strip():
        raise ConfigError("the prompt is '-' but standard input was empty; pipe text in")
    return text


def format_cost(cost: float | None) -> str:
    if cost is None:
        return "cost unknown"
    return "$0" if cost == 0 else f"${cost:.6f}"


# Why an answer ended, where the reason is worth a look: it did not simply finish.
ENDINGS = {
    "length": "cut off by max_tokens",
    "repetition": "stopped: repeating itself",
}


def footer(response: Response) -> str:
    """One line a person can scan: which model, how many tokens, what it cost, how long,
    and why the answer ended when it was cut short."""
    usage = response.usage
    tokens = f"{usage.input_tokens} in / {usage.output_tokens} out tokens"
    if usage.estimated:
        tokens += " (estimated)"
    line = (
        f"{response.model} · {tokens} · {format_cost(response.cost_usd)} · "
        f"{response.latency_s * 1000:.0f} ms"
    )
    ending = ENDINGS.get(response.finish_reason)
    return f"{line} · {ending}" if ending else line


def write(text: str) -> None:
    """Model text goes out as is: no markup, emoji codes or wrapping from Rich."""
    sys.stdout.write(text)
    sys.stdout.flush()


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped an answer as it streamed; ``text`` is as much of it as was shown."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def print_stream(model: Model, prompt: Prompt, **kwargs: Any) -> Response:
    """Print text deltas as they arrive and return the final Response.

    Ctrl-C closes the stream, which stops the model generating, and raises Interrupted.
    """
    from tether.types import ResponseEvent, TextDelta

    response: Response | None = None
    shown: list[str] = []
    events: Iterator[StreamEvent] | None = None
    try:
        events = model.stream(prompt, **kwargs)
        for event in events:
            if isinstance(event, TextDelta):
                shown.append(event.text)
                write(event.text)
            elif isinstance(event, ResponseEvent):
                response = event.response
    except KeyboardInterrupt:
        raise Interrupted("".join(shown)) from None
    finally:
        # Now, not when collected: Ctrl-C landing in this loop's body leaves the stream open.
        if (close := getattr(events, "close", None)) is not None:
            close()
        write("\n")  # end the line even when the stream fails half-way
    if response is None:  # every stream ends with a ResponseEvent; this guards the contract
        raise Unavailable(f"{model.id} ended its stream without a response", model=model.id)
    for call in response.tool_calls:
        out.print(f"[cyan]tool call[/] {call.name}({call.arguments})")
    return response
