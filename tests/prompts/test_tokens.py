"""Token counters for hosted models: tiktoken for OpenAI, the estimate where it cannot load."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import pytest

from tether.prompts.context import Context
from tether.prompts.tokens import (
    EstimateCounter,
    TiktokenCounter,
    count_messages,
    counter_for,
    tiktoken_counter,
)
from tether.types import Message

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "tiktoken_cache.py"
NOT_BUILT = (
    "OpenAI's encodings are missing from TIKTOKEN_CACHE_DIR: run `make test`, which builds them"
)


def openai_counter(model: str) -> TiktokenCounter:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to the estimate fails here, saying why
        counter = counter_for(f"openai:{model}")
    assert isinstance(counter, TiktokenCounter), NOT_BUILT
    return counter


def test_openai_models_count_with_their_own_encoding() -> None:
    # tiktoken's documented example: "tiktoken is great!" is 6 tokens in both encodings
    gpt4o, gpt4 = openai_counter("gpt-4o"), openai_counter("gpt-4")
    assert gpt4o.encoding.name == "o200k_base"
    assert gpt4.encoding.name == "cl100k_base"
    assert gpt4.encoding.encode("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    assert gpt4o.count("tiktoken is great!") == 6
    # a name tiktoken does not know (a fine-tune, a new model) gets the current encoding
    assert openai_counter("ft:my-team-model-2026").encoding.name == "o200k_base"
    # special-token spellings in a user's text are counted as text, never refused
    assert gpt4o.count("<|endoftext|>") > 1


def test_openai_chat_overhead_is_three_tokens_a_message() -> None:
    counter = openai_counter("gpt-4o")
    messages = [Message.system("Be brief."), Message.user("Hi there")]
    expected = counter.count("Be brief.") + counter.count("Hi there") + 2 * 3
    assert count_messages(messages, counter) == expected


def test_context_for_an_openai_model_fits_by_tiktoken_counts() -> None:
    ctx = Context(60, model="openai:gpt-4o")
    ctx.system("Answer from the context.").question("Where is the lighthouse?")
    ctx.chunks([f"Passage {i}: the lighthouse stands on the northern cape." for i in range(20)])
    assembly = ctx.build()
    assert isinstance(ctx.counter, TiktokenCounter)
    assert assembly.tokens == count_messages(assembly.messages, ctx.counter) <= 60
    assert assembly.dropped  # twenty passages do not fit in 60 tokens


def test_an_encoding_that_cannot_be_fetched_falls_back_to_the_estimate_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tiktoken.load

    def offline(url: str) -> bytes:
        raise ConnectionError(f"cannot reach {url}")

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiktoken.load, "read_file", offline)
    tiktoken_counter.cache_clear()
    try:
        with pytest.warns(UserWarning, match="TIKTOKEN_CACHE_DIR") as caught:
            counter = counter_for("openai:text-davinci-003")  # p50k_base: never cached
        assert isinstance(counter, EstimateCounter)
        assert "p50k_base" in str(caught[0].message)
    finally:
        tiktoken_counter.cache_clear()


def test_the_offline_rebuild_reads_the_npm_packages_compact_form() -> None:
    spec = importlib.util.spec_from_file_location("tiktoken_cache", SCRIPT)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    compact = "! 0 IQ== Ig==\n\nab 5 YWI= Yw==\n"
    assert script.rebuild(compact) == b"IQ== 0\nIg== 1\nYWI= 5\nYw== 6\n"
