"""Discovery served for real: search mode's meta-tools, pinned tools, toolset endpoints, auto mode, the answer budget.

Everything goes through a real gateway (uvicorn on 127.0.0.1), the SDK's `Client` over Streamable HTTP (both
protocol eras) or stdio, and real upstreams: the petstore backend, or a recording upstream for GitHub's spec.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.devauth import AuthServer
from adapters.petstore import MAPPING, SPEC
from gateway.auth.settings import InboundAuth
from gateway.calls.shape import WIDGET_DATA_META, model_text
from gateway.config import DiscoverySettings, GatewayConfig, config_from_args, load_config
from gateway.errors import ConfigError
from gateway.runtime import load_gateway
from gateway.server import create_app
from tests.conftest import SHARED_SPECS, ServerThread, free_port, line, write_text
from tests.gateway_harness import connect, running_gateway, text_of

ERAS = pytest.mark.parametrize("legacy", [False, True], ids=["2026-07-28", "2025-11-25"])
GITHUB = SHARED_SPECS / "github--api.github.com.json"
needs_github = pytest.mark.skipif(not GITHUB.exists(), reason="the shared spec corpus (../shared/specs) is absent")


def discovery(mode: str, max_flat_tools: int = 40) -> Callable[[GatewayConfig], GatewayConfig]:
    def configure(config: GatewayConfig) -> GatewayConfig:
        return replace(config, server=replace(config.server, discovery=DiscoverySettings(mode, max_flat_tools)))
    return configure


@pytest.fixture(scope="module")
def petstore_upstream(petstore_backend: ServerThread) -> str:
    return f"{petstore_backend.url}/api"


class Recorder:
    """An upstream that records every request exactly as it arrived and answers `{}`."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, tuple[tuple[str, str], ...], bytes]] = []

    def app(self) -> Starlette:
        async def record(request: Request) -> Response:
            headers = tuple(sorted((k, v) for k, v in request.headers.items() if k not in ("host", "content-length")))
            path = request.scope["raw_path"].decode()  # as sent, percent-encoding included
            self.requests.append((request.method, path, request.url.query, headers, await request.body()))
            return JSONResponse({})

        return Starlette(routes=[Route("/{path:path}", record, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])])


@pytest.fixture(scope="module")
def github(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Recorder]]:
    """GitHub's spec (723 tools) served with no mapping, in front of a recording upstream."""
    if not GITHUB.exists():
        pytest.skip("the shared spec corpus (../shared/specs) is absent")
    recorder = Recorder()
    with ServerThread(recorder.app()) as upstream, running_gateway(str(GITHUB), upstream.url) as (gw, url):
        assert gw.catalogs[0].search  # auto: far more tools than max_flat_tools
        yield url, recorder


async def raw(url: str, method: str, params: dict[str, Any] | None = None, token: str | None = None
              ) -> httpx2.Response:
    """One stateless JSON-RPC POST of protocol 2025-11-25, as a load balancer sees it."""
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx2.AsyncClient() as http:
        return await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}},
                               headers=headers)


def found(result: Any) -> list[str]:
    assert not result.is_error, text_of(result)
    return [tool["name"] for tool in result.structured_content["tools"]]


# -- search mode on a 723-tool API -----------------------------------------------------------------------------


@needs_github
@pytest.mark.anyio
@ERAS
async def test_github_serves_two_small_meta_tools_that_find_plain_requests(github, legacy: bool) -> None:
    url, _ = github
    listing = await raw(url, "tools/list")
    assert listing.status_code == 200 and len(listing.content) < 20_000
    async with connect(url, legacy=legacy) as client:
        tools = (await client.list_tools()).tools
        assert [t.name for t in tools] == ["search_tools", "call_tool"]
        search, call = tools
        assert search.annotations.read_only_hint is True and search.input_schema["required"] == ["query"]
        assert call.annotations.destructive_hint is True and call.annotations.read_only_hint is False
        plain = {
            "create a pull request": "pulls_create",
            "list the issues of a repository": "issues_list-for-repo",
            "delete a repository": "repos_delete",
            "star a repository": "activity_star-repo-for-authenticated-user",
            "create a release": "repos_create-release",
        }
        for query, expected in plain.items():
            result = await client.call_tool("search_tools", {"query": query})
            assert expected in found(result), (query, found(result))
            assert len(found(result)) == 5 and expected in text_of(result)
        ten = await client.call_tool("search_tools", {"query": "pull request reviews", "limit": 10})
    descriptor = ten.structured_content["tools"][0]
    assert len(found(ten)) == 10 and {"name", "description", "inputSchema", "annotations"} <= set(descriptor)


@needs_github
@pytest.mark.anyio
@ERAS
async def test_call_tool_sends_exactly_the_request_of_a_direct_call(github, legacy: bool) -> None:
    url, recorder = github
    arguments = {"owner": "octo", "repo": "hello world", "title": "Fix it", "head": "feature", "base": "main"}
    async with connect(url, legacy=legacy) as client:
        recorder.requests.clear()
        through = await client.call_tool("call_tool", {"name": "pulls_create", "arguments": arguments})
        direct = await client.call_tool("pulls_create", arguments)
        assert len(recorder.requests) == 2 and recorder.requests[0] == recorder.requests[1]
        assert recorder.requests[0][:2] == ("POST", "/repos/octo/hello%20world/pulls")
        assert through.model_dump() == direct.model_dump()
        recorder.requests.clear()
        bad = {"owner": "octo", "repo": 7, "title": "x", "head": "y", "base": "z", "draft": "yes"}
        through = await client.call_tool("call_tool", {"name": "pulls_create", "arguments": bad})
        direct = await client.call_tool("pulls_create", bad)
    assert through.is_error and text_of(through) == text_of(direct) and "/repo" in text_of(through)
    assert recorder.requests == []


@needs_github
@pytest.mark.anyio
async def test_bad_meta_tool_input_gets_clear_errors_and_the_gateway_keeps_serving(github) -> None:
    url, recorder = github
    async with connect(url) as client:
        errors = {
            "empty query": await client.call_tool("search_tools", {"query": "   "}),
            "limit 0": await client.call_tool("search_tools", {"query": "issues", "limit": 0}),
            "limit 21": await client.call_tool("search_tools", {"query": "issues", "limit": 21}),
            "limit text": await client.call_tool("search_tools", {"query": "issues", "limit": "5"}),
            "arguments not an object": await client.call_tool("call_tool", {"name": "repos_get", "arguments": [1]}),
            "no name": await client.call_tool("call_tool", {"arguments": {}}),
            "unknown name": await client.call_tool("call_tool", {"name": "pulls_creat", "arguments": {}}),
            "extra key": await client.call_tool("call_tool", {"name": "repos_get", "owner": "x"}),
        }
        after = await client.call_tool("search_tools", {"query": "get a repository"})
    texts = {case: text_of(result) for case, result in errors.items()}
    assert all(result.is_error for result in errors.values()), texts
    assert "needs `query`" in texts["empty query"]
    assert all("from 1 to 20" in texts[case] for case in ("limit 0", "limit 21", "limit text"))
    assert "`arguments` must be an object" in texts["arguments not an object"]
    assert "needs `name`" in texts["no name"]
    assert "no tool 'pulls_creat'" in texts["unknown name"] and "pulls_create" in texts["unknown name"]
    assert "put the tool's own arguments inside `arguments`" in texts["extra key"]
    assert "repos_get" in found(after) and recorder.requests == []


# -- modes, pins and toolsets on the petstore ------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(("max_flat", "expected"), [(9, "flat"), (8, "search")])
async def test_auto_switches_above_max_flat_tools(petstore_upstream: str, max_flat: int, expected: str) -> None:
    with running_gateway(str(SPEC), petstore_upstream, str(MAPPING),
                         configure=discovery("auto", max_flat)) as (gw, url):
        async with connect(url) as client:
            names = [t.name for t in (await client.list_tools()).tools]
    assert gw.catalogs[0].discovery.mode == expected
    assert (names == ["search_tools", "call_tool"]) if expected == "search" else (len(names) == 9)


@pytest.mark.anyio
@ERAS
async def test_pinned_tools_are_listed_with_their_widgets_and_found_by_search(
        tmp_path: Path, petstore_upstream: str, legacy: bool) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING.read_text().replace("    title: List pets\n", "    title: List pets\n    pinned: true\n")
                       .replace("    title: Get a pet\n", "    title: Get a pet\n    keywords: [adopt, fetch]\n"))
    with running_gateway(str(SPEC), petstore_upstream, str(mapping), configure=discovery("search")) as (_, url):
        async with connect(url, legacy=legacy) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            searched = await client.call_tool("search_tools", {"query": "list the pets in the store"})
            by_keyword = await client.call_tool("search_tools", {"query": "adopt", "limit": 1})
            pinned = await client.call_tool("list_pets", {})
    assert list(tools) == ["search_tools", "call_tool", "list_pets"]
    assert tools["list_pets"].meta["ui"]["resourceUri"].startswith("ui://widget/list_pets-")
    first = searched.structured_content["tools"][0]
    assert first["name"] == "list_pets" and first["_meta"]["ui"] == tools["list_pets"].meta["ui"]
    assert found(by_keyword) == ["get_pet"]
    assert not pinned.is_error


TOOLSETS = """
version: 1
select:
  include: [{tag: pets}, {tag: store}]
tools:
  placeOrder: {name: place_order}
toolsets:
  pets:
    name: Pet records
    instructions: Only pets here.
    discovery: search
    include: [{tag: pets}]
    exclude: [{method: DELETE}]
  store:
    include: [{path: /store/*}]
"""


@pytest.mark.anyio
@ERAS
async def test_toolset_endpoints_serve_only_their_tools_in_their_own_mode(
        tmp_path: Path, petstore_upstream: str, legacy: bool) -> None:
    mapping = write_text(tmp_path, TOOLSETS, "mapping.yaml")
    with running_gateway(str(SPEC), petstore_upstream, str(mapping)) as (gw, url):
        async with connect(f"{url}/store", legacy=legacy) as client:
            store = [t.name for t in (await client.list_tools()).tools]
            inventory = await client.call_tool("getInventory", {})
            outside = await raw(f"{url}/store", "tools/call", {"name": "getPet", "arguments": {"petId": 1}})
        async with connect(f"{url}/pets", legacy=legacy) as client:
            pets = [t.name for t in (await client.list_tools()).tools]
            info = (client.server_info, client.instructions)
            searched = await client.call_tool("search_tools", {"query": "remove a pet", "limit": 20})
            through = await client.call_tool("call_tool", {"name": "getPet", "arguments": {"petId": 1}})
        async with connect(url, legacy=legacy) as client:
            every = [t.name for t in (await client.list_tools()).tools]
    assert sorted(store) == ["getInventory", "place_order"] and not inventory.is_error
    assert outside.json()["error"]["code"] == -32602
    assert pets == ["search_tools", "call_tool"] and "deletePet" not in found(searched) and "getPet" in found(searched)
    assert info[0] is not None and info[0].name == "Pet records" and info[1] == "Only pets here."
    assert not through.is_error and through.structured_content is not None
    assert len(every) == 9 and [c.key for c in gw.catalogs] == [None, "pets", "store"]


def test_toolsets_from_tags_and_gateway_tools_shows_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    mapping = write_text(tmp_path, "version: 1\ntoolsets: {from_tags: true}\n", "mapping.yaml")
    gw = load_gateway(config_from_args(spec=str(SPEC), mapping=str(mapping), upstream="http://127.0.0.1:1"))
    keys = {c.key: sorted(c.tools) for c in gw.catalogs}
    assert keys["store"] == ["getInventory", "placeOrder"] and "pets" in keys
    assert main(["tools", "--spec", str(SPEC), "--mapping", str(mapping), "--toolset", "store"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [row.split()[0] for row in printed] == ["placeOrder", "getInventory"]
    with pytest.raises(SystemExit, match="no toolset 'nope'; the toolsets: pets, store"):
        main(["tools", "--spec", str(SPEC), "--mapping", str(mapping), "--toolset", "nope"])


def test_a_toolset_that_selects_nothing_or_clashes_is_an_error_at_its_line(tmp_path: Path) -> None:
    mapping = write_text(tmp_path, """
        version: 1
        toolsets:
          pets:
            include: [{tag: pet}]
        """, "mapping.yaml")
    with pytest.raises(ConfigError) as empty:
        load_gateway(config_from_args(spec=str(SPEC), mapping=str(mapping), upstream="http://127.0.0.1:1"))
    assert f"{line(mapping, 'pets:')}: toolsets.pets: its rules match none of the 9 tools" in str(empty.value)
    assert "(did you mean 'pets'?)" in str(empty.value)
    other = write_text(tmp_path, "version: 1\ntoolsets:\n  shop:\n    include: [{tag: store}]\n", "other.yaml")
    config = write_text(tmp_path, f"""
        version: 1
        backends:
          - {{name: a, spec: {SPEC}, mapping: other.yaml, upstream: "http://127.0.0.1:1"}}
          - {{name: b, spec: {SPEC}, mapping: other.yaml, upstream: "http://127.0.0.1:2", tool_prefix: b_}}
        """, "gateway.yaml")
    with pytest.raises(ConfigError, match=r"toolsets\.shop: another backend's mapping already serves a toolset"):
        load_gateway(load_config(config))
    bad = write_text(tmp_path, "version: 1\ntoolsets:\n  Big Set:\n    include: [{tag: store}]\n", "bad.yaml")
    with pytest.raises(ConfigError, match=rf"{line(bad, 'Big Set')}: .*must be a URL path segment"):
        load_gateway(config_from_args(spec=str(SPEC), mapping=str(bad), upstream="http://127.0.0.1:1"))
    assert other.exists()


@pytest.mark.anyio
async def test_stdio_serves_search_mode(petstore_backend: ServerThread) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "gateway", "serve", "--stdio", "--discovery", "search", "--spec", str(SPEC), "--mapping",
              str(MAPPING), "--upstream", f"{petstore_backend.url}/api"],
    )
    async with Client(params) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        searched = await client.call_tool("search_tools", {"query": "how many pets are sold", "limit": 3})
        counted = await client.call_tool("call_tool", {"name": "get_inventory"})
    assert tools == ["search_tools", "call_tool"] and "get_inventory" in found(searched)
    assert not counted.is_error and set(counted.structured_content) == {"available", "pending", "sold"}


# -- with inbound auth -----------------------------------------------------------------------------------------

SCOPES = {"list_pets": ("pets:read",), "get_pet": ("pets:read",), "delete_pet": ("pets:write", "pets:admin")}


@pytest.fixture(scope="module")
def secured(petstore_backend: ServerThread) -> Iterator[tuple[AuthServer, str]]:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    with AuthServer(audience=resource) as auth:
        config = config_from_args(spec=str(SPEC), mapping=str(MAPPING), upstream=f"{petstore_backend.url}/api",
                                  discovery="search")
        inbound = InboundAuth(mode="oauth", issuer=auth.url, resource_url=resource, required_scopes=("mcp:use",))
        config = replace(config, server=replace(config.server, port=port, auth=inbound))
        loaded = load_gateway(config)
        tools = {name: replace(tool, scopes=SCOPES.get(name, ("other",))) for name, tool in loaded.tools.items()}
        with ServerThread(create_app(replace(loaded, tools=tools)), port=port) as server:
            yield auth, f"{server.url}/mcp"


@pytest.mark.anyio
async def test_a_token_without_a_tools_scope_neither_finds_nor_calls_it(secured) -> None:
    auth, url = secured
    reader = auth.issue(scopes=("mcp:use", "pets:read"))
    searched = await raw(url, "tools/call", {"name": "search_tools", "arguments": {"query": "delete a pet",
                                                                                     "limit": 20}}, reader)
    names = [t["name"] for t in searched.json()["result"]["structuredContent"]["tools"]]
    assert sorted(names) == ["get_inventory", "get_pet", "list_pets"]  # get_inventory is public (noauth)
    refused = await raw(url, "tools/call", {"name": "call_tool", "arguments": {"name": "delete_pet",
                                                                                 "arguments": {"petId": 1}}}, reader)
    direct = await raw(url, "tools/call", {"name": "delete_pet", "arguments": {"petId": 1}}, reader)
    assert refused.status_code == direct.status_code == 403
    assert refused.headers["www-authenticate"] == direct.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert 'scope="mcp:use pets:write pets:admin"' in refused.headers["www-authenticate"]
    allowed = await raw(url, "tools/call", {"name": "call_tool", "arguments": {"name": "get_pet",
                                                                                 "arguments": {"petId": 1}}}, reader)
    assert allowed.status_code == 200 and allowed.json()["result"].get("isError") is not True
    anonymous = await raw(url, "tools/call", {"name": "search_tools", "arguments": {"query": "pets", "limit": 20}})
    assert [t["name"] for t in anonymous.json()["result"]["structuredContent"]["tools"]] == ["get_inventory"]
    listed = (await raw(url, "tools/list", token=reader)).json()["result"]["tools"]
    schemes = {t["name"]: t["_meta"]["securitySchemes"] for t in listed}
    optional = [{"type": "noauth"}, {"type": "oauth2", "scopes": ["mcp:use"]}]  # some tool is public
    assert schemes == {"search_tools": optional, "call_tool": optional}


# -- the answer budget -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    [{"id": i, "name": f"pet {i}", "notes": "x" * 500} for i in range(300)],
    {"total_count": 300, "items": [{"id": i, "body": "y" * 300, "tags": list(range(50))} for i in range(300)]},
    {f"field{i}": "z" * 1000 for i in range(100)},
    "a single long string " * 5000,
    [[list(range(100)) for _ in range(30)] for _ in range(30)],
])
def test_a_preview_is_valid_json_within_the_budget(value: Any) -> None:
    text = model_text(value, 4096, ("per_page", "page"))
    preview = json.loads(text)
    assert len(text.encode()) <= 4096 and preview["truncated"] is True
    assert "per_page, page" in preview["note"] and "complete answer is in the structured result" in preview["note"]
    if isinstance(value, list):
        assert preview["count"] == len(value) and 0 < len(preview["preview"]) < len(value)
    assert model_text([1, 2, 3], 4096) == "[1,2,3]"


ITEMS_SPEC = """
openapi: 3.0.3
info: {title: Items, version: "1"}
paths:
  /items:
    get:
      operationId: list_items
      parameters:
        - {name: per_page, in: query, schema: {type: integer}}
        - {name: q, in: query, schema: {type: string}}
      responses:
        "200":
          description: the items
          content:
            application/json:
              schema:
                type: array
                items:
                  type: object
                  properties: {id: {type: integer}, name: {type: string}, notes: {type: string}}
"""


@pytest.mark.anyio
@ERAS
async def test_a_large_answer_goes_to_the_model_once(tmp_path: Path, legacy: bool) -> None:
    items = [{"id": i, "name": f"item {i}", "notes": "n" * 200} for i in range(500)]
    upstream = Starlette(routes=[Route("/items", lambda request: JSONResponse(items))])
    spec = write_text(tmp_path, ITEMS_SPEC, "items.yaml")
    mapping = write_text(tmp_path, "version: 1\ndefaults: {max_text_bytes: 8192}\n", "mapping.yaml")
    with ServerThread(upstream) as backend, running_gateway(str(spec), backend.url, str(mapping)) as (gw, url):
        async with connect(url, legacy=legacy) as client:
            result = await client.call_tool("list_items", {})
    assert gw.tools["list_items"].widget is not None  # a table: the widget reads structuredContent
    assert (result.structured_content == {"result": items}) if legacy else (result.structured_content == items)
    text = text_of(result)
    preview = json.loads(text)
    assert len(text.encode()) <= 8192 and preview["count"] == 500 and 0 < len(preview["preview"]) < 500
    assert preview["preview"][0]["id"] == 0 and "per_page, q" in preview["note"]
    assert WIDGET_DATA_META not in (result.meta or {})  # no second copy for the widget
    wire = len(json.dumps(items)) * 1.0
    sent = len(text) + len(json.dumps(result.structured_content))
    assert sent < 1.2 * wire  # the answer goes out about once, not three times
