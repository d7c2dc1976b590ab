"""Prices per million tokens and the cost of a call.

The table is data (pricing.toml, dated); local models cost nothing; a model with no known
price gets ``cost_usd = None`` rather than a guess.
"""

from __future__ import annotations

import re
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


SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


def price_for(model_id: str) -> Price | None:
    """The price of ``provider:name``, by exact name or with a snapshot suffix (a date or
    ``-latest``) removed; None otherwise. Never by a looser match: ``o1-mini`` is not ``o1``."""
    provider, _, name = model_id.partition(":")
    if provider in FREE_PROVIDERS:
        return FREE
    prices = table().get(provider)
    if not isinstance(prices, dict):
        return None
    for candidate in (name, SNAPSHOT.sub("", name)):
        if candidate in prices:
            return Price.model_validate(prices[candidate])
    return None
