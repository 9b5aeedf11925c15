"""Serving: the MCP server (official SDK, low-level `Server`) over Streamable HTTP or stdio.

Tool descriptors and both `tools/list` answers (one per protocol era) are built once at start-up.
Clients of 2026-07-28 get output schemas as they are; older clients, whose `structuredContent`
must be an object, get non-object results wrapped as `{"result": ...}` with a matching schema.
Tools with a widget point at it in their `_meta`; the widgets are served as resources (gateway.widgets).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import mcp_types as types
from mcp.server import Server
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

import gateway
from gateway.auth.http import ResourceServer, ScopePolicy, current_identity
from gateway.auth.inbound import TokenVerifier
from gateway.auth.settings import Identity, InboundAuth
from gateway.calls.forward import Backend
from gateway.calls.pipeline import CallPolicy, build_policy, call_tool, rate_limited, write_audit
from gateway.config import ServerSettings
from gateway.discovery.catalog import CALL_TOOL, SEARCH_TOOL, Catalog
from gateway.discovery.metatools import MetaTools
from gateway.redact import install_log_redaction
from gateway.runtime import Gateway, open_backends
from gateway.tools.generate import legacy_output_schema
from gateway.tools.model import ToolSpec
from gateway.widgets import MCP_APP_MIME, UI_EXTENSION, WidgetRegistry

log = logging.getLogger("gateway.server")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def descriptor(tool: ToolSpec, *, legacy: bool, security: ScopePolicy | None = None,
               widgets: WidgetRegistry | None = None) -> types.Tool:
    """The tool as `tools/list` serves it.

    With inbound auth (`security`), `_meta.securitySchemes` says whether the tool needs sign-in and which
    scopes (ChatGPT reads it). Only `_meta` carries it: the SDK serialises results through each protocol
    version's wire models, which drop unknown top-level Tool fields, so a top-level copy would never arrive.
    `widgets` adds the widget keys (`ui`, `openai/outputTemplate`, ...); without it, only those the
    mapping states for the tool itself (visibility, status texts).
    """
    output = legacy_output_schema(tool) if legacy else tool.response.output_schema
    meta = {**tool.meta, **(widgets or WidgetRegistry()).tool_meta(tool)}
    if security is not None:
        meta["securitySchemes"] = security.security_schemes(tool.name)
    return types.Tool(
        name=tool.name,
        title=tool.title,
        description=tool.description,
        input_schema=dict(tool.input_schema),
        output_schema=dict(output) if output is not None else None,
        annotations=types.ToolAnnotations(
            title=tool.title,
            read_only_hint=tool.annotations.get("readOnlyHint"),
            destructive_hint=tool.annotations.get("destructiveHint"),
            idempotent_hint=tool.annotations.get("idempotentHint"),
            open_world_hint=tool.annotations.get("openWorldHint"),
        ),
        _meta=meta or None,
    )


def descriptors_json(tools: Mapping[str, ToolSpec], *, legacy: bool = False, security: ScopePolicy | None = None,
                     widgets: WidgetRegistry | None = None) -> list[dict[str, Any]]:
    """The descriptors exactly as they go on the wire (`gateway tools --json`).

    Without `widgets`, those of a server with the default `server.widgets` settings.
    """
    widgets = widgets if widgets is not None else WidgetRegistry.build(tools)
    return [descriptor(t, legacy=legacy, security=security, widgets=widgets)
            .model_dump(by_alias=True, mode="json", exclude_none=True) for t in tools.values()]


def served_tools(gw: Gateway, widgets: WidgetRegistry) -> dict[str, ToolSpec]:
    """The tools as served: a tool whose widget is not served (widgets turned off) is served as a plain tool."""
    return {name: tool if tool.widget is None or name in widgets.widgets else dataclasses.replace(tool, widget=None)
            for name, tool in gw.tools.items()}


def meta_security_schemes(security: ScopePolicy) -> dict[str, list[dict[str, Any]]]:
    """The meta-tools' `securitySchemes`: sign-in optional where some tool is public, else needed."""
    schemes = [{"type": "oauth2", "scopes": list(security.required)}]
    if security.open_discovery:
        schemes.insert(0, {"type": "noauth"})
    return {SEARCH_TOOL: schemes, CALL_TOOL: schemes}


@dataclasses.dataclass(frozen=True, slots=True)
class EndpointTools:
    """What one endpoint serves of its tools, built once: the tools, both eras' `tools/list`, the meta-tools."""

    catalog: Catalog
    widgets: WidgetRegistry
    listings: Mapping[bool, types.ListToolsResult]  # legacy (2025-11-25) -> answer
    meta: MetaTools | None = None

    @property
    def tools(self) -> Mapping[str, ToolSpec]:
        return self.catalog.tools

    @classmethod
    def build(cls, gw: Gateway, catalog: Catalog, security: ScopePolicy | None, widgets: WidgetRegistry
              ) -> EndpointTools:
        """`catalog`'s tools are taken from `gw.tools` as served (the gateway's tools may have been replaced)."""
        widgets = widgets.only(catalog.tools)
        every = served_tools(gw, widgets)
        tools = {name: every[name] for name in catalog.tools}
        catalog = dataclasses.replace(catalog, tools=tools)
        descriptors = {legacy: {name: descriptor(t, legacy=legacy, security=security, widgets=widgets)
                                for name, t in tools.items()} for legacy in (False, True)}
        meta = None
        if catalog.search:
            wire = {legacy: {name: d.model_dump(by_alias=True, mode="json", exclude_none=True)
                             for name, d in found.items()} for legacy, found in descriptors.items()}
            meta = MetaTools(catalog, wire, security.permits if security is not None else _anyone)
        meta_tools = meta.tools(meta_security_schemes(security) if security else None) if meta else []
        listed = [t.name for t in catalog.listed()]
        listings = {legacy: types.ListToolsResult(tools=[*meta_tools, *(descriptors[legacy][n] for n in listed)])
                    for legacy in (False, True)}
        return cls(catalog, widgets, listings, meta)

    def listing_json(self, legacy: bool) -> list[dict[str, Any]]:
        """The `tools/list` descriptors exactly as they go on the wire (`gateway tools --json`)."""
        return [t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in self.listings[legacy].tools]

    def listing_bytes(self, legacy: bool) -> int:
        return len(self.listings[legacy].model_dump_json(by_alias=True, exclude_none=True))


def _anyone(tool: str, identity: Identity) -> bool:
    return True


def create_mcp_server(gw: Gateway, backends: Mapping[str, Backend], security: ScopePolicy | None = None,
                      policy: CallPolicy | None = None, widgets: WidgetRegistry | None = None,
                      catalog: Catalog | None = None) -> Server[Any]:
    """The MCP server of one endpoint (`catalog`, default: the one serving every tool).

    `security` (inbound auth on) adds each tool's `securitySchemes` to its descriptor and decides which
    tools search mode shows a caller. `widgets` defaults to those built from the loaded tools and
    `server.widgets`. In search mode, `tools/list` serves `search_tools`, `call_tool` and the pinned tools;
    any of the endpoint's tools may still be called directly by name.
    """
    widgets = widgets if widgets is not None else gw.widgets
    served = EndpointTools.build(gw, catalog or gw.catalogs[0], security, widgets)
    return _server(served, backends, policy)


def _server(served: EndpointTools, backends: Mapping[str, Backend], policy: CallPolicy | None) -> Server[Any]:
    catalog, tools, widgets, listings, meta = served.catalog, served.tools, served.widgets, served.listings, served.meta
    resource_listing = types.ListResourcesResult(resources=widgets.resources(), ttl_ms=0, cache_scope="public")

    def is_legacy(ctx: Any) -> bool:
        return getattr(ctx, "protocol_version", None) not in MODERN_PROTOCOL_VERSIONS

    async def on_list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return listings[is_legacy(ctx)]

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        identity = current_identity()
        if meta is not None and params.name == SEARCH_TOOL:
            return await _search(meta, params.arguments, is_legacy(ctx), identity, policy or CallPolicy())
        arguments = params.arguments
        if meta is not None and params.name == CALL_TOOL:
            target = meta.target(arguments)
            if isinstance(target, types.CallToolResult):
                return target
            tool, arguments = target.tool, target.arguments
        else:
            tool = tools.get(params.name)
        if tool is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {params.name!r}")
        return await call_tool(tool, arguments, backends[tool.backend], legacy=is_legacy(ctx),
                               identity=identity, policy=policy)

    async def on_list_resources(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        return resource_listing

    async def on_read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        found = widgets.read(params.uri)
        if found is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown resource: {params.uri!r}")
        return found

    schemas = {n: t.input_schema for n, t in tools.items()} | {t.name: t.input_schema for t in listings[False].tools}

    def input_schema(name: str) -> Mapping[str, Any] | None:
        return schemas.get(name)

    server: Server[Any] = Server(
        catalog.name,
        version=gateway.__version__,
        instructions=catalog.instructions,
        get_tool_input_schema=input_schema,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
        # Registered only with widgets to serve, so the resources capability says the truth.
        on_list_resources=on_list_resources if widgets else None,
        on_read_resource=on_read_resource if widgets else None,
    )
    if widgets:
        server.extensions[UI_EXTENSION] = {"mimeTypes": [MCP_APP_MIME]}
    return server


async def _search(meta: MetaTools, arguments: Mapping[str, Any] | None, legacy: bool, identity: Identity,
                  policy: CallPolicy) -> types.CallToolResult:
    """`search_tools`, rate limited and audited like a call."""
    started = time.perf_counter()
    result = await rate_limited(policy, identity, SEARCH_TOOL)
    outcome = "rate_limited"
    if result is None:
        result = meta.search(arguments, legacy=legacy, identity=identity)
        outcome = "invalid_arguments" if result.is_error else "ok"
    found = len(result.structured_content["tools"]) if not result.is_error else 0
    write_audit("tool_search", identity, SEARCH_TOOL, outcome, started, policy, arguments, results=found)
    return result


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
               widgets: WidgetRegistry | None = None) -> Starlette:
    """The ASGI app: MCP at the configured path (and each toolset's beneath it), `/healthz` and `/readyz`.

    With `server.auth.mode: oauth` the MCP routes are guarded by bearer-token checks and the RFC 9728
    protected-resource metadata is served; with mode none nothing checks who calls (logged as a warning).
    `widgets` replaces the widgets built from the loaded tools (a test's own widget library, say).
    """
    backends = dict(backends) if backends is not None else open_backends(gw)
    settings = gw.config.server
    policy = build_policy(gw.config, backends)
    if settings.auth.mode != "oauth":
        log.warning("inbound auth is off (server.auth.mode: none): anyone who reaches %s can call every tool",
                    settings.path)
    verifier = TokenVerifier(_with_toolset_audiences(settings.auth, gw.catalogs)) \
        if settings.auth.mode == "oauth" else None
    servers: list[Server[Any]] = []
    routes: list[BaseRoute] = []
    middleware: list[Any] = []
    for catalog in gw.catalogs:
        security = scope_policy(gw, catalog)
        served = EndpointTools.build(gw, catalog, security, widgets if widgets is not None else gw.widgets)
        server = _server(served, backends, policy)
        mcp_app = server.streamable_http_app(
            streamable_http_path=catalog.path,
            stateless_http=True,
            json_response=True,
            transport_security=transport_security(settings),
            max_request_body_size=settings.max_request_bytes,
            host=settings.host,
        )
        servers.append(server)
        middleware = mcp_app.user_middleware
        endpoint_routes = list(mcp_app.routes)
        if verifier is not None and security is not None:
            resource = ResourceServer(settings.auth, security, mcp_path=catalog.path,
                                      max_body=settings.max_request_bytes, name=catalog.name, verifier=verifier,
                                      resource_url=_endpoint_url(settings.auth.resource_url, gw.catalogs[0], catalog))
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
            state["ready"] = True
            try:
                yield
            finally:
                state["ready"] = False
                for backend in backends.values():
                    await backend.aclose()
                if verifier is not None:
                    await verifier.aclose()
                remove_redaction()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        body = {"status": "ready" if state["ready"] else "starting", "tools": len(gw.tools)}
        return JSONResponse(body, status_code=200 if state["ready"] else 503)

    routes += [Route("/healthz", healthz), Route("/readyz", readyz)]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


async def serve_stdio(gw: Gateway) -> None:
    """Serve one client over stdio (local desktop clients)."""
    from mcp.server.stdio import stdio_server

    backends = open_backends(gw)
    policy = build_policy(gw.config, backends)
    server = create_mcp_server(gw, backends, policy=policy)
    remove_redaction = install_log_redaction(policy.redactor)
    try:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
    finally:
        for backend in backends.values():
            await backend.aclose()
        remove_redaction()
