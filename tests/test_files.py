"""Files from the conversation: a host hands a tool a download URL, the gateway fetches it and sends the bytes.

A loopback https file server (a trustme certificate for `localhost`) holds a PNG; the tool call passes its URL as
ChatGPT does (`{"download_url": ..., "file_id": ...}`); the recording upstream must receive exactly those bytes as
the multipart part the spec describes. Every rule for downloads is tried against the real server.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trustme
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.config import FilesSettings, GatewayConfig, config_from_args
from gateway.runtime import load_gateway
from gateway.server import create_app
from tests.conftest import ServerThread, write_text
from tests.gateway_harness import connect, text_of

UPLOAD_SPEC = """
openapi: 3.0.3
info: {title: Uploads, version: "1"}
paths:
  /photos:
    post:
      operationId: upload_photo
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema:
              type: object
              required: [image]
              properties:
                image: {type: string, format: binary}
                caption: {type: string}
            encoding:
              image: {contentType: image/png}
      responses: {"200": {description: stored, content: {application/json: {schema: {type: object}}}}}
"""


def png() -> bytes:
    """A real 1x1 PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = (1).to_bytes(4, "big") * 2 + bytes([8, 6, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00\xff")) \
        + chunk(b"IEND", b"")


IMAGE = png()


class HttpsThread(ServerThread):
    """A ServerThread serving HTTPS on 127.0.0.1 with a certificate for `localhost`."""

    def __init__(self, app: Any, cert: Path) -> None:
        super().__init__(app)
        self.url = f"https://localhost:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="critical",
                                                    access_log=False, lifespan="off", ssl_certfile=str(cert)))
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]


def file_server() -> Starlette:
    async def image(request: Request) -> Response:
        return Response(IMAGE, media_type="image/png")

    async def big(request: Request) -> Response:
        return Response(b"x" * 5000, media_type="application/octet-stream")

    async def slow(request: Request) -> Response:
        await asyncio.sleep(5)
        return Response(IMAGE, media_type="image/png")

    async def away(request: Request) -> Response:
        return RedirectResponse("https://elsewhere.example/cat.png")

    async def hop(request: Request) -> Response:
        return RedirectResponse("/cat.png")

    return Starlette(routes=[Route("/cat.png", image), Route("/big.bin", big), Route("/slow.png", slow),
                             Route("/away", away), Route("/hop", hop)])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("files")
    ca = trustme.CA()
    cert = folder / "localhost.pem"
    ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(cert)
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(ca_file)
    with HttpsThread(file_server(), cert) as server:
        yield server.url, ca_file


class Recorder:
    def __init__(self) -> None:
        self.bodies: list[tuple[str, bytes]] = []

    def app(self) -> Starlette:
        async def photos(request: Request) -> JSONResponse:
            self.bodies.append((request.headers["content-type"], await request.body()))
            return JSONResponse({"stored": True})

        return Starlette(routes=[Route("/photos", photos, methods=["POST"])])


@contextlib.contextmanager
def gateway(tmp_path: Path, upstream: str, settings: FilesSettings | None) -> Iterator[str]:
    spec = write_text(tmp_path, UPLOAD_SPEC, "uploads.yaml")
    config: GatewayConfig = config_from_args(spec=str(spec), upstream=upstream)
    if settings is not None:
        config = replace(config, server=replace(config.server, files=settings))
    with ServerThread(create_app(load_gateway(config))) as server:
        yield f"{server.url}/mcp"


def allowed(ca_file: Path, **changes: Any) -> FilesSettings:
    return replace(FilesSettings(allowed_hosts=("localhost",), allow_loopback=True, ca_file=str(ca_file),
                                 max_bytes=4096, timeout_seconds=2), **changes)


@pytest.mark.anyio
async def test_a_file_from_the_chat_reaches_the_backend_as_its_multipart_part(files, tmp_path: Path) -> None:
    url, ca_file = files
    recorder = Recorder()
    with ServerThread(recorder.app()) as upstream, gateway(tmp_path, upstream.url, allowed(ca_file)) as mcp:
        async with connect(mcp) as client:
            [tool] = (await client.list_tools()).tools
            result = await client.call_tool("upload_photo", {"image": {"download_url": f"{url}/cat.png",
                                                                       "file_id": "file-1"}, "caption": "a cat"})
            hopped = await client.call_tool("upload_photo", {"image": {"download_url": f"{url}/hop"}})
    assert tool.meta["openai/fileParams"] == ["image"]
    branches = tool.input_schema["properties"]["image"]["anyOf"]
    assert branches[0]["contentEncoding"] == "base64" and branches[1]["required"] == ["download_url"]
    assert not result.is_error and not hopped.is_error, text_of(result)
    content_type, body = recorder.bodies[0]
    boundary = content_type.split("boundary=")[1]
    part = next(p for p in body.split(f"--{boundary}".encode()) if b'name="image"' in p)
    head, _, data = part.partition(b"\r\n\r\n")
    assert data[:-2] == IMAGE  # the exact bytes (the part ends with CRLF)
    assert b"Content-Type: image/png" in head and b'filename="image"' in head


@pytest.mark.anyio
@pytest.mark.parametrize(("where", "change", "reason"), [
    ("https://elsewhere.example/cat.png", {}, "downloads from 'elsewhere.example' are not allowed"),
    ("http://localhost:1/cat.png", {}, "over https only, not http"),
    ("{url}/away", {}, "redirected to another host"),
    ("{url}/cat.png", {"allow_loopback": False}, "resolves to a non-public address (127.0.0.1)"),
    ("{url}/big.bin", {}, "larger than the 4,096-byte limit"),
    ("{url}/slow.png", {}, "took longer than 2 s"),
    ("{url}/missing.png", {}, "answered 404"),
])
async def test_downloads_that_break_a_rule_are_refused_and_nothing_is_sent(files, tmp_path: Path, where: str,
                                                                          change: dict[str, Any], reason: str) -> None:
    url, ca_file = files
    recorder = Recorder()
    with ServerThread(recorder.app()) as upstream, gateway(tmp_path, upstream.url, allowed(ca_file, **change)) as mcp:
        async with connect(mcp) as client:
            result = await client.call_tool("upload_photo", {"image": {"download_url": where.format(url=url)}})
            still = await client.call_tool("upload_photo", {"image": "aGk="})  # base64 still works
    assert result.is_error and reason in text_of(result), text_of(result)
    assert "Nothing was sent to the backend" in text_of(result)
    assert not still.is_error and len(recorder.bodies) == 1


@pytest.mark.anyio
async def test_without_server_files_no_download_is_offered_or_made(files, tmp_path: Path) -> None:
    url, _ = files
    recorder = Recorder()
    with ServerThread(recorder.app()) as upstream, gateway(tmp_path, upstream.url, None) as mcp:
        async with connect(mcp) as client:
            [tool] = (await client.list_tools()).tools
            result = await client.call_tool("upload_photo", {"image": {"download_url": f"{url}/cat.png"}})
    assert "openai/fileParams" not in (tool.meta or {}) and "anyOf" not in tool.input_schema["properties"]["image"]
    assert result.is_error and re.search(r"does not download files; send the file's content as base64",
                                         text_of(result))
    assert recorder.bodies == []


@pytest.mark.anyio
async def test_doctor_checks_file_params_and_the_allow_list(tmp_path: Path, files) -> None:
    from gateway.doctor import diagnose_config

    _, ca_file = files
    spec = write_text(tmp_path, UPLOAD_SPEC, "uploads.yaml")
    config = config_from_args(spec=str(spec), upstream="http://127.0.0.1:9")
    without = [str(c) for c in await diagnose_config(config)]
    on = replace(config, server=replace(config.server, files=allowed(ca_file)))
    checked = [str(c) for c in await diagnose_config(on)]
    assert any("1 tools take files, but server.files.allowed_hosts is empty" in c for c in without)
    assert any("upload_photo fileParams" in c and "files from the chat go to image" in c for c in checked)
    assert any("downloads from localhost for 1 tools" in c for c in checked)
    assert any("allow_loopback is on" in c for c in checked)
