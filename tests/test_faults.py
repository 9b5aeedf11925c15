"""Bad backends and hostile arguments: each gives a clear tool error and the gateway keeps serving."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable
from urllib.parse import unquote

import pytest
import yaml
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.calls.forward import Backend, UpstreamError
from gateway.calls.request import UpstreamRequest
from tests.conftest import ServerThread, free_port
from tests.gateway_harness import connect, running_gateway, text_of

pytestmark = pytest.mark.anyio

def _json_op(operation_id: str, schema: dict | None = None) -> dict:
    content = {"application/json": {"schema": schema}} if schema else None
    response = {"description": "ok", **({"content": content} if content else {})}
    return {"get": {"operationId": operation_id, "responses": {"200": response}}}


SPEC = yaml.safe_dump({
    "openapi": "3.0.3",
    "info": {"title": "Faulty", "version": "1"},
    "paths": {
        "/slow": _json_op("slow", {"type": "object"}),
        "/error": _json_op("error"),
        "/html": _json_op("html", {"type": "object", "properties": {"a": {"type": "string"}}}),
        "/huge": _json_op("huge", {"type": "array", "items": {"type": "string"}}),
        "/badjson": _json_op("badjson", {"type": "object", "properties": {"a": {"type": "string"}}}),
        "/mismatch": _json_op("mismatch", {"type": "object", "properties": {"items": {"type": "array"}}}),
        "/redirect": _json_op("redirect"),
        "/trickle": _json_op("trickle", {"type": "object"}),
        "/truncated": _json_op("truncated", {"type": "object"}),
        "/reset": _json_op("reset", {"type": "object"}),
        "/bomb": _json_op("bomb", {"type": "array", "items": {"type": "string"}}),
        "/badgzip": _json_op("badgzip", {"type": "object"}),
        "/garbage": _json_op("garbage", {"type": "object"}),
        "/badutf8": _json_op("badutf8", {"type": "object"}),
        "/files/{name}": {"get": {
            "operationId": "getFile",
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "q", "in": "query", "schema": {"type": "string"}},
                {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
            ],
            "responses": _json_op("x", {"type": "object"})["get"]["responses"],
        }},
    },
})

MAPPING = """
version: 1
tools:
  slow: {timeout: 0.5}
  trickle: {timeout: 1}
  huge: {}
defaults:
  max_response_bytes: 20000
"""


def faulty_backend() -> Starlette:
    async def slow(request):
        await asyncio.sleep(3)
        return JSONResponse({})

    async def error(request):
        return JSONResponse({"error": {"message": "database exploded", "code": "E42"}}, status_code=500)

    async def html(request):
        return Response("<html><body>Login required</body></html>", media_type="text/html")

    async def huge(request):
        return JSONResponse(["x" * 100] * 1000)

    async def badjson(request):
        return Response('{"a": "unterminated', media_type="application/json")

    async def mismatch(request):
        return JSONResponse({"items": "many"})

    async def redirect(request):
        return Response(status_code=302, headers={"location": "http://evil.example/steal"})

    async def files(request):
        return JSONResponse({"raw_path": request.scope["raw_path"].decode("latin-1"),
                             "query": request.scope["query_string"].decode("latin-1"),
                             "trace": request.headers.get("x-trace")})

    return Starlette(routes=[Route("/slow", slow), Route("/error", error), Route("/html", html),
                             Route("/huge", huge), Route("/badjson", badjson), Route("/mismatch", mismatch),
                             Route("/redirect", redirect), Route("/files/{name:path}", files)])


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faulty")
    (folder / "spec.yaml").write_text(SPEC)
    (folder / "mapping.yaml").write_text(MAPPING)
    with ServerThread(faulty_backend()) as backend, \
            running_gateway(str(folder / "spec.yaml"), backend.url, str(folder / "mapping.yaml")) as (_, url):
        yield url


async def test_timeout(faulty):
    async with connect(faulty) as client:
        result = await client.call_tool("slow", {})
        assert result.is_error and "timed out" in text_of(result)
        assert not (await client.call_tool("getFile", {"name": "ok"})).is_error  # still serving


async def test_backend_500_message_is_passed_on(faulty):
    async with connect(faulty) as client:
        result = await client.call_tool("error", {})
    assert result.is_error
    assert "500" in text_of(result) and "database exploded" in text_of(result)


async def test_html_instead_of_json(faulty):
    async with connect(faulty) as client:
        result = await client.call_tool("html", {})
    assert result.is_error and "text/html" in text_of(result)


async def test_huge_body_is_capped(faulty):
    async with connect(faulty) as client:
        result = await client.call_tool("huge", {})
    assert result.is_error and "20,000-byte limit" in text_of(result)


async def test_invalid_json(faulty):
    async with connect(faulty) as client:
        result = await client.call_tool("badjson", {})
    assert result.is_error and "invalid JSON" in text_of(result)


async def test_answer_breaking_output_schema_is_an_error_not_a_protocol_failure(faulty):
    async with connect(faulty) as client:
        result = await client.call_tool("mismatch", {})
    assert result.is_error and "/items" in text_of(result) and "many" in text_of(result)


async def test_redirect_not_followed(faulty):
    async with connect(faulty) as client:
        result = await client.call_tool("redirect", {})
    assert result.is_error and "302" in text_of(result) and "does not follow" in text_of(result)


@pytest.mark.parametrize("value", ["../admin", "a/b", "x?y=1", "#frag", "%2e%2e%2fetc", "..%2F", "évé",
                                   "http://evil.example/", "a b"])
async def test_path_values_stay_in_their_segment(faulty, value):
    async with connect(faulty) as client:
        result = await client.call_tool("getFile", {"name": value})
    if result.is_error:  # refused ("." and ".." segments): nothing reached the backend
        assert "/name" in text_of(result)
        return
    raw = result.structured_content["raw_path"]
    assert raw.startswith("/files/")
    segment = raw[len("/files/"):]
    assert "/" not in segment and "?" not in segment and "#" not in segment
    assert unquote(segment) == value


async def test_header_injection_refused(faulty):
    async with connect(faulty) as client:
        result = await client.call_tool("getFile", {"name": "a", "X-Trace": "x\r\nInjected: yes"})
        assert result.is_error and "X-Trace" in text_of(result)
        ok = await client.call_tool("getFile", {"name": "a", "X-Trace": "abc", "q": "a&b=c"})
    assert ok.structured_content["trace"] == "abc"
    assert ok.structured_content["query"] == "q=a%26b%3Dc"


def _resetting_server() -> tuple[int, threading.Event]:
    """A TCP server that accepts and closes every connection without answering."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    stop = threading.Event()

    def run() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()
        sock.close()

    threading.Thread(target=run, daemon=True).start()
    return sock.getsockname()[1], stop


async def test_connection_reset_and_refused(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    port, stop = _resetting_server()
    try:
        with running_gateway(str(tmp_path / "spec.yaml"), f"http://127.0.0.1:{port}") as (_, url):
            async with connect(url) as client:
                result = await client.call_tool("error", {})
        assert result.is_error and "broke off" in text_of(result)
    finally:
        stop.set()
    with running_gateway(str(tmp_path / "spec.yaml"), f"http://127.0.0.1:{free_port()}") as (_, url):
        async with connect(url) as client:
            result = await client.call_tool("error", {})
    assert result.is_error and "could not connect" in text_of(result)
    assert "Traceback" not in json.dumps(result.model_dump(mode="json"))


# -- misbehaving servers, on raw sockets: what a well-behaved framework cannot be made to send ------------------

Handler = Callable[[asyncio.StreamWriter], Awaitable[None]]


def _gzip_bomb(megabytes: int) -> bytes:
    """A JSON array of one string of `megabytes` MB, gzipped (about 1000:1), built without holding it inflated."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"x" * 1_000_000
    parts = [packer.compress(b'["')]
    parts += [packer.compress(chunk) for _ in range(megabytes)]
    return b"".join([*parts, packer.compress(b'"]'), packer.flush()])


BOMB = _gzip_bomb(50)


def _head(length: int | None, *extra: str) -> bytes:
    lines = ["HTTP/1.1 200 OK", "Content-Type: application/json", *extra]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _trickle(writer: asyncio.StreamWriter) -> None:
    writer.write(_head(1000))
    for _ in range(1000):  # one byte every 0.2 s: 200 s for the whole body
        writer.write(b" ")
        await writer.drain()
        await asyncio.sleep(0.2)


async def _truncated(writer: asyncio.StreamWriter) -> None:
    writer.write(_head(1000) + b'{"a": "only the beginning')  # the Content-Length lies: the body stops here


async def _reset(writer: asyncio.StreamWriter) -> None:
    writer.write(_head(None, "Transfer-Encoding: chunked") + b"400\r\n" + b"x" * 100)
    await writer.drain()
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST, not FIN
    writer.transport.abort()


async def _bomb(writer: asyncio.StreamWriter) -> None:
    writer.write(_head(len(BOMB), "Content-Encoding: gzip") + BOMB)


async def _badgzip(writer: asyncio.StreamWriter) -> None:
    body = b"this is not gzip at all" * 10
    writer.write(_head(len(body), "Content-Encoding: gzip") + body)


async def _garbage(writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")


async def _fine(writer: asyncio.StreamWriter) -> None:
    body = b'{"items": []}'
    writer.write(_head(len(body)) + body)


async def _badutf8(writer: asyncio.StreamWriter) -> None:
    body = b'{"a": "\xff\xfe not UTF-8"}'
    writer.write(_head(len(body)) + body)


class RawServer:
    """An HTTP/1.1 server on loopback, written on raw streams, in its own thread and event loop: `routes` maps a
    path to what is written back (then the connection is closed)."""

    def __init__(self, routes: dict[str, Handler]) -> None:
        self.routes = routes
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode().partition("?")[0]
            await self.routes[path](writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            writer.close()

    def __enter__(self) -> str:
        self.thread.start()
        start = asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.server = asyncio.run_coroutine_threadsafe(start, self.loop).result(5)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self.server is not None
            self.server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


RAW_ROUTES = {"/trickle": _trickle, "/truncated": _truncated, "/reset": _reset, "/bomb": _bomb,
              "/badgzip": _badgzip, "/garbage": _garbage, "/badutf8": _badutf8, "/mismatch": _fine}


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    folder = tmp_path_factory.mktemp("raw")
    (folder / "spec.yaml").write_text(SPEC)
    (folder / "mapping.yaml").write_text(MAPPING)
    with RawServer(RAW_ROUTES) as backend, \
            running_gateway(str(folder / "spec.yaml"), backend, str(folder / "mapping.yaml")) as (_, url):
        yield backend, url


async def test_a_trickling_backend_is_cut_off_at_the_tool_timeout(raw):
    """The tool timeout bounds the whole exchange, body included: a backend sending a byte every 0.2 s does not
    hold the call (1 s timeout) for the 200 s it would take."""
    async with connect(raw[1]) as client:
        started = time.monotonic()
        result = await client.call_tool("trickle", {})
        elapsed = time.monotonic() - started
    assert result.is_error and "timed out waiting for the backend after 1 s" in text_of(result)
    assert 0.9 < elapsed < 3, elapsed


async def test_trickling_body_times_out_in_the_forwarder():
    with RawServer(RAW_ROUTES) as url:
        backend = Backend("raw", url)
        started = time.monotonic()
        try:
            with pytest.raises(UpstreamError) as raised:
                await backend.send(UpstreamRequest("GET", "/trickle", "", ()), timeout=1, max_bytes=10_000)
        finally:
            await backend.aclose()
    assert raised.value.kind == "timeout" and 0.9 < time.monotonic() - started < 2.5


@pytest.mark.parametrize("tool", ["truncated", "reset", "badgzip", "garbage"])
async def test_a_backend_breaking_off_mid_answer(raw, tool):
    async with connect(raw[1]) as client:
        result = await client.call_tool(tool, {})
        assert result.is_error and "broke off" in text_of(result), text_of(result)
        assert "Traceback" not in text_of(result)
        assert not (await client.call_tool("mismatch", {})).is_error  # still serving


async def test_invalid_utf8_is_invalid_json(raw):
    async with connect(raw[1]) as client:
        result = await client.call_tool("badutf8", {})
    assert result.is_error and "invalid JSON" in text_of(result)


async def test_a_gzip_bomb_is_capped_not_inflated(raw):
    async with connect(raw[1]) as client:
        result = await client.call_tool("bomb", {})
    assert result.is_error and "20,000-byte limit" in text_of(result)


async def test_a_gzip_bomb_inflates_only_about_as_far_as_the_cap():
    with RawServer(RAW_ROUTES) as url:
        backend = Backend("raw", url)
        tracemalloc.start()
        try:
            response = await backend.send(UpstreamRequest("GET", "/bomb", "", ()), timeout=5, max_bytes=20_000)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            await backend.aclose()
    assert response.truncated and len(response.content) == 20_000 and response.content.startswith(b'["xxx')
    assert peak < 5_000_000, peak  # far from the 50 MB the body inflates to
