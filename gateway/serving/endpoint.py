"""One MCP endpoint's tools as served, and the handlers every transport calls.

`EndpointTools` is what an endpoint serves of its catalog, built once at start: the tools (with the
widgets actually served), both protocol eras' `tools/list` answers and, in search mode, the meta-tools.
`Endpoint` answers the requests (`tools/list`, `tools/call`, the widget resources) the same way for
every transport: the SDK's Streamable HTTP app, the fast path and stdio all call it, and it hands tool
calls to `gateway.calls.pipeline.call_tool`, which knows nothing of any transport.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Mapping
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from gateway.auth.http import ScopePolicy, current_identity
from gateway.auth.settings import Identity
from gateway.calls.forward import Backend
from gateway.calls.pipeline import CallPolicy, call_tool, rate_limited, write_audit
from gateway.discovery.catalog import CALL_TOOL, SEARCH_TOOL, Catalog
from gateway.discovery.metatools import MetaTools
from gateway.runtime import Gateway
from gateway.tools.generate import legacy_output_schema
from gateway.tools.model import ToolSpec
from gateway.widgets import WidgetRegistry

FILE_REFERENCE = {
    "type": "object",
    "description": "A file the host holds, as ChatGPT passes one: its download URL (and id).",
    "properties": {"download_url": {"type": "string", "format": "uri"}, "file_id": {"type": "string"}},
    "required": ["download_url"],
}
"""What a file argument also takes when the gateway downloads files (`server.files`)."""


def descriptor(tool: ToolSpec, *, legacy: bool, security: ScopePolicy | None = None,
               widgets: WidgetRegistry | None = None, files: bool = False) -> types.Tool:
    """The tool as `tools/list` serves it.

    With inbound auth (`security`), `_meta.securitySchemes` says whether the tool needs sign-in and which
    scopes (ChatGPT reads it). Only `_meta` carries it: the SDK serialises results through each protocol
    version's wire models, which drop unknown top-level Tool fields, so a top-level copy would never arrive.
    `widgets` adds the widget keys (`ui`, `openai/outputTemplate`, ...); without it, only those the
    mapping states for the tool itself (visibility, status texts). With `files` (the gateway downloads
    files), a file argument also takes a download URL and is listed in `_meta["openai/fileParams"]`.
    """
    output = legacy_output_schema(tool) if legacy else tool.response.output_schema
    meta = {**tool.meta, **(widgets or WidgetRegistry()).tool_meta(tool)}
    if security is not None:
        meta["securitySchemes"] = security.security_schemes(tool.name)
    input_schema = dict(tool.input_schema)
    if files and tool.file_params:
        meta["openai/fileParams"] = list(tool.file_params)
        properties = dict(input_schema["properties"])
        for name in tool.file_params:
            properties[name] = {"anyOf": [properties[name], FILE_REFERENCE]}
        input_schema["properties"] = properties
    return types.Tool(
        name=tool.name,
        title=tool.title,
        description=tool.description,
        input_schema=input_schema,
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

        files = gw.config.server.files.enabled

        def described(name: str, legacy: bool) -> types.Tool:
            return descriptor(tools[name], legacy=legacy, security=security, widgets=widgets, files=files)

        meta = None
        if catalog.search:
            # Search results describe the few tools found; their wire form is made the first time one is.
            @functools.cache
            def wire(name: str, legacy: bool) -> dict[str, Any]:
                return described(name, legacy).model_dump(by_alias=True, mode="json", exclude_none=True)

            meta = MetaTools(catalog, wire, security.permits if security is not None else _anyone)
        meta_tools = meta.tools(meta_security_schemes(security) if security else None) if meta else []
        listed = [t.name for t in catalog.listed()]
        listings = {legacy: types.ListToolsResult(tools=[*meta_tools, *(described(n, legacy) for n in listed)])
                    for legacy in (False, True)}
        return cls(catalog, widgets, listings, meta)

    def listing_json(self, legacy: bool) -> list[dict[str, Any]]:
        """The `tools/list` descriptors exactly as they go on the wire (`gateway tools --json`)."""
        return [t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in self.listings[legacy].tools]

    def listing_bytes(self, legacy: bool) -> int:
        return len(self.listings[legacy].model_dump_json(by_alias=True, exclude_none=True))


def _anyone(tool: str, identity: Identity) -> bool:
    return True


class Endpoint:
    """The request handlers of one endpoint, shared by every transport."""

    def __init__(self, served: EndpointTools, backends: Mapping[str, Backend], policy: CallPolicy | None) -> None:
        self.served = served
        self.catalog = served.catalog
        self.widgets = served.widgets
        self.backends = backends
        self.policy = policy
        self.resource_listing = types.ListResourcesResult(resources=served.widgets.resources(), ttl_ms=0,
                                                          cache_scope="public")
        self.input_schemas = {n: t.input_schema for n, t in served.tools.items()} | {
            t.name: t.input_schema for t in served.listings[False].tools}

    def list_tools(self, legacy: bool) -> types.ListToolsResult:
        return self.served.listings[legacy]

    async def call(self, name: str, arguments: Mapping[str, Any] | None, legacy: bool) -> types.CallToolResult:
        """One `tools/call`. Raises `MCPError` (-32602) for a tool this endpoint does not serve."""
        identity = current_identity()
        meta = self.served.meta
        if meta is not None and name == SEARCH_TOOL:
            return await _search(meta, arguments, legacy, identity, self.policy or CallPolicy())
        if meta is not None and name == CALL_TOOL:
            target = meta.target(arguments)
            if isinstance(target, types.CallToolResult):
                return target
            tool, arguments = target.tool, target.arguments
        else:
            tool = self.served.tools.get(name)
        if tool is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {name!r}")
        result = await call_tool(tool, arguments, self.backends[tool.backend], legacy=legacy, identity=identity,
                                 policy=self.policy)
        return self.widgets.with_embedded_widget(result, tool.name)  # server.widgets.embed_in_results

    def read_resource(self, uri: str) -> types.ReadResourceResult:
        found = self.widgets.read(uri)
        if found is None:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown resource: {uri!r}", data={"uri": uri})
        return found


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
