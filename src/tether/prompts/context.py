"""Context assembly: the messages for one call, built from parts with priorities under a budget.

A call's context is more than fits: retrieved passages, a long history, few-shot examples.
``Context`` keeps what matters most and records what it dropped or cut, so the trace says why
an answer missed something. Must-keep parts (priority 100: the system text and the question)
are never cut; when they alone exceed the budget, ``ContextTooLong`` is raised before any call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from tether.config import load_settings
from tether.errors import ConfigError, ContextTooLong
from tether.models.base import build_request
from tether.prompts._fit import MUST_KEEP, Item, Kind, Removed, chunk_text, fit
from tether.prompts.tokens import Counter, count_messages, counter_for, overhead_of
from tether.types import Message, Request

Text = str | bytes
DEFAULT_RESERVE = 512


@dataclass
class Assembly:
    """What ``Context.build`` kept: the messages, their token count and what was removed."""

    messages: list[Message]
    tokens: int
    budget: int
    dropped: list[Removed] = field(default_factory=list)
    truncated: list[Removed] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    def metadata(self) -> dict[str, str]:
        """Short strings for the span: what was dropped, cut and repaired, and the totals."""
        meta = {"context.tokens": str(self.tokens), "context.budget": str(self.budget)}
        for key, records in (("dropped", self.dropped), ("truncated", self.truncated)):
            if records:
                meta[f"context.{key}"] = ",".join(str(r) for r in records)
        if self.repaired:
            meta["context.repaired"] = ",".join(self.repaired)
        return meta

    def request(self, **params: Any) -> Request:
        """A Request for these messages whose metadata records the assembly on the span."""
        metadata = {**self.metadata(), **params.pop("metadata", {})}
        return build_request(self.messages, metadata=metadata, **params)


def context_window(model_id: str) -> int:
    """The model's context window: the loaded n_ctx for local models, else the declared one."""
    from tether.models.local import LocalProvider
    from tether.models.registry import build_provider

    provider = build_provider(model_id, load_settings())
    if isinstance(provider, LocalProvider):
        return provider.n_ctx
    window = provider.capabilities().context_window
    if window is None:
        raise ConfigError(
            f"{model_id} does not declare its context window; pass Context(budget=...)"
        )
    return window


class Context:
    """Collects the parts of a call's context; ``build()`` fits them into the budget.

    ``budget`` is the prompt's token budget; by default the model's context window minus
    ``reserve``, the tokens kept free for the answer (set it to the call's max_tokens).
    When over budget, whole parts go first from the lowest priority up (history oldest first,
    chunks lowest-ranked first, examples last first); the last chunk standing is cut to fit.
    """

    def __init__(
        self,
        budget: int | None = None,
        *,
        model: str | None = None,
        reserve: int = DEFAULT_RESERVE,
        counter: Counter | None = None,
    ) -> None:
        self.model_id = model or load_settings().default_model
        self.counter = counter or counter_for(self.model_id)
        self._budget = budget
        self.reserve = reserve
        self._items: list[Item] = []
        self.repaired: list[str] = []

    @property
    def budget(self) -> int:
        if self._budget is None:
            self._budget = context_window(self.model_id) - self.reserve
        return self._budget

    def _decode(self, value: Text, kind: Kind, index: int) -> str:
        """Text as given; bytes that are not UTF-8 are repaired (U+FFFD) and recorded."""
        if isinstance(value, str):
            return value
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            self.repaired.append(f"{kind}:{index}")
            return value.decode("utf-8", errors="replace")

    def _add(self, kind: Kind, priority: int, texts: Sequence[Text]) -> Context:
        start = sum(1 for item in self._items if item.kind == kind)
        for offset, value in enumerate(texts):
            text = self._decode(value, kind, start + offset)
            self._items.append(Item(kind, start + offset, priority, text))
        return self

    def system(self, text: Text, priority: int = MUST_KEEP) -> Context:
        return self._add("system", priority, [text])

    def instructions(self, text: Text, priority: int = 90) -> Context:
        """Standing instructions, folded into the system message."""
        return self._add("instructions", priority, [text])

    def examples(self, pairs: Sequence[tuple[Text, Text]], priority: int = 50) -> Context:
        """Few-shot (input, output) pairs, sent as user/assistant turns."""
        start = sum(1 for item in self._items if item.kind == "example")
        for offset, (question, answer) in enumerate(pairs):
            index = start + offset
            item = Item("example", index, priority, self._decode(question, "example", index))
            item.answer = self._decode(answer, "example", index)
            self._items.append(item)
        return self

    def chunks(self, passages: Sequence[Text], priority: int = 40) -> Context:
        """Retrieved passages, best first; the lowest-ranked are dropped first."""
        return self._add("chunk", priority, passages)

    def history(self, messages: Sequence[Message], priority: int = 30) -> Context:
        """Earlier turns, oldest first; the oldest are dropped first."""
        start = sum(1 for item in self._items if item.kind == "history")
        for offset, message in enumerate(messages):
            item = Item("history", start + offset, priority, message.text, message=message)
            self._items.append(item)
        return self

    def question(self, text: Text, priority: int = MUST_KEEP) -> Context:
        return self._add("question", priority, [text])

    def build(self) -> Assembly:
        """Fit the parts into the budget; raises ContextTooLong if the must-keep parts do not."""
        slack = 0
        # Parts are costed one by one; joined into messages they can differ by a token or two
        # at the seams, so the assembled count is checked and the fit redone with that slack.
        for _ in range(3):
            items = [Item(**vars(item)) for item in self._items]
            for item in items:
                item.tokens = _cost(item, self.counter)
            too_long = partial(self._too_long, slack=slack)
            kept, dropped, truncated = fit(items, self.budget - slack, self.counter, too_long)
            messages = _messages(kept)
            tokens = count_messages(messages, self.counter)
            if tokens <= self.budget:
                break
            slack += tokens - self.budget
        else:
            raise ContextTooLong(
                f"the assembled context still needs {tokens} tokens, {tokens - self.budget} "
                f"over the budget of {self.budget}; shorten the must-keep parts",
                model=self.model_id,
            )
        return Assembly(
            messages=messages,
            tokens=tokens,
            budget=self.budget,
            dropped=dropped,
            truncated=truncated,
            repaired=list(self.repaired),
        )

    def _too_long(self, needed: int, slack: int = 0) -> ContextTooLong:
        needed += slack  # tokens the seams between parts add, found on an earlier try
        return ContextTooLong(
            f"the must-keep parts (system, question) alone need {needed} tokens, "
            f"{needed - self.budget} over the budget of {self.budget}; shorten them, lower "
            "the output reserve, or use a model with a longer context window",
            model=self.model_id,
        )


def _cost(item: Item, counter: Counter) -> int:
    """An item's tokens in the assembled messages (whole-message overheads included)."""
    overhead = overhead_of(counter)
    if item.kind == "example":
        return counter.count(item.text) + counter.count(item.answer) + 2 * overhead
    if item.kind == "history":
        return counter.count(item.text) + overhead
    if item.kind == "chunk":
        return counter.count(chunk_text(item))
    return counter.count(item.text) + overhead  # system, instructions, question


def _messages(items: Sequence[Item]) -> list[Message]:
    """System (with instructions), examples, history, then the chunks and the question."""

    def of(kind: Kind) -> list[Item]:
        return [item for item in items if item.kind == kind]

    system = "\n\n".join(item.text for item in of("system") + of("instructions"))
    messages = [Message.system(system)] if system else []
    for example in of("example"):
        messages += [Message.user(example.text), Message.assistant(example.answer)]
    messages += [item.message for item in of("history") if item.message is not None]
    chunks = "".join(chunk_text(item) for item in of("chunk"))
    question = "\n\n".join(item.text for item in of("question"))
    final = f"Context:\n{chunks}{question}" if chunks else question
    if final:
        messages.append(Message.user(final))
    return messages
