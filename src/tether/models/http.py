"""HTTP details shared by the hosted providers' adapters."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``retry-after`` as seconds or an HTTP date;
    None when the server sent neither or nothing readable."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name) or ""
        try:
            seconds = float(value) * scale
        except ValueError:
            seconds = _seconds_until(value)
        if math.isfinite(seconds):
            return max(seconds, 0.0)
    return None


def _seconds_until(http_date: str) -> float:
    try:
        return parsedate_to_datetime(http_date).timestamp() - time.time()
    except (TypeError, ValueError):
        return math.nan
