"""A router: one name in front of several models, chosen per request by its ``route``.

``tether.model("assistant").generate(prompt, metadata={"route": "smart"})`` goes to the model
declared for ``smart`` under ``[routers.assistant.routes]``; without a route, to ``default``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from tether.errors import ConfigError
from tether.models.base import Model, aclose_all
from tether.types import Request, Response, StreamEvent


class Router(Model):
    def __init__(self, name: str, routes: Mapping[str, Model], *, default: str) -> None:
        if default not in routes:
            raise ConfigError(
                f"router {name!r}: default route {default!r} is not one of {sorted(routes)}"
            )
        self.id = name
        self.routes = dict(routes)
        self.default = default

    def pick(self, request: Request) -> Model:
        route = request.metadata.get("route", self.default)
        if route not in self.routes:
            raise ConfigError(
                f"router {self.id!r} has no route {route!r}; routes: {', '.join(self.routes)}"
            )
        return self.routes[route]

    async def aclose(self) -> None:
        await aclose_all(self.routes.values())

    async def request(self, request: Request) -> Response:
        return await self.pick(request).request(request)

    def request_stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        return self.pick(request).request_stream(request)
