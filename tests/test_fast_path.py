"""The fast path answers exactly as the SDK would, and hands everything it does not serve to the SDK.

Two gateways over the same petstore backend, one with `server.fast_path` and one without, get the same raw
HTTP requests (uvicorn on 127.0.0.1, httpx2); every answer must be identical: status, content type, body bytes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx2
import mcp_types as types
import orjson
import pytest

from adapters.petstore import MAPPING, SPEC
from gateway.calls.shape import parse_json
from gateway.config import config_from_args
from gateway.runtime import load_gateway
from gateway.server import create_app
from gateway.serving.fast import FastPath, _call_result, _dumps, _wire
from tests.conftest import ServerThread

LEGACY = ("2025-11-25", "2025-06-18")


class Counting:
    """Wraps an app (the SDK's behind a fast path, say): how many requests reached it."""

    def __init__(self, app: Any, kind: str | None = None) -> None:
        self.app = app
        self.kind = kind  # count only scopes of this type (None: all)
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += self.kind in (None, scope["type"])
        await self.app(scope, receive, send)


@contextlib.contextmanager
def gateway(upstream: str, *, fast: bool, discovery: str = "flat") -> Iterator[tuple[str, Counting | None]]:
    config = config_from_args(spec=str(SPEC), mapping=str(MAPPING), upstream=upstream, discovery=discovery)
    config = replace(config, server=replace(config.server, fast_path=fast, max_request_bytes=4096))
    app = create_app(load_gateway(config))
    counting = None
    for route in app.routes:
        if isinstance(getattr(route, "endpoint", None), FastPath):
            counting = route.endpoint.sdk = Counting(route.endpoint.sdk)
    assert (counting is not None) == fast
    with ServerThread(app) as server:
        yield f"{server.url}/mcp", counting


@pytest.fixture(scope="module")
def pair(petstore_backend: ServerThread) -> Iterator[tuple[str, str, Counting]]:
    upstream = f"{petstore_backend.url}/api"
    with gateway(upstream, fast=True) as (fast, counting), gateway(upstream, fast=False) as (sdk, _):
        assert counting is not None
        yield fast, sdk, counting


def headers(version: str, **extra: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": version, **extra}


def rpc(method: str, params: dict[str, Any] | None = None, request_id: Any = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


HOT = {
    "ping": rpc("ping"),
    "ping with params": rpc("ping", {}),
    "tools/list": rpc("tools/list"),
    "a call": rpc("tools/call", {"name": "get_pet", "arguments": {"petId": 1}}),
    "a string id": rpc("tools/call", {"name": "get_pet", "arguments": {"petId": 2}}, "req-é-7"),
    "a list answer": rpc("tools/call", {"name": "list_pets", "arguments": {"limit": 3}}),
    "invalid arguments": rpc("tools/call", {"name": "get_pet", "arguments": {"petId": "one"}}),
    "no arguments": rpc("tools/call", {"name": "get_inventory"}),
    "a missing pet": rpc("tools/call", {"name": "get_pet", "arguments": {"petId": 999999}}),
    "non-ASCII": rpc("tools/call", {"name": "list_pets", "arguments": {"status": "vérifié"}}),
    "an integer beyond 64 bits": rpc("tools/call", {"name": "get_pet", "arguments": {"petId": 2**70 + 1}}),
    "a negative integer beyond 64 bits": rpc("tools/call", {"name": "get_pet", "arguments": {"petId": -(2**63) - 1}}),
    "with _meta": rpc("tools/call", {"name": "get_pet", "arguments": {"petId": 1}, "_meta": {"progressToken": 5}}),
}
HANDED_ON = {
    "unknown tool": rpc("tools/call", {"name": "nope", "arguments": {}}),
    "initialize": rpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                     "clientInfo": {"name": "t", "version": "1"}}),
    "resources/list": rpc("resources/list"),
    "a cursor": rpc("tools/list", {"cursor": "x"}),
    "arguments not an object": rpc("tools/call", {"name": "get_pet", "arguments": [1]}),
    "a bad progress token": rpc("tools/call", {"name": "get_pet", "_meta": {"progressToken": [1]}}),
    "an extra member": {**rpc("ping"), "extra": 1},
    "a null id": rpc("ping", request_id=None),
    "a boolean id": rpc("ping", request_id=True),
    "a notification": {"jsonrpc": "2.0", "method": "notifications/initialized"},
    "a batch": [rpc("ping"), rpc("ping", request_id=2)],
    "not JSON-RPC": {"hello": "world"},
}


async def both(pair: tuple[str, str, Counting], content: bytes, head: dict[str, str]) -> tuple[Any, Any]:
    fast, sdk, _ = pair
    async with httpx2.AsyncClient(timeout=30) as http:
        return (await http.post(fast, content=content, headers=head),
                await http.post(sdk, content=content, headers=head))


def same(a: httpx2.Response, b: httpx2.Response) -> None:
    assert (a.status_code, a.headers.get("content-type"), a.content) == \
        (b.status_code, b.headers.get("content-type"), b.content)


@pytest.mark.anyio
@pytest.mark.parametrize("version", LEGACY)
@pytest.mark.parametrize("case", list(HOT))
async def test_hot_requests_are_answered_on_the_fast_path_byte_for_byte(pair, version: str, case: str) -> None:
    before = pair[2].calls
    content = json.dumps(HOT[case], ensure_ascii=False).encode()  # orjson cannot write integers beyond 64 bits
    fast, sdk = await both(pair, content, headers(version))
    same(fast, sdk)
    assert fast.status_code == 200 and "result" in fast.json()
    assert pair[2].calls == before  # the SDK never saw it


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(HANDED_ON))
async def test_everything_else_goes_to_the_sdk_and_gets_its_answer(pair, case: str) -> None:
    before = pair[2].calls
    fast, sdk = await both(pair, orjson.dumps(HANDED_ON[case]), headers("2025-11-25"))
    same(fast, sdk)
    assert pair[2].calls == before + 1


@pytest.mark.anyio
@pytest.mark.parametrize(("case", "content", "head"), [
    ("invalid JSON", b"{not json", headers("2025-11-25")),
    ("a foreign Host", b'{"jsonrpc":"2.0","id":1,"method":"ping"}', headers("2025-11-25", Host="evil.example")),
    ("a foreign Origin", b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
     headers("2025-11-25", Origin="http://evil.example")),
    ("JSON not accepted", b'{"jsonrpc":"2.0","id":1,"method":"ping"}', headers("2025-11-25", Accept="text/html")),
    ("another content type", b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
     headers("2025-11-25", **{"Content-Type": "text/plain"})),
    ("too large", b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{"x":"' + b"y" * 5000 + b'"}}}',
     headers("2025-11-25")),
    ("an unknown version", b'{"jsonrpc":"2.0","id":1,"method":"ping"}', headers("1999-01-01")),
])
async def test_requests_that_fail_a_check_get_the_sdks_refusal(pair, case: str, content: bytes,
                                                               head: dict[str, str]) -> None:
    fast, sdk = await both(pair, content, head)
    same(fast, sdk)
    assert fast.status_code >= 400 or "error" in fast.json(), case


@pytest.mark.anyio
async def test_search_mode_meta_tools_take_the_fast_path_too(petstore_backend: ServerThread) -> None:
    upstream = f"{petstore_backend.url}/api"
    with gateway(upstream, fast=True, discovery="search") as (fast, counting), \
            gateway(upstream, fast=False, discovery="search") as (sdk, _):
        assert counting is not None
        async with httpx2.AsyncClient(timeout=30) as http:
            for message in (rpc("tools/list"),
                            rpc("tools/call", {"name": "search_tools", "arguments": {"query": "pets"}}),
                            rpc("tools/call", {"name": "call_tool", "arguments": {"name": "get_pet",
                                                                                  "arguments": {"petId": 1}}})):
                content = orjson.dumps(message)
                same(await http.post(fast, content=content, headers=headers("2025-11-25")),
                     await http.post(sdk, content=content, headers=headers("2025-11-25")))
        assert counting.calls == 0


@pytest.mark.anyio
async def test_the_endpoint_is_served_directly_and_everything_else_by_the_starlette_app(petstore_backend) -> None:
    """The MCP path skips the Starlette app's router and exception layers; other paths still go through it, and
    an exception that escapes the endpoint is still a 500 with the request logged by the server."""
    config = config_from_args(spec=str(SPEC), mapping=str(MAPPING), upstream=f"{petstore_backend.url}/api")
    app = create_app(load_gateway(config))
    fast = next(route.endpoint for route in app.routes if isinstance(getattr(route, "endpoint", None), FastPath))
    starlette = app.app = Counting(app.app, kind="http")  # type: ignore[assignment]
    with ServerThread(app) as server:
        async with httpx2.AsyncClient(timeout=30) as http:
            call = orjson.dumps(rpc("tools/call", {"name": "get_pet", "arguments": {"petId": 1}}))
            answer = await http.post(f"{server.url}/mcp", content=call, headers=headers("2025-11-25"))
            assert answer.status_code == 200 and not answer.json()["result"]["isError"]
            initialize = orjson.dumps(rpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                                         "clientInfo": {"name": "t", "version": "1"}}))
            assert (await http.post(f"{server.url}/mcp", content=initialize,
                                    headers=headers("2025-11-25"))).status_code == 200  # the SDK, directly too
            assert starlette.calls == 0
            assert (await http.get(f"{server.url}/healthz")).status_code == 200
            assert (await http.post(f"{server.url}/mcp/", content=call, headers=headers("2025-11-25"))).status_code \
                in (307, 404)  # not the endpoint's exact path: the Starlette app answers as it would
            assert starlette.calls == 2

            async def broken(scope: Any, receive: Any, send: Any) -> None:
                raise RuntimeError("a bug")

            fast.sdk = broken
            failed = await http.post(f"{server.url}/mcp", content=initialize, headers=headers("2025-11-25"))
            assert (failed.status_code, failed.text) == (500, "Internal Server Error")


@pytest.mark.parametrize("result", [
    types.CallToolResult(content=[types.TextContent(type="text", text="é ✓")], structured_content={"a": [1, 2.5]},
                         is_error=False, _meta={"io.semantic-adapter-gateway/widgetData": [{"x": None}]}),
    types.CallToolResult(content=[types.TextContent(type="text", text="failed")], is_error=True),
    types.CallToolResult(content=[], structured_content={"result": []}),
    types.CallToolResult(content=[types.TextContent(type="text", text="{}")],
                         structured_content={"id": 123456789012345678901234567890}),  # beyond 64 bits
])
@pytest.mark.parametrize("version", LEGACY)
def test_the_direct_result_serialiser_writes_what_the_sdks_writes(result: types.CallToolResult, version: str) -> None:
    wire = _wire("tools/call", version, result)
    sdk = types.JSONRPCResponse(jsonrpc="2.0", id=1, result=wire).model_dump_json(by_alias=True, exclude_unset=True)
    assert b'{"jsonrpc":"2.0","id":1,"result":' + _dumps(_call_result(result)) + b"}" == sdk.encode()


@pytest.mark.parametrize("text", ["[18446744073709551616]", "[-9223372036854775809]",
                                  '{"a": [1, -123456789012345678901]}', '["12345678901234567890", 7]'])
def test_json_integers_that_may_not_fit_64_bits_are_read_exactly(text: str) -> None:
    assert repr(parse_json(text)) == repr(json.loads(text))  # repr: 2**64 == 2.0**64, but not as text


def test_deep_json_read_by_the_standard_library_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        parse_json("[" * 100_000 + "12345678901234567890" + "]" * 100_000)
