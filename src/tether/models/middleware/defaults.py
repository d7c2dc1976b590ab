"""Default parameters for an alias (``[models.NAME] params = {...}``); the caller's win."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from tether.models.base import Model, Wrapper
from tether.types import Params, Request, Response, StreamEvent


class WithDefaults(Wrapper):
    def __init__(self, inner: Model, defaults: dict[str, Any]) -> None:
        super().__init__(inner)
        self.defaults = Params.model_validate(defaults).set_fields()

    def _apply(self, request: Request) -> Request:
        given = request.params.set_fields()
        merged = {**self.defaults, **given}
        if "provider_options" in self.defaults and "provider_options" in given:
            # per provider, the caller's options win key by key over the alias's
            ours, theirs = self.defaults["provider_options"], given["provider_options"]
            merged["provider_options"] = {
                name: {**ours.get(name, {}), **theirs.get(name, {})} for name in {*ours, *theirs}
            }
        return request.model_copy(update={"params": Params.model_validate(merged)})

    async def request(self, request: Request) -> Response:
        return await self.inner.request(self._apply(request))

    def request_stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        return self.inner.request_stream(self._apply(request))
