"""Gates for CI: thresholds on a run's metrics, and no significant regression against a
baseline run. ``tether eval run NAME --gate "exact>=0.8" --baseline RUN --max-drop 0.02``
exits non-zero only when a gate fails.

A threshold is checked on the metric's mean (its interval is printed beside it); a
regression needs both a drop larger than ``max_drop`` and a paired test that says it is more
than noise. A metric that ends in ``_s`` or ``_usd`` (latency, cost) is better lower.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence

from pydantic import BaseModel

from tether.errors import ConfigError
from tether.evals.stats import Comparison, regressed
from tether.evals.summary import Summary

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
GATE = re.compile(r"^\s*([\w.@:-]+)\s*(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")


class Gate(BaseModel):
    metric: str
    op: str
    threshold: float

    @classmethod
    def parse(cls, text: str) -> Gate:
        match = GATE.match(text)
        if match is None:
            raise ConfigError(
                f"cannot read the gate {text!r}; write METRIC OP NUMBER, e.g. 'exact>=0.8' "
                "(OP is one of >=, <=, >, <)"
            )
        return cls(metric=match[1], op=match[2], threshold=float(match[3]))

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:g}"


class Verdict(BaseModel):
    what: str
    value: float | None = None
    passed: bool
    detail: str = ""


def lower_is_better(metric: str) -> bool:
    return metric.endswith(("_s", "_usd"))


def value_of(summary: Summary, metric: str) -> float:
    """A metric's mean, or a scorer's numeric run-level figure (e.g. accuracy.macro_f1)."""
    if metric in summary.metrics:
        return summary.metrics[metric].estimate.mean
    extra = summary.extra.get(metric)
    if isinstance(extra, (int, float)):
        return float(extra)
    known = sorted(summary.metrics) + sorted(
        k for k, v in summary.extra.items() if isinstance(v, (int, float))
    )
    raise ConfigError(
        f"the gate names metric {metric!r}, which this run does not have; its metrics: "
        f"{', '.join(known) or 'none'}"
    )


def check(
    summary: Summary,
    gates: Sequence[Gate],
    comparisons: Sequence[Comparison] = (),
    *,
    max_drop: float = 0.0,
) -> list[Verdict]:
    """Every gate's verdict, then one per compared metric (a regression fails)."""
    verdicts = []
    for gate in gates:
        value = value_of(summary, gate.metric)
        passed = OPERATORS[gate.op](value, gate.threshold)
        detail = ""
        if gate.metric in summary.metrics:
            est = summary.metrics[gate.metric].estimate
            detail = f"95% CI {est.low:.3f}-{est.high:.3f}"
        verdicts.append(Verdict(what=str(gate), value=value, passed=passed, detail=detail))
    for comparison in comparisons:
        worse = regressed(
            comparison, max_drop, higher_is_better=not lower_is_better(comparison.metric)
        )
        verdicts.append(
            Verdict(
                what=f"{comparison.metric} against the baseline",
                value=comparison.difference,
                passed=not worse,
                detail=f"{comparison.difference:+.3f} (95% CI {comparison.low:+.3f} to "
                f"{comparison.high:+.3f}, {comparison.test} p={comparison.p_value:.3g}); "
                f"allowed drop {max_drop:g}",
            )
        )
    return verdicts
