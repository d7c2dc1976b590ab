"""The Instructor peer of structured_extraction.py, and the Receipt both of them ask for.

Instructor pins an older openai than tether's, so it runs in a virtual environment of its own
(bench/.peer, made by structured_extraction.py) as a child process: one JSON line in per
receipt and mode ({"prompt", "mode", "params"}), one JSON line out (seconds, output_tokens,
fields or null, error).

    bench/.peer/bin/python bench/_instructor_peer.py BASE_URL
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from pydantic import BaseModel, Field

INSTRUCTOR = "instructor==1.17.0"


class Receipt(BaseModel):
    """SROIE's four fields. The bounds are above every gold value in the data set (company 49
    characters, date 12, address 135, total 8) and keep a constrained answer finite: a small
    model can loop inside a string until max_tokens cuts it."""

    company: str = Field(max_length=64)
    date: str = Field(max_length=16)
    address: str = Field(max_length=144)
    total: str = Field(max_length=16)


def answer(client: Any, prompt: str, params: dict[str, Any]) -> dict[str, Any]:
    """One receipt through Instructor in one mode, no retries (like the baseline)."""
    started = time.perf_counter()
    try:
        obj, raw = client.chat.completions.create_with_completion(
            model="smollm2",
            response_model=Receipt,
            messages=[{"role": "user", "content": prompt}],
            max_retries=0,
            **params,
        )
    except Exception as exc:  # Instructor wraps validation and server errors alike
        # the tokens it spent: on a retry error, or on the cut-off completion it carries
        usage = getattr(exc, "total_usage", None) or getattr(
            getattr(exc, "last_completion", None), "usage", None
        )
        return {
            "seconds": time.perf_counter() - started,
            "output_tokens": getattr(usage, "completion_tokens", 0) or 0,
            "fields": None,
            "error": f"{type(exc).__name__}: {str(exc)[:160]}",
        }
    return {
        "seconds": time.perf_counter() - started,
        "output_tokens": raw.usage.completion_tokens if raw.usage else 0,
        "fields": obj.model_dump(),
        "error": None,
    }


def main() -> int:
    import instructor
    import openai

    logging.disable(logging.CRITICAL)  # each error comes back in its answer's line instead
    server = openai.OpenAI(base_url=sys.argv[1], api_key="x", max_retries=0)
    clients: dict[str, Any] = {}
    for line in sys.stdin:
        ask = json.loads(line)
        mode = ask["mode"]
        if mode not in clients:
            clients[mode] = instructor.from_openai(server, mode=instructor.Mode[mode])
        print(json.dumps(answer(clients[mode], ask["prompt"], ask["params"])), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
