"""`gateway preview`: the gateway plus a development page, `/preview`, for trying tools and their widgets.

The page (`preview.html`, one self-contained file) is a small MCP Apps host: it calls the gateway's own
`/mcp` endpoint, renders a tool's `ui://` widget in a sandboxed iframe and answers the widget the way
ChatGPT and other hosts do (MCP Apps postMessage, or the Apps SDK's `window.openai`), logging every
follow-up and tool call the widget makes. It exists only in this mode: `gateway serve` never routes
`/preview`, and the preview only listens on loopback.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from importlib.resources import files

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from gateway.auth.settings import InboundAuth
from gateway.config import GatewayConfig, WidgetOptions
from gateway.local import loopback, serve_local
from gateway.runtime import Gateway, load_gateway
from gateway.server import create_app

log = logging.getLogger("gateway.preview")

PAGE_PATH = "/preview"
_SOURCE = re.compile(r"[^\s;,']+")  # one CSP source expression: nothing that could end or add a directive


def page_csp(widgets: WidgetOptions) -> str:
    """The page's Content Security Policy. The widget iframe (srcdoc) inherits it, so a widget is held to what
    a host allows it: MCP Apps' restrictive default (inline code, data: images, no network) plus the origins
    `server.widgets` declares (`connect_domains` for fetches, `resource_domains` for scripts, styles,
    images, fonts and media)."""
    connect = " ".join(d for d in widgets.connect_domains if _SOURCE.fullmatch(d))
    loads = " ".join(d for d in widgets.resource_domains if _SOURCE.fullmatch(d))
    directives = {
        "default-src": "'none'",
        "script-src": f"'unsafe-inline' {loads}",
        "style-src": f"'unsafe-inline' {loads}",
        "img-src": f"'self' data: {loads}",
        "media-src": f"'self' data: {loads}",
        "font-src": f"'self' data: {loads}",
        "connect-src": f"'self' {connect}",
        "base-uri": "'none'",
        "form-action": "'none'",
    }
    return "; ".join(f"{name} {value.strip()}" for name, value in directives.items())


def preview_config(config: GatewayConfig, port: int) -> GatewayConfig:
    """`config` as the preview serves it: on 127.0.0.1:`port`, and without inbound token checks, because the
    page calls `/mcp` itself, unauthenticated (loopback only, so nobody else can)."""
    local = loopback(config, port)
    return replace(local, server=replace(local.server, auth=InboundAuth(mode="none")))


def create_preview_app(gw: Gateway) -> Starlette:
    """The ordinary gateway app (`create_app`) with the development page added at `/preview`."""
    page = files("gateway").joinpath("preview.html").read_text(encoding="utf-8")
    headers = {"Content-Security-Policy": page_csp(gw.config.server.widgets), "Cache-Control": "no-store",
               "X-Content-Type-Options": "nosniff"}

    async def preview(request: Request) -> HTMLResponse:
        return HTMLResponse(page, headers=headers)

    app = create_app(gw)
    app.router.routes.append(Route(PAGE_PATH, preview, methods=["GET"]))
    return app


async def serve_preview(config: GatewayConfig, port: int) -> None:
    """Serve the preview on loopback until interrupted. Raises `ConfigError` when the port is taken."""
    gw = load_gateway(preview_config(config, port))
    for warning in gw.warnings:
        log.warning("%s", warning)
    async with serve_local(create_preview_app(gw), port) as local:
        log.warning("development mode: preview of %d tools at %s%s (loopback only, no token checks; use `gateway "
                    "serve` in production)", len(gw.tools), local.url, PAGE_PATH)
        await local.task
