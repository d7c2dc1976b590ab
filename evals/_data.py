"""Where the example suites find their data: $TETHER_DATA, else ../shared/data beside the
checkout (the rule the tests and benchmarks follow). A suite whose data is not there is not
defined, so `tether eval list` shows the ones that can run."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# The samples a suite runs by default: the embedded model takes seconds a sample.
SLICE = int(os.environ.get("TETHER_EVAL_SLICE", "20"))


def data_file(relative: str) -> Path | None:
    root = Path(os.environ.get("TETHER_DATA") or DEFAULT)
    path = root / relative
    return path if path.is_file() else None
