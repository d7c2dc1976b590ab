"""The call cache and the meter, on the embedded model's real call path."""

from __future__ import annotations

from pathlib import Path

import tether
from tether.models.middleware.cache import CallCache, caching
from tether.models.middleware.meter import metering
from tether.types import ResponseEvent, TextDelta

PARAMS = {"max_tokens": 8, "temperature": 0.0, "seed": 0}


def test_a_known_call_is_answered_from_the_cache_free_and_counted(project: Path) -> None:
    model = tether.model("local:smollm2")
    cache = CallCache(project / ".tether" / "tether.db")
    with caching(cache), metering() as first:
        fresh = model.generate("Say hello.", **PARAMS)
    with caching(cache), metering() as second:
        again = model.generate("Say hello.", **PARAMS)
    assert (cache.misses, cache.hits) == (1, 1)
    assert again.text == fresh.text and again.cost_usd == 0.0
    assert first.calls == second.calls == 1
    assert second.output_tokens == fresh.usage.output_tokens  # what it would have taken

    with caching(cache):  # a stream of a known call replays its answer
        events = list(model.stream("Say hello.", **PARAMS))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == fresh.text and isinstance(events[-1], ResponseEvent)
    assert cache.hits == 2

    with caching(cache, salt="epoch 2"):  # another salt is another call
        model.generate("Say hello.", **PARAMS)
    assert cache.misses == 2
    model.generate("Say hello.", **PARAMS)  # outside a block nothing is looked up
    assert (cache.misses, cache.hits) == (2, 2)


def test_a_new_cache_object_on_the_same_database_finds_earlier_calls(project: Path) -> None:
    model = tether.model("local:smollm2")
    db = project / ".tether" / "tether.db"
    with caching(CallCache(db)):
        fresh = model.generate("Count to three.", **PARAMS)
    reopened = CallCache(db)  # as a later process would
    with caching(reopened):
        again = model.generate("Count to three.", **PARAMS)
    assert reopened.hits == 1 and again.text == fresh.text


def test_a_cached_stream_replays_tool_calls_part_by_part(project: Path) -> None:
    from tether.models.middleware.cache import CachedModel
    from tether.testing import ScriptedModel
    from tether.types import ToolCallDelta, ToolCallPart

    call = ToolCallPart(id="c1", name="lookup", arguments='{"city": "Oslo"}')
    model = CachedModel(ScriptedModel([call]))  # one answer: a second call must hit
    cache = CallCache(project / ".tether" / "tether.db")
    with caching(cache):
        first = list(model.stream("Weather in Oslo?"))
        again = list(model.stream("Weather in Oslo?"))
    assert cache.hits == 1
    deltas = [e for e in again if isinstance(e, ToolCallDelta)]
    assert "".join(d.arguments or "" for d in deltas) == call.arguments
    assert isinstance(again[-1], ResponseEvent) and again[-1].response.tool_calls == [call]
    assert isinstance(first[-1], ResponseEvent)
