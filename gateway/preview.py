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
import secrets
from dataclasses import replace
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from gateway.auth.settings import InboundAuth
from gateway.calls.files import DownloadedFile, FileFetcher, FileRefused
from gateway.config import FilesSettings, GatewayConfig, WidgetOptions
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


FILES_PATH = "/preview/files"
MAX_UPLOAD = 20_000_000


def preview_config(config: GatewayConfig, port: int) -> GatewayConfig:
    """`config` as the preview serves it: on 127.0.0.1:`port`, without inbound token checks, because the
    page calls `/mcp` itself, unauthenticated (loopback only, so nobody else can), and taking files the way
    ChatGPT hands them (`openai/fileParams`), from the preview's own uploads."""
    local = loopback(config, port)
    downloads = FilesSettings(allowed_hosts=("127.0.0.1",), allow_loopback=True)
    return replace(local, server=replace(local.server, auth=InboundAuth(mode="none"), files=downloads))


class Uploads(FileFetcher):
    """Files uploaded to the page, handed to tools by URL as ChatGPT hands files from the chat.

    The URLs are the preview's own (`http://127.0.0.1:<port>/preview/files/<id>`) and are answered from
    memory: nothing else can be fetched, so the preview opens no way out of the machine.
    """

    def __init__(self) -> None:
        super().__init__(FilesSettings(allowed_hosts=("127.0.0.1",), allow_loopback=True))
        self.stored: dict[str, DownloadedFile] = {}

    def add(self, content: bytes, media_type: str | None, name: str | None) -> str:
        key = secrets.token_urlsafe(12)
        self.stored[key] = DownloadedFile(content, media_type, name)
        return key

    async def fetch(self, url: Any) -> DownloadedFile:
        parts = urlsplit(url) if isinstance(url, str) else None
        own = parts is not None and parts.hostname in ("127.0.0.1", "localhost") and \
            parts.path.startswith(FILES_PATH + "/")
        found = self.stored.get(parts.path[len(FILES_PATH) + 1:]) if own and parts is not None else None
        if found is None:
            raise FileRefused("the preview hands tools only the files uploaded to its page")
        return found


def create_preview_app(gw: Gateway) -> Starlette:
    """The ordinary gateway app (`create_app`) with the development page added at `/preview`."""
    page = files("gateway").joinpath("preview.html").read_text(encoding="utf-8")
    headers = {"Content-Security-Policy": page_csp(gw.config.server.widgets), "Cache-Control": "no-store",
               "X-Content-Type-Options": "nosniff"}
    uploads = Uploads()

    async def preview(request: Request) -> HTMLResponse:
        return HTMLResponse(page, headers=headers)

    async def upload(request: Request) -> JSONResponse:
        content = await request.body()
        if len(content) > MAX_UPLOAD:
            return JSONResponse({"error": f"larger than {MAX_UPLOAD:,} bytes"}, status_code=413)
        key = uploads.add(content, request.headers.get("content-type"), request.headers.get("x-file-name"))
        return JSONResponse({"download_url": f"{str(request.base_url).rstrip('/')}{FILES_PATH}/{key}",
                             "file_id": key})

    app = create_app(gw, files=uploads)
    app.router.routes.append(Route(PAGE_PATH, preview, methods=["GET"]))
    app.router.routes.append(Route(FILES_PATH, upload, methods=["POST"]))
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
