"""Bad backends and hostile arguments: each gives a clear tool error and the gateway keeps serving."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from urllib.parse import unquote

import pytest
import yaml
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

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
