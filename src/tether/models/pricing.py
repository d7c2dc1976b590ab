"""Prices per million tokens and the cost of a call.

The table is data (pricing.toml, dated); local models cost nothing; a model with no known
price gets ``cost_usd = None`` rather than a guess.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

from tether.types import Price

FREE_PROVIDERS = {"local"}


FREE = Price(input=0.0, output=0.0)


@cache
def table() -> dict[str, Any]:
    text = resources.files("tether.models").joinpath("pricing.toml").read_text("utf-8")
    return tomllib.loads(text)


def as_of() -> str:
    return str(table()["as_of"])


def price_for(model_id: str) -> Price | None:
    """The price of ``provider:name``: exact name, else the longest listed prefix, else None."""
    provider, _, name = model_id.partition(":")
    if provider in FREE_PROVIDERS:
        return FREE
    prices = table().get(provider)
    if not isinstance(prices, dict):
        return None
    if name in prices:
        return Price.model_validate(prices[name])
    prefixes = [key for key in prices if name.startswith(key + "-")]
    if not prefixes:
        return None
    return Price.model_validate(prices[max(prefixes, key=len)])
