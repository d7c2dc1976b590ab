"""One reasoning knob for every provider: ``Params.reasoning_budget``.

It is either a token budget (how many tokens the model may think) or an effort word
(``EFFORTS``: none, minimal, low, medium, high, xhigh, max). Providers take one form or the
other: OpenAI an effort level, Anthropic's older models a thinking budget, its newer ones an
adaptive effort. Each gets the form it takes, and the other is mapped through the two
tables here, so a fallback chain across providers asks each for the same amount of thought.
"""

from __future__ import annotations

from tether.types import EFFORTS

# A budget up to this many tokens thinks at this effort; a larger one at "high".
EFFORT_BANDS = ((0, "minimal"), (2048, "low"), (8192, "medium"))
# The thinking budget an effort word stands for, where a model takes only budgets.
WORD_BUDGETS = {
    "none": 0,
    "minimal": 1024,  # Anthropic's smallest thinking budget
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
    "max": 49152,
}
assert set(WORD_BUDGETS) == set(EFFORTS)


def effort_for(budget: int | str) -> str:
    """The effort word for a budget (a word stays itself)."""
    if isinstance(budget, str):
        return budget
    for top, word in EFFORT_BANDS:
        if budget <= top:
            return word
    return "high"


def budget_for(budget: int | str) -> int:
    """The token budget for an effort word (a number stays itself); 0 means no thinking."""
    return WORD_BUDGETS[budget] if isinstance(budget, str) else budget


def thinks(budget: int | str | None) -> bool:
    """Whether the knob asks for any thinking at all (unset, 0 and "none" do not)."""
    return budget not in (None, 0, "none")
