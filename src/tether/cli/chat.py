"""``tether chat``: a multi-turn conversation in the terminal, each answer streamed.

The history is a plain list of tether Messages, exactly what a program would pass to
``model.stream``. A provider failure mid-conversation (a timeout, a context that grew too
long) costs that turn only; a configuration error ends the chat as it would any command.
Ctrl-C during an answer stops it and keeps the question and what was shown of the answer,
so the next turn can say "go on" or "shorter"; Ctrl-C at the prompt ends the chat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether.cli.common import (
    Interrupted,
    ModelOption,
    ParamOptions,
    SystemOption,
    err,
    footer,
    out,
    parse_params,
    print_stream,
)

if TYPE_CHECKING:
    from tether.types import Message

HELP = (
    "Ctrl-C stops an answer (the history keeps what was shown of it), /reset clears the "
    "history, /exit, Ctrl-D or Ctrl-C at the prompt quits"
)


def _read_line() -> str | None:
    """The next line typed, or None at end of input or Ctrl-C."""
    try:
        return out.input("[bold green]you>[/] ")
    except (EOFError, KeyboardInterrupt):
        return None


def chat(
    model: ModelOption = None, system: SystemOption = None, option: ParamOptions = None
) -> None:
    """Talk with a model over several turns; the model sees the whole conversation."""
    import tether
    from tether.errors import OutputInvalid, ProviderError
    from tether.types import Message

    params = parse_params(option)
    chosen = tether.model(model)
    history: list[Message] = []
    err.print(f"chatting with {chosen.id}; {HELP}", style="dim")
    while True:
        line = _read_line()
        if line is None:
            out.print()  # end the prompt line that Ctrl-D or Ctrl-C left open
            break
        text = line.strip()
        if text == "/exit":
            break
        if text == "/reset":
            history.clear()
            err.print("history cleared", style="dim")
            continue
        if not text:
            continue
        history.append(Message.user(text))
        out.print("[bold blue]model>[/] ", end="")
        try:
            response = print_stream(chosen, history, system=system, **params)
        except Interrupted as stopped:
            if stopped.text.strip():
                history.append(Message.assistant(stopped.text))
            else:
                history.pop()  # nothing was shown: as if the question had not been asked
            err.print("answer stopped; Ctrl-C again quits", style="dim")
            continue
        except (ProviderError, OutputInvalid) as exc:
            history.pop()  # the turn failed: forget the question so the next one starts clean
            err.print(f"error: {exc}", style="red", markup=False, soft_wrap=True)
            continue
        history.append(response.message)
        err.print(footer(response), style="dim")
