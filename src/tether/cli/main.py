"""The ``tether`` command: one Typer app, one module per command group.

A TetherError is the user's to fix (a missing key, an unknown model, a misspelt option), so
it ends the command with its one-line message and exit code 1, never a traceback. Any other
exception is a bug in tether and keeps its traceback.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from tether.cli import chat, demo, evals, index, init, logs, models, prompt, run
from tether.cli.common import PairOptions, err
from tether.errors import TetherError


class Commands(TyperGroup):
    """Turns a TetherError raised by any command into a red one-line message and exit 1."""

    def invoke(self, ctx: Any) -> Any:  # a Context; Typer types it with a private class
        try:
            return super().invoke(ctx)
        except TetherError as exc:
            err.print(f"error: {exc}", style="red", markup=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted", style="dim")
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=Commands,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals can hold API keys; a traceback must not
    help="tether: models, traces and tools for AI engineering, offline by default.",
)
app.command("run", cls=PairOptions)(run.run)
app.command("chat", cls=PairOptions)(chat.chat)
app.command("models")(models.models)
app.command("logs")(logs.logs)
app.command("init")(init.init)
app.command("demo")(demo.demo)
app.add_typer(prompt.app, name="prompt")
app.add_typer(index.app, name="index")
app.add_typer(evals.app, name="eval")


def main() -> None:
    """The console script ``tether``."""
    app()


if __name__ == "__main__":
    main()
