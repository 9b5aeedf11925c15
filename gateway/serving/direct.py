"""Requests for an MCP endpoint go straight to its app, past the Starlette app's router and exception layers.

Measured under load, what a Starlette app puts around every request (its error and exception middlewares,
the router, the route, each with its own `send` wrapper) cost about 12% of a small call's CPU, for nothing
the MCP endpoint uses: its app (the fast path, behind the bearer guard when inbound auth is on) answers
each request itself or hands it to the SDK's. `DirectRoutes` keeps what matters of those layers: the
app's own middleware (the request id of the log lines, the trace context) and a 500 for an exception that
nothing caught (Starlette's `ServerErrorMiddleware`, as the app has it). Everything else (health checks,
metadata, metrics, the lifespan, any other path) goes to the Starlette app as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.routing import BaseRoute, Router
from starlette.types import ASGIApp, Receive, Scope, Send


class DirectRoutes:
    """ASGI app: `endpoints` (path -> app) served directly, in `middleware`; the rest by `app`."""

    def __init__(self, app: Starlette, endpoints: Mapping[str, ASGIApp], middleware: Sequence[Middleware]) -> None:
        self.app = app
        self.endpoints: dict[str, ASGIApp] = {}
        for path, endpoint in endpoints.items():
            for cls, args, kwargs in reversed(middleware):
                endpoint = cls(endpoint, *args, **kwargs)
            self.endpoints[path] = ServerErrorMiddleware(endpoint)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Only the exact path, as the router would match it (no root path to strip, no trailing-slash redirect).
        if scope["type"] == "http" and not scope.get("root_path"):
            endpoint = self.endpoints.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @property
    def router(self) -> Router:
        """The Starlette app's router (a route added to it later is served by the Starlette app)."""
        return self.app.router

    @property
    def routes(self) -> list[BaseRoute]:
        return self.app.routes
