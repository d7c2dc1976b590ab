"""``tether demo``: the offline tour behind ``make demo``.

Six short steps on the embedded model (streaming, a forced tool call, a validated object, a
two-turn exchange, the traces they left, and a cited answer from tether's own docs/), each
announced in one line. Answers are kept short so the tour takes seconds on a laptop CPU.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from tether.cli.common import err, footer, out, print_stream
from tether.cli.logs import calls_table

DEMO_MODEL = "local:smollm2"
PARAMS = {"max_tokens": 40, "temperature": 0.0}
BRIEF = "Answer in one short sentence."
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}

DOCS_QUESTION = "What does an index remember about its embedder?"
CONTACT_TEXT = "Write to Ada Lovelace at ada@example.com about the engine."


class Contact(BaseModel):
    """Bounded strings keep a grammar-constrained answer short and always finished."""

    name: str = Field(max_length=40)
    email: str = Field(max_length=60)


def _step(number: int, what: str) -> None:
    out.print(f"\n[bold cyan]{number}.[/] [bold]{what}[/]")


def demo() -> None:
    """Tour tether offline on the embedded model: stream, tools, objects, chat, traces."""
    import tether
    from tether.config import load_settings
    from tether.tracing.query import recent_calls
    from tether.tracing.setup import flush
    from tether.types import Message

    settings = load_settings()
    model = tether.model(DEMO_MODEL, settings=settings)
    out.print(f"[bold]tether demo[/] on {model.id}: offline, no key needed")

    _step(1, "A streamed answer: text appears as the model writes it.")
    question = "In one sentence, what is the capital of France?"
    out.print(f"[dim]you>[/] {question}")
    err.print(footer(print_stream(model, question, **PARAMS)), style="dim")

    _step(2, "A forced tool call: the output is constrained to the tool's JSON schema.")
    response = model.generate(
        "What is the weather like in Paris?",
        tools=[WEATHER_TOOL],
        tool_choice="get_weather",
        **PARAMS,
    )
    for call in response.tool_calls:
        out.print(f"{call.name} called with {call.args()}")
    err.print(footer(response), style="dim")

    _step(3, "A validated object: a Pydantic model in, an instance out.")
    out.print(f"[dim]text>[/] {CONTACT_TEXT}")
    contact = tether.extract(CONTACT_TEXT, Contact, model=model, temperature=0.0)
    out.print(repr(contact))

    _step(4, "A two-turn exchange: the model sees the whole history each turn.")
    history: list[Message] = []
    for text in ("I have a cat called Tom.", "What is my cat called?"):
        history.append(Message.user(text))
        out.print(f"[dim]you>[/] {text}")
        response = print_stream(model, history, system=BRIEF, **PARAMS)
        history.append(response.message)

    _step(5, "The calls above, as traced into the project database (cost is $0 locally).")
    if not settings.tracing.enabled:
        out.print("tracing is off (TETHER_TRACING or [tracing] enabled); nothing was stored")
    else:
        flush()
        out.print(calls_table(recent_calls(settings.db_path, limit=5)))
        out.print("[dim]see them again with `tether logs`; try `tether run`, `tether chat`[/]")
    _retrieval(model, settings)


def _retrieval(model: object, settings: object) -> None:
    """Step 6: tether's own docs/ into an index, a question, a cited and checked answer."""
    from pathlib import Path

    from tether.cli.index import print_answer
    from tether.retrieval import ask, index

    _step(6, "A cited answer from documents: tether's docs/ ingested, searched, checked.")
    docs = Path(__file__).resolve().parents[3] / "docs"
    if not docs.is_dir():
        out.print("[dim]no docs/ folder beside this installation; skipped[/]")
        return
    notes = index("tether-docs", settings=settings)  # type: ignore[arg-type]
    report = notes.ingest(docs, include=["*.md"])
    out.print(f"[dim]{report.summary()}[/]")
    out.print(f"[dim]you>[/] {DOCS_QUESTION}")
    print_answer(ask(DOCS_QUESTION, index=notes, model=model, k=4))
