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
from starlette.routing import Route

import gateway
from gateway.auth.http import ResourceServer, ScopePolicy, current_identity
from gateway.calls.forward import Backend
from gateway.calls.pipeline import CallPolicy, build_policy, call_tool
from gateway.config import ServerSettings
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


def create_mcp_server(gw: Gateway, backends: Mapping[str, Backend], security: ScopePolicy | None = None,
                      policy: CallPolicy | None = None, widgets: WidgetRegistry | None = None) -> Server[Any]:
    """The MCP server; `security` (inbound auth on) adds each tool's `securitySchemes` to its descriptor.

    `widgets` defaults to those built from the loaded tools and `server.widgets`. A tool whose widget is
    not served (widgets turned off) is served as a plain tool, without widget data in its results.
    """
    widgets = widgets if widgets is not None else gw.widgets
    tools = {name: tool if tool.widget is None or name in widgets.widgets else dataclasses.replace(tool, widget=None)
             for name, tool in gw.tools.items()}
    listings = {
        legacy: types.ListToolsResult(tools=[descriptor(t, legacy=legacy, security=security, widgets=widgets)
                                             for t in tools.values()])
        for legacy in (False, True)
    }
    resource_listing = types.ListResourcesResult(resources=widgets.resources(), ttl_ms=0, cache_scope="public")

    def is_legacy(ctx: Any) -> bool:
        return getattr(ctx, "protocol_version", None) not in MODERN_PROTOCOL_VERSIONS

    async def on_list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return listings[is_legacy(ctx)]

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = tools.get(params.name)
        if tool is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {params.name!r}")
        return await call_tool(tool, params.arguments, backends[tool.backend], legacy=is_legacy(ctx),
                               identity=current_identity(), policy=policy)

    async def on_list_resources(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        return resource_listing

    async def on_read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        found = widgets.read(params.uri)
        if found is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown resource: {params.uri!r}")
        return found

    def input_schema(name: str) -> Mapping[str, Any] | None:
        tool = tools.get(name)
        return tool.input_schema if tool else None

    server: Server[Any] = Server(
        gw.name,
        version=gateway.__version__,
        instructions=gw.instructions,
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


def scope_policy(gw: Gateway) -> ScopePolicy | None:
    """Who may call what, when the gateway checks tokens (`server.auth.mode: oauth`); None otherwise."""
    auth = gw.config.server.auth
    return ScopePolicy.of(auth.required_scopes, gw.tools) if auth.mode == "oauth" else None


def create_app(gw: Gateway, backends: Mapping[str, Backend] | None = None, *,
               widgets: WidgetRegistry | None = None) -> Starlette:
    """The ASGI app: MCP at the configured path, `/healthz` and `/readyz`.

    With `server.auth.mode: oauth` the MCP route is guarded by bearer-token checks and the RFC 9728
    protected-resource metadata is served; with mode none nothing checks who calls (logged as a warning).
    `widgets` replaces the widgets built from the loaded tools (a test's own widget library, say).
    """
    backends = dict(backends) if backends is not None else open_backends(gw)
    settings = gw.config.server
    resource = None
    security = scope_policy(gw)
    if security is not None:
        resource = ResourceServer(settings.auth, security, mcp_path=settings.path,
                                  max_body=settings.max_request_bytes, name=gw.name)
    else:
        log.warning("inbound auth is off (server.auth.mode: none): anyone who reaches %s can call every tool",
                    settings.path)
    policy = build_policy(gw.config, backends)
    server = create_mcp_server(gw, backends, security, policy, widgets)
    mcp_app = server.streamable_http_app(
        streamable_http_path=settings.path,
        stateless_http=True,
        json_response=True,
        transport_security=transport_security(settings),
        max_request_body_size=settings.max_request_bytes,
        host=settings.host,
    )
    state = {"ready": False}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        remove_redaction = install_log_redaction(policy.redactor)
        async with server.session_manager.run():
            state["ready"] = True
            try:
                yield
            finally:
                state["ready"] = False
                for backend in backends.values():
                    await backend.aclose()
                if resource is not None:
                    await resource.aclose()
                remove_redaction()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        body = {"status": "ready" if state["ready"] else "starting", "tools": len(gw.tools)}
        return JSONResponse(body, status_code=200 if state["ready"] else 503)

    routes = [*mcp_app.routes, Route("/healthz", healthz), Route("/readyz", readyz)]
    if resource is not None:
        routes = [resource.guard(r) if isinstance(r, Route) and r.path == settings.path else r for r in routes]
        routes += resource.routes()
    return Starlette(routes=routes, middleware=mcp_app.user_middleware, lifespan=lifespan)


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
