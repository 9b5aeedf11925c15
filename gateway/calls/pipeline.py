"""The call path: validate -> authorize -> forward -> shape, as one plain async function.

It knows nothing of JSON-RPC or HTTP framing: the MCP server (or any leaner transport) hands it a
tool, the arguments and the caller's protocol era, and gets a `CallToolResult` back. Every failure
becomes an `isError` result; nothing here raises to the transport.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import mcp_types as types

from gateway.calls.forward import Backend, UpstreamError
from gateway.calls.request import ArgumentError, build_request
from gateway.calls.shape import error_result, shape
from gateway.calls.validate import describe
from gateway.tools.model import ToolSpec

log = logging.getLogger("gateway.calls")


def _log(tool: ToolSpec, outcome: str, started: float, upstream_status: int | None = None) -> None:
    log.info(json.dumps({
        "event": "tool_call", "tool": tool.name, "backend": tool.backend, "outcome": outcome,
        "upstream_status": upstream_status, "ms": round((time.perf_counter() - started) * 1000, 1),
    }))


async def call_tool(
    tool: ToolSpec, arguments: Mapping[str, Any] | None, backend: Backend, *, legacy: bool
) -> types.CallToolResult:
    started = time.perf_counter()
    args = dict(arguments or {})
    for name, value in tool.request.defaults.items():
        args.setdefault(name, value)
    if tool.validate is not None:
        violations = tool.validate(args)
        if violations:
            _log(tool, "invalid_arguments", started)
            return error_result(f"Invalid arguments for tool {tool.name!r}; nothing was sent to the backend:\n"
                                f"{describe(violations)}")
    try:
        request = build_request(tool.request, args)
    except ArgumentError as exc:
        _log(tool, "invalid_arguments", started)
        return error_result(f"Invalid arguments for tool {tool.name!r}; nothing was sent to the backend:\n"
                            f"- {exc.pointer}: {exc.message}")
    try:
        response = await backend.send(request, timeout=tool.timeout, max_bytes=tool.response.max_bytes)
    except UpstreamError as exc:
        _log(tool, f"upstream_{exc.kind}", started)
        return error_result(f"The call to {tool.request.method} {tool.request.path} failed: {exc.message}. "
                            "The backend may be down or slow; retrying later may help.")
    result = shape(tool, response, legacy=legacy)
    _log(tool, "error" if result.is_error else "ok", started, response.status)
    return result
