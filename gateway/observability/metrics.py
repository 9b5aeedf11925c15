"""Prometheus metrics (`server.metrics`), named after the OpenTelemetry MCP semantic conventions.

`mcp.server.operation.duration` becomes `mcp_server_operation_duration_seconds{mcp_method_name,
gen_ai_tool_name, error_type}`; the gateway's own count calls by tool, backend and outcome (the audit
line's outcomes), time upstream requests by backend and status class, and count concurrency and rate-limit
refusals, token checks by result, JWKS fetches and reloads. Calls in flight per backend are read from the
concurrency caps when Prometheus scrapes, so the hot path pays nothing for them.

Every label value comes from the configuration (tool and backend names), a fixed vocabulary (methods,
outcomes, results) or "other": never from what a caller sent, so the number of series stays bounded.
One `Metrics` lives as long as the process (its registry survives reloads).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from mcp.shared.exceptions import MCPError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

METHODS = frozenset({
    "initialize", "ping", "tools/list", "tools/call", "resources/list", "resources/read", "resources/templates/list",
    "prompts/list", "prompts/get", "server/discover", "notifications/initialized", "completion/complete",
    "logging/setLevel",
})
_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """The gateway's metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.operations = Histogram(
            "mcp_server_operation_duration_seconds", "MCP requests served, by method, tool and error type.",
            ["mcp_method_name", "gen_ai_tool_name", "error_type"], buckets=_LATENCY, registry=r)
        self.calls = Counter("gateway_tool_calls", "Tool calls by tool, backend and outcome.",
                             ["tool", "backend", "outcome"], registry=r)
        self.upstream = Histogram("gateway_upstream_request_duration_seconds",
                                  "Requests to backends by backend and status class (2xx, ..., error).",
                                  ["backend", "status_class"], buckets=_LATENCY, registry=r)
        self.in_flight = Gauge("gateway_upstream_in_flight", "Calls in flight per backend.", ["backend"], registry=r)
        self.busy = Counter("gateway_concurrency_refusals", "Calls refused by a backend's concurrency cap.",
                            ["backend"], registry=r)
        self.rate_limited = Counter("gateway_rate_limit_refusals", "Calls refused by a rate limit, by tool.",
                                    ["tool"], registry=r)
        self.tokens = Counter("gateway_token_checks", "Inbound token checks by result.", ["result"], registry=r)
        self.jwks = Counter("gateway_jwks_fetches", "JWKS fetches from the authorization server by result.",
                            ["result"], registry=r)
        self.upstream_tokens = Counter("gateway_upstream_token_fetches",
                                       "Answers of backends' token and identity endpoints, by status class.",
                                       ["backend", "status_class"], registry=r)
        self.reloads = Counter("gateway_reloads", "Reloads of the configuration by result.", ["result"], registry=r)
        self.tool_names: frozenset[str] = frozenset()

    def serve(self, tools: Iterable[str], caps: Mapping[str, Callable[[], int]]) -> None:
        """What the current gateway serves: its tool names (label values) and how to read calls in flight."""
        self.tool_names = frozenset(tools)
        for backend, read in caps.items():
            self.in_flight.labels(backend).set_function(read)

    def tool_label(self, name: object) -> str:
        return name if isinstance(name, str) and name in self.tool_names else "other"

    def operation(self, method: str, tool: object, error_type: str, seconds: float) -> None:
        self.operations.labels(method if method in METHODS else "other",
                               self.tool_label(tool) if method == "tools/call" else "", error_type).observe(seconds)

    def call_finished(self, tool: str, backend: str, outcome: str) -> None:
        self.calls.labels(tool, backend, outcome).inc()
        if outcome == "busy":
            self.busy.labels(backend).inc()
        elif outcome == "rate_limited":
            self.rate_limited.labels(tool).inc()

    def token_answer(self, backend: str, status: int) -> None:
        self.upstream_tokens.labels(backend, f"{status // 100}xx").inc()

    def upstream_finished(self, backend: str, status: int | None, seconds: float) -> None:
        self.upstream.labels(backend, f"{status // 100}xx" if status else "error").observe(seconds)

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    def sdk_middleware(self) -> Callable[[Any, Any], Awaitable[Any]]:
        """A middleware for the SDK's `Server`: times every request the SDK serves (the fast path times its own)."""

        async def observe(ctx: Any, call_next: Any) -> Any:
            started = time.perf_counter()
            error_type = ""
            try:
                result = await call_next(ctx)
            except MCPError as exc:
                error_type = str(exc.error.code)
                raise
            except Exception as exc:
                error_type = type(exc).__qualname__ if type(exc).__module__.startswith("mcp") else "error"
                raise
            else:
                if isinstance(result, dict) and result.get("isError") is True:
                    error_type = "tool_error"
                return result
            finally:
                tool = ctx.params.get("name") if isinstance(ctx.params, dict) else None
                self.operation(ctx.method, tool, error_type, time.perf_counter() - started)

        return observe
