import pytest

from tether.models.pricing import as_of, price_for
from tether.types import Usage


def test_exact_and_dated_snapshot_names_find_their_price() -> None:
    exact = price_for("openai:gpt-4.1-mini")
    snapshot = price_for("openai:gpt-4.1-mini-2025-04-14")
    assert exact is not None and exact == snapshot
    assert exact.input == 0.40
    assert price_for("anthropic:claude-sonnet-4-5-20250929") == price_for(
        "anthropic:claude-sonnet-4-5"
    )


def test_local_is_free_and_unknown_is_none() -> None:
    assert price_for("local:smollm2").cost(Usage(input_tokens=10**6, output_tokens=10**6)) == 0  # type: ignore[union-attr]
    assert price_for("openai:no-such-model") is None
    assert price_for("myserver:llama") is None


def test_cost_counts_cached_and_cache_write_tokens_at_their_prices() -> None:
    price = price_for("anthropic:claude-sonnet-4-5")
    assert price is not None
    usage = Usage(
        input_tokens=1_000_000,
        cached_tokens=400_000,
        cache_write_tokens=100_000,
        output_tokens=10_000,
    )
    expected = (500_000 * 3.0 + 400_000 * 0.30 + 100_000 * 3.75 + 10_000 * 15.0) / 1e6
    assert price.cost(usage) == pytest.approx(expected)


def test_table_is_dated() -> None:
    assert as_of().count("-") == 2


def test_a_neighbours_price_is_never_borrowed() -> None:
    for unlisted in (
        "openai:o1-mini",
        "openai:gpt-5-pro",
        "openai:o1-pro",
        "anthropic:claude-opus-4-6",
    ):
        assert price_for(unlisted) is None, unlisted
    assert price_for("anthropic:claude-3-5-haiku-latest") == price_for("anthropic:claude-3-5-haiku")
    assert price_for("openai:gpt-4o-2024-08-06") == price_for("openai:gpt-4o")


def test_anthropic_one_hour_cache_writes_have_their_own_price() -> None:
    from tether.models.pricing import table

    for name, entry in table()["anthropic"].items():
        assert entry["cache_write_1h"] == pytest.approx(2 * entry["input"]), name
    price = price_for("anthropic:claude-haiku-4-5")
    assert price is not None
    usage = Usage(
        input_tokens=1_000_000, cache_write_tokens=1_000_000, cache_write_1h_tokens=250_000
    )
    assert price.cost(usage) == pytest.approx(0.75 * 1.25 + 0.25 * 2.0)
