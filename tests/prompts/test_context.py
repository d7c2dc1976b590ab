"""Context assembly: exact and estimated counts, drop order, cuts, and the record on the span."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import tether
from data_sets import DataSets
from tether.config import load_settings
from tether.errors import ContextTooLong
from tether.models.local_files import resolve_path
from tether.models.local_llama import load
from tether.models.registry import build_provider
from tether.prompts.context import Context
from tether.prompts.tokens import (
    MESSAGE_OVERHEAD,
    EstimateCounter,
    LlamaCounter,
    count_messages,
    counter_for,
)
from tether.testing import ScriptedModel
from tether.tracing.setup import flush
from tether.types import Message

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


class Words:
    """One token per word: makes budgets in these tests easy to reason about."""

    def count(self, text: str) -> int:
        return len(text.split())


def llama() -> Any:
    return load(resolve_path("smollm2"), 2048, None).llama


def words(n: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


def test_local_models_count_with_the_gguf_tokenizer_exactly() -> None:
    counter = counter_for("local:smollm2")
    assert isinstance(counter, LlamaCounter)
    model = llama()
    for text in ("Hello, world!", "Ünïcödé and 12345 digits", "  spaced\n\nlines  ", ""):
        tokens = model.tokenize(text.encode(), add_bos=False, special=False)
        assert counter.count(text) == len(tokens)
    assert isinstance(counter_for("unknown-provider:x"), EstimateCounter)


def test_message_overhead_matches_the_chat_template() -> None:
    loaded = load(resolve_path("smollm2"), 2048, None)
    counter = counter_for("local:smollm2")
    one = [{"role": "system", "content": "Be brief."}]
    two = [*one, {"role": "user", "content": "What is the capital of France?"}]
    added = loaded.count_prompt(two, None) - loaded.count_prompt(one, None)
    assert added == counter.count("What is the capital of France?") + MESSAGE_OVERHEAD
    messages = [Message.system("Be brief."), Message.user("Hi")]
    assert count_messages(messages, counter) == counter.count("Be brief.Hi") + 2 * MESSAGE_OVERHEAD


def held_out_texts(data_sets: DataSets) -> list[str]:
    """Every fifth held-out (odd-indexed) text of the calibration sets."""
    squad = json.loads(data_sets.path("squad_v2_dev_half/dev-v2.0.json").read_text())
    contexts = [p["context"] for a in squad["data"] for p in a["paragraphs"]]
    lines = data_sets.path("dialogsum/dialogsum.dev.jsonl").read_text().splitlines()
    dialogues = [json.loads(line)["dialogue"] for line in lines]
    return contexts[1::2][::5] + dialogues[1::2][::5]


def estimate_errors(texts: list[str]) -> tuple[list[float], list[float]]:
    """Relative errors of the estimate and of len(text) / 4 against the exact count."""
    exact, estimate = counter_for("local:smollm2"), EstimateCounter()
    errors, naive = [], []
    for text in texts:
        truth = exact.count(text)
        errors.append(abs(estimate.count(text) - truth) / truth)
        naive.append(abs(len(text) / 4 - truth) / truth)
    return errors, naive


def test_the_estimate_stays_within_tolerance_on_held_out_data(data_sets: DataSets) -> None:
    texts = held_out_texts(data_sets)
    assert len(texts) > 100
    errors, naive = estimate_errors(texts)
    mean = sum(errors) / len(errors)
    assert mean < 0.05  # documented: 3.0% on the whole held-out half
    assert max(errors) < 0.25
    assert mean < sum(naive) / len(naive) / 3  # far better than len/4


def test_the_estimate_stays_within_tolerance_on_the_committed_squad_sample() -> None:
    """The same held-out SQuAD paragraphs, committed (tests/fixtures), so a clone checks it."""
    lines = (FIXTURES / "squad_v2_held_out.jsonl").read_text("utf-8").splitlines()
    texts = [json.loads(line)["context"] for line in lines]
    assert len(texts) == 65
    errors, naive = estimate_errors(texts)
    mean = sum(errors) / len(errors)
    assert mean < 0.05  # documented: SQuAD 4.0% on the whole held-out half
    assert max(errors) < 0.25
    assert mean < sum(naive) / len(naive) / 3


def test_history_goes_oldest_first_then_chunks_lowest_first_then_examples() -> None:
    def assemble(budget: int) -> list[str]:
        ctx = Context(budget, model="scripted:x", counter=Words())
        ctx.system("sys").question("q")
        ctx.examples([(words(3, "ea"), "a"), (words(3, "eb"), "b")])
        ctx.chunks([words(4, "ca"), words(4, "cb"), words(4, "cc")])
        ctx.history([Message.user(words(2, "h")) for _ in range(3)])
        return [str(r) for r in ctx.build().dropped]

    full = assemble(1000)
    assert full == []
    # system 6, question 6, examples 14 each, chunks 5 each, history 7 each: 76 in all,
    # and "Context:" heads the passages. A chunk that cannot keep a word is dropped whole.
    assert assemble(63) == ["history:0", "history:1"]
    assert assemble(50) == ["history:0", "history:1", "history:2", "chunk:2", "chunk:1"]
    everything = ["history:0", "history:1", "history:2", "chunk:2", "chunk:1"]
    assert assemble(27) == [*everything, "chunk:0", "example:1"]


def test_the_assembled_messages_are_in_order() -> None:
    ctx = Context(1000, model="scripted:x", counter=Words())
    ctx.system("sys").instructions("be brief").question("why?")
    ctx.examples([("in", "out")]).chunks(["first passage", "second passage"])
    ctx.history([Message.user("earlier"), Message.assistant("reply")])
    assembly = ctx.build()
    roles = [m.role for m in assembly.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert assembly.messages[0].text == "sys\n\nbe brief"
    assert assembly.messages[-1].text == "Context:\n[1] first passage\n\n[2] second passage\n\nwhy?"
    assert assembly.tokens == count_messages(assembly.messages, Words())


def test_one_long_chunk_left_is_cut_to_fit() -> None:
    ctx = Context(40, model="scripted:x", counter=Words())
    ctx.system("sys").question("q").chunks([words(100, "a"), words(10, "b")])
    assembly = ctx.build()
    assert [str(r) for r in assembly.dropped] == ["chunk:1"]
    (cut,) = assembly.truncated
    assert (cut.kind, cut.index) == ("chunk", 0)
    assert assembly.tokens <= 40
    kept = assembly.messages[-1].text
    assert kept.startswith("Context:\n[1] a0 a1 a2") and "a99" not in kept
    assert cut.tokens == 101 - (assembly.tokens - 2 * MESSAGE_OVERHEAD - 3)


def test_must_keep_parts_over_budget_raise_before_any_call() -> None:
    model = ScriptedModel()
    ctx = Context(20, model="scripted:x", counter=Words())
    ctx.system(words(15)).question(words(10)).chunks(["a passage"])
    with pytest.raises(ContextTooLong, match="need 35 tokens, 15 over the budget of 20"):
        model.generate(ctx.build().request())
    assert model.requests == []


def test_a_very_long_input_is_cut_to_the_local_window_and_recorded() -> None:
    ctx = Context(model="local:smollm2", reserve=100)
    assert ctx.budget == 2048 - 100
    passage = "The Normans gave their name to Normandy. " * 5000
    ctx.system("Answer from the context.").question("Who gave Normandy its name?")
    ctx.chunks([passage])
    assembly = ctx.build()
    assert assembly.budget - 5 <= assembly.tokens <= assembly.budget
    assert assembly.truncated[0].tokens > 40000
    assert assembly.request().metadata["context.truncated"] == "chunk:0"


def test_non_utf8_bytes_are_repaired_and_recorded() -> None:
    ctx = Context(1000, model="scripted:x", counter=Words())
    ctx.system(b"sys").question(b"caf\xe9 ol\xc3\xa9").chunks([b"ok \xff", b"fine"])
    assembly = ctx.build()
    assert assembly.repaired == ["question:0", "chunk:0"]
    assert assembly.messages[-1].text.endswith("caf\ufffd olé")
    assert assembly.request().metadata["context.repaired"] == "question:0,chunk:0"


def test_what_was_dropped_reaches_the_span(project: Path) -> None:
    ctx = Context(60, model="local:smollm2")
    ctx.system("Answer briefly.").question("What is the capital of France?")
    ctx.chunks(["Paris is the capital of France.", words(40, "noise")])
    ctx.history([Message.user(words(20, "old")), Message.assistant("ok")])
    assembly = ctx.build()
    response = tether.model("local:smollm2").generate(assembly.request(max_tokens=8))
    assert response.usage.output_tokens <= 8
    assert flush()
    db = sqlite3.connect(project / ".tether" / "tether.db")
    attrs = json.loads(db.execute("SELECT attributes FROM spans").fetchall()[-1][0])
    assert attrs["tether.metadata.context.dropped"] == "history:0,history:1,chunk:1"
    assert attrs["tether.metadata.context.tokens"] == str(assembly.tokens)


def test_the_default_budget_is_the_declared_window_minus_the_reserve() -> None:
    window = build_provider("openai:gpt-4.1-mini", load_settings()).capabilities().context_window
    assert window is not None and window > 100_000
    assert Context(model="openai:gpt-4.1-mini").budget == window - 512
    assert Context(model="openai:gpt-4.1-mini", reserve=1000).budget == window - 1000
