"""OpenTelemetry traces (`server.tracing`; the exporter is the `otel` extra: `pip install '.[otel]'`).

A server span per MCP request, named `{mcp.method.name} {target}` (`tools/call get_pet`) with the MCP
semantic-convention attributes, and a client span per upstream HTTP request (method, URL template,
status) whose W3C trace context is sent on to the backend. A caller's trace is continued from
`params._meta.traceparent` (with `tracestate` and `baggage`), else from the HTTP `traceparent` header.
The SDK's own middleware makes the server spans of the requests it serves; the fast path makes those of
the requests it answers, with the same names and attributes. Arguments and results never become span
attributes. Off by default, and then nothing here runs at all.

Exporting follows the standard `OTEL_*` environment variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,
`OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_SCHEDULE_DELAY`, ...).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, StatusCode
from starlette.types import ASGIApp, Receive, Scope, Send

import gateway
from gateway.errors import ConfigError

SERVICE_NAME = "semantic-adapter-gateway"


class Tracing:
    """The process's tracer: made once (`configure`), shared by every app a reload builds."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer(SERVICE_NAME, gateway.__version__)

    @classmethod
    def configure(cls, where: str = "server.tracing") -> Tracing:
        """An SDK tracer provider exporting over OTLP/HTTP, installed as the global one (the MCP SDK's
        middleware takes its tracer from there). Raises `ConfigError` without the `otel` extra."""
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise ConfigError(where, "tracing needs the OTLP exporter: pip install 'semantic-adapter-gateway[otel]'"
                              ) from None
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", SERVICE_NAME),
                                    "service.version": gateway.__version__})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        return cls(provider)

    def shutdown(self) -> None:
        """Export what is still buffered."""
        self.provider.shutdown()

    @contextlib.contextmanager
    def server_span(self, method: str, params: Mapping[str, Any], version: str, request_id: Any
                    ) -> Iterator[trace.Span]:
        """The span of one MCP request the fast path answers: as the SDK's middleware names it."""
        name = params.get("name")
        target = name if isinstance(name, str) else None
        attributes: dict[str, Any] = {"mcp.method.name": method, "mcp.protocol.version": version,
                                      "jsonrpc.request.id": str(request_id)}
        if method == "tools/call":
            attributes["gen_ai.operation.name"] = "execute_tool"
            if target is not None:
                attributes["gen_ai.tool.name"] = target
        meta = params.get("_meta")
        parent = _extract(meta) if isinstance(meta, Mapping) else None
        with self.tracer.start_as_current_span(f"{method}{f' {target}' if target else ''}", kind=SpanKind.SERVER,
                                               attributes=attributes, context=parent) as span:
            yield span

    @contextlib.contextmanager
    def upstream_span(self, backend: str, method: str, template: str, url: str) -> Iterator[trace.Span]:
        """The client span of one upstream HTTP request (HTTP client conventions); `template` is the path
        template (`/pets/{petId}`), never the filled-in path."""
        attributes = {"http.request.method": method, "url.template": template, "server.address": url,
                      "gateway.backend": backend}
        with self.tracer.start_as_current_span(f"{method} {template}", kind=SpanKind.CLIENT,
                                               attributes=attributes) as span:
            yield span

    @staticmethod
    def trace_headers() -> list[tuple[str, str]]:
        """`traceparent` (and `tracestate`, `baggage`) of the current span, for the upstream request."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return list(carrier.items())

    @staticmethod
    def finish(span: trace.Span, *, status: int | None = None, error_type: str | None = None) -> None:
        if status is not None:
            span.set_attribute("http.response.status_code", status)
        if error_type:
            span.set_attribute("error.type", error_type)
            span.set_status(StatusCode.ERROR)


def _extract(carrier: Mapping[str, Any]) -> Any:
    """The trace context a carrier names, or None when it has no valid `traceparent` (ambient parenting)."""
    try:
        found = propagate.extract(carrier)
    except (ValueError, TypeError):
        return None
    return found if trace.get_current_span(found).get_span_context().is_valid else None


class TraceContext:
    """ASGI middleware (tracing on): the HTTP `traceparent` header becomes the ambient context, so a request
    without `params._meta.traceparent` still continues the caller's trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                       if k in (b"traceparent", b"tracestate", b"baggage")}
            found = _extract(headers) if headers else None
        if found is None:
            await self.app(scope, receive, send)
            return
        token = otel_context.attach(found)
        try:
            await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)
