"""The ASGI app: every catalog's MCP endpoint (the SDK's Streamable HTTP app behind the fast path, the
bearer-token guard in front), the protected-resource metadata, `/healthz` and `/readyz`; and stdio.

Tool descriptors and both `tools/list` answers (one per protocol era) are built once at start-up
(`gateway.serving.endpoint`). Clients of 2026-07-28 get output schemas as they are; older clients, whose
`structuredContent` must be an object, get non-object results wrapped as `{"result": ...}` with a
matching schema. Tools with a widget point at it in their `_meta`; the widgets are served as resources.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import sys
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server import Server
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from gateway.auth.http import ResourceServer, ScopePolicy
from gateway.auth.settings import InboundAuth
from gateway.calls.files import FileFetcher
from gateway.calls.forward import Backend
from gateway.calls.pipeline import CallPolicy, build_policy
from gateway.config import ServerSettings
from gateway.discovery.catalog import CALL_TOOL, Catalog
from gateway.observability.logs import RequestIds
from gateway.observability.tracing import TraceContext, Tracing
from gateway.redact import install_log_redaction
from gateway.runtime import Gateway, open_backends
from gateway.serving.direct import DirectRoutes
from gateway.serving.endpoint import Endpoint, EndpointTools
from gateway.serving.fast import FastPath
from gateway.serving.sdk import sdk_server
from gateway.widgets import WidgetRegistry

if TYPE_CHECKING:
    from gateway.observability.metrics import Metrics

log = logging.getLogger("gateway.server")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def create_mcp_server(gw: Gateway, backends: Mapping[str, Backend], security: ScopePolicy | None = None,
                      policy: CallPolicy | None = None, widgets: WidgetRegistry | None = None,
                      catalog: Catalog | None = None) -> Server[Any]:
    """The SDK `Server` of one endpoint (`catalog`, default: the one serving every tool).

    `security` (inbound auth on) adds each tool's `securitySchemes` to its descriptor and decides which
    tools search mode shows a caller. `widgets` defaults to those built from the loaded tools and
    `server.widgets`. In search mode, `tools/list` serves `search_tools`, `call_tool` and the pinned tools;
    any of the endpoint's tools may still be called directly by name.
    """
    widgets = widgets if widgets is not None else gw.widgets
    served = EndpointTools.build(gw, catalog or gw.catalogs[0], security, widgets)
    return sdk_server(Endpoint(served, backends, policy))


def transport_security(settings: ServerSettings) -> TransportSecuritySettings | None:
    """DNS-rebinding protection: explicit hosts/origins, else loopback-only when bound to loopback."""
    if settings.allowed_hosts or settings.allowed_origins:
        return TransportSecuritySettings(
            allowed_hosts=list(settings.allowed_hosts), allowed_origins=list(settings.allowed_origins)
        )
    if settings.host in LOOPBACK:
        return TransportSecuritySettings(
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
    log.warning("DNS-rebinding protection is off: bound to %s without server.allowed_hosts", settings.host)
    return TransportSecuritySettings(enable_dns_rebinding_protection=False)


def scope_policy(gw: Gateway, catalog: Catalog | None = None) -> ScopePolicy | None:
    """Who may call what on one endpoint, when the gateway checks tokens (`server.auth.mode: oauth`)."""
    auth = gw.config.server.auth
    if auth.mode != "oauth":
        return None
    catalog = catalog or gw.catalogs[0]
    tools = {name: gw.tools[name] for name in catalog.tools}
    return ScopePolicy.of(auth.required_scopes, tools, CALL_TOOL if catalog.search else None)


FLAT_LISTING_WARNING = 200_000
"""Bytes of a flat `tools/list` past which the start-up log suggests search mode."""


def log_listing(catalog: Catalog, served: EndpointTools) -> None:
    """Say at start which discovery mode an endpoint serves, why, and how large its `tools/list` is."""
    modern, legacy = served.listing_bytes(False), served.listing_bytes(True)
    log.info("%s: %s discovery (%s); tools/list lists %d tools, %s bytes (2026-07-28), %s bytes (2025-11-25)",
             catalog.path, catalog.discovery.mode, catalog.discovery.reason, len(served.listings[False].tools),
             f"{modern:,}", f"{legacy:,}")
    if not catalog.search and max(modern, legacy) > FLAT_LISTING_WARNING:
        log.warning("%s: flat discovery serves a %s-byte tools/list, more than a model's context comfortably "
                    "holds; set server.discovery.mode: search (or auto), or --discovery search",
                    catalog.path, f"{max(modern, legacy):,}")


def _endpoint_url(resource_url: str | None, main: Catalog, catalog: Catalog) -> str | None:
    """A toolset endpoint's public URL: the main endpoint's, with the toolset's path segment added."""
    if resource_url is None or catalog.key is None:
        return resource_url
    return resource_url.rstrip("/") + catalog.path[len(main.path.rstrip("/")):]


def _with_toolset_audiences(auth: InboundAuth, catalogs: tuple[Catalog, ...]) -> InboundAuth:
    """Tokens issued for a toolset's endpoint are accepted there (and the main endpoint's everywhere)."""
    if auth.audiences or len(catalogs) == 1:
        return auth
    urls = tuple(_endpoint_url(auth.resource_url, catalogs[0], c) for c in catalogs)
    return dataclasses.replace(auth, audiences=tuple(u for u in urls if u))


def create_app(gw: Gateway, backends: Mapping[str, Backend] | None = None, *,
               widgets: WidgetRegistry | None = None, metrics: Metrics | None = None,
               tracing: Tracing | None = None, files: FileFetcher | None = None) -> DirectRoutes:
    """The ASGI app: MCP at the configured path (and each toolset's beneath it), `/healthz` and `/readyz`.

    With `server.auth.mode: oauth` the MCP routes are guarded by bearer-token checks and the RFC 9728
    protected-resource metadata is served; with mode none nothing checks who calls (logged as a warning).
    `widgets` replaces the widgets built from the loaded tools (a test's own widget library, say).
    `metrics` (kept across reloads by the caller) is made here when `server.metrics` asks for them and none
    is given; they are served at `server.metrics.path` unless they have a port of their own. `tracing`
    likewise (`server.tracing`); `files` replaces the downloader `server.files` asks for (the preview's).
    """
    settings = gw.config.server
    if metrics is None and settings.metrics.enabled:
        from gateway.observability.metrics import Metrics  # prometheus_client, loaded only when asked for

        metrics = Metrics()
    if backends is None:
        backends = open_backends(gw, metrics.token_answer if metrics is not None else None)
    if tracing is None and settings.tracing.enabled:
        tracing = Tracing.configure()
    policy = build_policy(gw.config, backends, (metrics,) if metrics is not None else (), tracing)
    if files is not None:
        policy = dataclasses.replace(policy, files=files)
    if metrics is not None:
        metrics.serve(gw.tools, {name: (lambda cap=cap: cap.in_flight) for name, cap in policy.caps.items()})
    if settings.auth.mode != "oauth":
        log.warning("inbound auth is off (server.auth.mode: none): anyone who reaches %s can call every tool",
                    settings.path)
    jwks = (lambda result: metrics.jwks.labels(result).inc()) if metrics is not None else None
    token_checks = (lambda result: metrics.tokens.labels(result).inc()) if metrics is not None else None
    verifier = None
    if settings.auth.mode == "oauth":
        from gateway.auth.inbound import TokenVerifier  # joserfc and cryptography: loaded when tokens are checked

        verifier = TokenVerifier(_with_toolset_audiences(settings.auth, gw.catalogs), on_fetch=jwks)
    servers: list[Server[Any]] = []
    routes: list[BaseRoute] = []
    middleware: list[Any] = []
    security_settings = transport_security(settings)
    for catalog in gw.catalogs:
        security = scope_policy(gw, catalog)
        served = EndpointTools.build(gw, catalog, security, widgets if widgets is not None else gw.widgets)
        endpoint = Endpoint(served, backends, policy)
        server = sdk_server(endpoint, metrics)
        mcp_app = server.streamable_http_app(
            streamable_http_path=catalog.path,
            stateless_http=True,
            json_response=True,
            transport_security=security_settings,
            max_request_body_size=settings.max_request_bytes,
            host=settings.host,
        )
        servers.append(server)
        middleware = mcp_app.user_middleware
        endpoint_routes = list(mcp_app.routes)
        if settings.fast_path:
            endpoint_routes = [
                Route(r.path, FastPath(r.endpoint, endpoint, security_settings, settings.max_request_bytes,
                                       metrics, tracing), methods=r.methods)
                if isinstance(r, Route) and r.path == catalog.path else r
                for r in endpoint_routes]
        if verifier is not None and security is not None:
            resource = ResourceServer(settings.auth, security, mcp_path=catalog.path,
                                      max_body=settings.max_request_bytes, name=catalog.name, verifier=verifier,
                                      resource_url=_endpoint_url(settings.auth.resource_url, gw.catalogs[0], catalog),
                                      on_check=token_checks)
            endpoint_routes = [resource.guard(r) if isinstance(r, Route) and r.path == catalog.path else r
                               for r in endpoint_routes] + resource.routes()
        routes += endpoint_routes
        log_listing(catalog, served)
    state = {"ready": False}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        remove_redaction = install_log_redaction(policy.redactor)
        async with contextlib.AsyncExitStack() as stack:
            for server in servers:
                await stack.enter_async_context(server.session_manager.run())
            warming = [asyncio.create_task(asyncio.to_thread(c.index.warm)) for c in gw.catalogs if c.index]
            state["ready"] = True
            try:
                yield
            finally:
                state["ready"] = False
                for task in warming:
                    task.cancel()
                for backend in backends.values():
                    await backend.aclose()
                if verifier is not None:
                    await verifier.aclose()
                if policy.files is not None:
                    await policy.files.aclose()
                remove_redaction()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        body = {"status": "ready" if state["ready"] else "starting", "tools": len(gw.tools)}
        return JSONResponse(body, status_code=200 if state["ready"] else 503)

    routes += [Route("/healthz", healthz), Route("/readyz", readyz)]
    if metrics is not None and settings.metrics.port is None:
        routes.append(Route(settings.metrics.path, metrics.endpoint, methods=["GET"]))
    outer = [Middleware(RequestIds), *([Middleware(TraceContext)] if tracing is not None else [])]
    app = Starlette(routes=routes, middleware=[*outer, *middleware], lifespan=lifespan)
    paths = {catalog.path for catalog in gw.catalogs} if settings.fast_path else set()  # else the SDK's stack, exactly
    endpoints = {route.path: route.app for route in routes if isinstance(route, Route) and route.path in paths}
    return DirectRoutes(app, endpoints, [*outer, *middleware])


async def serve_stdio(gw: Gateway) -> None:
    """Serve one client over stdio (local desktop clients)."""
    from mcp.server.stdio import stdio_server

    backends = open_backends(gw)
    policy = build_policy(gw.config, backends)
    server = create_mcp_server(gw, backends, policy=policy)
    remove_redaction = install_log_redaction(policy.redactor)
    # The SDK reads stdin with errors="replace", which turns invalid UTF-8 into U+FFFD and lets the altered call
    # through; surrogateescape keeps the bad bytes as lone surrogates, which the JSON parser or the argument
    # check refuses.
    stdin = anyio.wrap_file(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape"))
    try:
        async with stdio_server(stdin=stdin) as (read, write):
            await server.run(read, write, server.create_initialization_options())
    finally:
        for backend in backends.values():
            await backend.aclose()
        remove_redaction()
