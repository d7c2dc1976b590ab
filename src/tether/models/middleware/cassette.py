"""Record every model call to a cassette, then answer from it: deterministic, offline tests.

``TETHER_RECORD=calls.json`` (or ``with record("calls.json"):``) writes each call, streamed
events included, to a readable JSON file. ``TETHER_REPLAY=calls.json`` (or ``with
replay(...)``) answers from it and raises CassetteMiss for any call it does not hold.
The cassette sits above tracing and below retries, and stores tether's own Request and
Response types: the HTTP headers carrying API keys never reach it, and a replayed call adds
no trace. A key quoted in a prompt, a tool call or an answer is redacted before anything is
written (tether.redaction); recordings are looked up by the redacted request, so replay
finds them all the same.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from tether.errors import CassetteMiss
from tether.models.base import Wrapper, closing
from tether.redaction import known_secrets, redact, redact_data, redact_field
from tether.types import (
    Request,
    Response,
    ResponseEvent,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)

Mode = Literal["record", "replay"]
_events = TypeAdapter(list[StreamEvent])


class Interaction(BaseModel):
    model: str
    stream: bool
    request: Request
    response: Response | None = None
    events: list[StreamEvent] = Field(default_factory=list)

    def key(self) -> str:
        return call_key(self.model, self.request, self.stream)

    def redacted(self) -> Interaction:
        """This interaction as a cassette may hold it: no credentials anywhere in it."""
        secrets = known_secrets()
        data = self.model_dump(mode="json", exclude_none=True)
        data["events"] = _joined_where_split(self.events, secrets)
        data = redact_data(data, secrets)
        data["request"]["metadata"] = {
            name: redact_field(name, value, secrets)
            for name, value in self.request.metadata.items()
        }
        return Interaction.model_validate(data)


def _joined_where_split(events: list[StreamEvent], secrets: tuple[str, ...]) -> list[Any]:
    """The events as JSON, where a key was split across deltas (redacted piece by piece,
    neither half would be recognised) with that text, or that tool call's arguments, given
    whole in its first delta and the deltas that only carried the rest left out."""
    runs: dict[tuple[str, int], list[int]] = {}
    for position, event in enumerate(events):
        if isinstance(event, TextDelta):
            runs.setdefault(("text", 0), []).append(position)
        elif isinstance(event, ToolCallDelta):
            runs.setdefault(("arguments", event.index), []).append(position)
    data: list[Any] = [event.model_dump(mode="json", exclude_none=True) for event in events]
    dropped: set[int] = set()
    for (field, _), positions in runs.items():
        parts = [data[p][field] for p in positions]
        whole = "".join(parts)
        if redact(whole, secrets) == "".join(redact(part, secrets) for part in parts):
            continue
        data[positions[0]][field] = whole
        for later in positions[1:]:
            data[later][field] = ""
            if field == "text" or not ({"id", "name"} & data[later].keys()):
                dropped.add(later)
    return [d for p, d in enumerate(data) if p not in dropped]


def call_key(model: str, request: Request, stream: bool) -> str:
    """What a recording is found by: the call as the cassette holds it, redacted (the same
    when recording and when replaying)."""
    held = Interaction(model=model, stream=stream, request=request).redacted().request
    payload = {"model": model, "stream": stream, "request": held.model_dump(mode="json")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class Cassette:
    """A file of recorded calls, in the order they were made."""

    def __init__(self, path: str | Path, mode: Mode) -> None:
        self.path = Path(path)
        self.mode = mode
        self._lock = threading.Lock()
        self.interactions: list[Interaction] = []
        self.used: list[bool] = []
        if mode == "replay":
            if not self.path.is_file():
                raise CassetteMiss(
                    f"no cassette at {self.path}; record one first with TETHER_RECORD={self.path}"
                )
            data = json.loads(self.path.read_text("utf-8"))
            self.interactions = [Interaction.model_validate(i) for i in data["interactions"]]
            self.used = [False] * len(self.interactions)
        self._keys: list[str] = []
        self._keyed_with: tuple[str, ...] | None = None

    def _held_keys(self) -> list[str]:
        """The recordings' keys, worked out again once another secret is known (a recording
        made before a key was handed out may hold it: both sides must redact it alike)."""
        secrets = known_secrets()
        if secrets != self._keyed_with:
            self._keys = [interaction.key() for interaction in self.interactions]
            self._keyed_with = secrets
        return self._keys

    def take(self, model: str, request: Request, stream: bool) -> Interaction:
        key = call_key(model, request, stream)
        with self._lock:
            keys = self._held_keys()
            for index, interaction in enumerate(self.interactions):
                if not self.used[index] and keys[index] == key:
                    self.used[index] = True
                    return interaction
        held = [
            f"{i.model} ({'stream' if i.stream else 'call'}): {_preview(i.request)}"
            for i in self.interactions
        ]
        raise CassetteMiss(
            f"{self.path} holds no unused recording of this {'stream' if stream else 'call'} to "
            f"{model}: {_preview(request)}. It holds {len(held)}: {held[:5]}. Re-record it "
            f"with TETHER_RECORD={self.path}"
        )

    def add(self, interaction: Interaction) -> None:
        """Hold ``interaction``, redacted, and write the cassette."""
        held = interaction.redacted()
        with self._lock:
            self.interactions.append(held)
            self.used.append(True)
            self._keyed_with = None
            self.save()

    def save(self) -> None:
        data = {
            "interactions": [
                i.model_dump(mode="json", exclude_none=True) for i in self.interactions
            ]
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_suffix(self.path.suffix + ".tmp")
        temp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", "utf-8")
        temp.replace(self.path)

    def unused(self) -> list[Interaction]:
        return [i for i, used in zip(self.interactions, self.used, strict=True) if not used]


def _preview(request: Request) -> str:
    text = request.messages[-1].text if request.messages else ""
    return repr(redact(text)[:60])


_active: ContextVar[Cassette | None] = ContextVar("tether_cassette", default=None)
_from_env: dict[tuple[str, Mode], Cassette] = {}


def current() -> Cassette | None:
    """The cassette in force: a ``record``/``replay`` block, else TETHER_RECORD/TETHER_REPLAY."""
    cassette = _active.get()
    if cassette is not None:
        return cassette
    modes: tuple[tuple[str, Mode], ...] = (("TETHER_REPLAY", "replay"), ("TETHER_RECORD", "record"))
    for env, mode in modes:
        if path := os.environ.get(env):
            key = (path, mode)
            if key not in _from_env:
                _from_env[key] = Cassette(path, mode)
            return _from_env[key]
    return None


@contextlib.contextmanager
def use(cassette: Cassette) -> Iterator[Cassette]:
    token = _active.set(cassette)
    try:
        yield cassette
    finally:
        _active.reset(token)


def record(path: str | Path) -> contextlib.AbstractContextManager[Cassette]:
    """Record every model call made inside the block to ``path``."""
    return use(Cassette(path, "record"))


def replay(path: str | Path) -> contextlib.AbstractContextManager[Cassette]:
    """Answer every model call inside the block from ``path``; unknown calls raise."""
    return use(Cassette(path, "replay"))


class CassetteModel(Wrapper):
    """Passes calls through, recording them, or answers them from the cassette in force."""

    async def request(self, request: Request) -> Response:
        cassette = current()
        if cassette is None:
            return await self.inner.request(request)
        if cassette.mode == "replay":
            response = cassette.take(self.id, request, stream=False).response
            if response is None:
                raise CassetteMiss(f"{cassette.path}: the recording for this call has no response")
            return response.model_copy(deep=True)
        response = await self.inner.request(request)
        cassette.add(Interaction(model=self.id, stream=False, request=request, response=response))
        return response

    async def request_stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        cassette = current()
        if cassette is None:
            async with closing(self.inner.request_stream(request)) as stream:
                async for event in stream:
                    yield event
            return
        if cassette.mode == "replay":
            for event in cassette.take(self.id, request, stream=True).events:
                yield event.model_copy(deep=True)
            return
        events: list[StreamEvent] = []
        async with closing(self.inner.request_stream(request)) as stream:
            async for event in stream:
                events.append(event)
                if isinstance(event, ResponseEvent):
                    # before handing it on: a consumer may stop at the final event
                    interaction = Interaction(
                        model=self.id, stream=True, request=request, events=events
                    )
                    cassette.add(interaction)
                yield event


def _warn_unused_at_exit() -> None:
    for (path, mode), cassette in _from_env.items():
        if mode == "replay" and (left := cassette.unused()):
            print(
                f"tether: {len(left)} recorded calls in {path} were never replayed", file=sys.stderr
            )


atexit.register(_warn_unused_at_exit)
