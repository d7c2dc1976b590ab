"""Fallbacks: when a model fails, the next one in line answers instead.

Any ProviderError moves on to the next model (a bigger context window or another provider
may succeed where the first could not); configuration errors do not, nor does a
MalformedResponse: an answer tether cannot read is a defect to see and fix, and answering
from the next model would hide it while paying for every call that meets it. A stream falls
back only until its first event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from tether.errors import MalformedResponse, ProviderError
from tether.models.base import Model, aclose_all, closing
from tether.types import Request, Response, StreamEvent


class Fallback(Model):
    def __init__(self, models: Sequence[Model]) -> None:
        if not models:
            raise ValueError("Fallback needs at least one model")
        self.models = list(models)
        self.id = self.models[0].id

    async def aclose(self) -> None:
        await aclose_all(self.models)

    def _give_up(self, errors: list[ProviderError]) -> ProviderError:
        last = errors[-1]
        for model, error in zip(self.models, errors, strict=False):
            last.add_note(f"{model.id}: {type(error).__name__}: {error}")
        return last

    async def request(self, request: Request) -> Response:
        errors: list[ProviderError] = []
        for model in self.models:
            try:
                return await model.request(request)
            except ProviderError as error:
                errors.append(error)
                if isinstance(error, MalformedResponse):
                    break
        raise self._give_up(errors)

    async def request_stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        errors: list[ProviderError] = []
        for model in self.models:
            started = False
            try:
                async with closing(model.request_stream(request)) as events:
                    async for event in events:
                        started = True
                        yield event
                return
            except ProviderError as error:
                if started:
                    raise
                errors.append(error)
                if isinstance(error, MalformedResponse):
                    break
        raise self._give_up(errors)
