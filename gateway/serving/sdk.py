"""The official SDK's low-level MCP `Server` over an `Endpoint`: it serves every request the fast path
does not (initialize, resources, errors, 2026-07-28 requests) and the stdio transport."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp.server import Server
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

import gateway
from gateway.serving.endpoint import Endpoint
from gateway.widgets import MCP_APP_MIME, UI_EXTENSION

if TYPE_CHECKING:
    from gateway.observability.metrics import Metrics


def sdk_server(endpoint: Endpoint, metrics: Metrics | None = None) -> Server[Any]:
    """The endpoint as an SDK `Server`: its name and instructions, tools and (with widgets) resources."""

    def is_legacy(ctx: Any) -> bool:
        return getattr(ctx, "protocol_version", None) not in MODERN_PROTOCOL_VERSIONS

    async def on_list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return endpoint.list_tools(is_legacy(ctx))

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return await endpoint.call(params.name, params.arguments, is_legacy(ctx))

    async def on_list_resources(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        return endpoint.resource_listing

    async def on_read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        return endpoint.read_resource(params.uri)

    def input_schema(name: str) -> Mapping[str, Any] | None:
        return endpoint.input_schemas.get(name)

    widgets = endpoint.widgets
    server: Server[Any] = Server(
        endpoint.catalog.name,
        version=gateway.__version__,
        instructions=endpoint.catalog.instructions,
        get_tool_input_schema=input_schema,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
        # Registered only with widgets to serve, so the resources capability says the truth.
        on_list_resources=on_list_resources if widgets else None,
        on_read_resource=on_read_resource if widgets else None,
    )
    if widgets:
        server.extensions[UI_EXTENSION] = {"mimeTypes": [MCP_APP_MIME]}
    if metrics is not None:
        server.middleware.append(metrics.sdk_middleware())
    return server
