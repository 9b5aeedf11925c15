"""The README's runnable examples: `gateway demo --auth`, called by the SDK Client and by MCP Inspector."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import TOOLS_HOME, NpmUnavailable, free_port, npm_tool

INSPECTOR = ("@modelcontextprotocol/inspector", "2.12.0")


@pytest.fixture(scope="module")
def demo() -> Iterator[dict[str, str]]:
    """`gateway demo --auth` in a subprocess: the gateway URL, the backend URL and the token it printed."""
    port, backend, auth = free_port(), free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--auth", "--port", str(port), "--backend-port", str(backend),
         "--auth-port", str(auth)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    try:
        deadline = time.monotonic() + 60
        token = None
        while token is None:
            line = process.stdout.readline()
            if not line or time.monotonic() > deadline:
                pytest.fail("gateway demo --auth did not print a token:\n" + "".join(output))
            output.append(line)
            if re.fullmatch(r"ey[\w-]+\.[\w-]+\.[\w-]+\s*", line):
                token = line.strip()
        url = f"http://127.0.0.1:{port}/mcp"
        while httpx2.get(f"http://127.0.0.1:{port}/readyz").status_code != 200:
            time.sleep(0.05)
        yield {"url": url, "token": token, "backend": f"http://127.0.0.1:{backend}/api"}
    finally:
        process.terminate()
        process.wait(10)


@pytest.mark.anyio
async def test_demo_with_auth_end_to_end(demo):
    # The backend demands an API key only the gateway holds; callers need a token for protected tools.
    assert httpx2.get(f"{demo['backend']}/pets").status_code == 401
    anonymous = httpx2.post(demo["url"], json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                               "params": {"name": "list_pets", "arguments": {}}},
                            headers={"accept": "application/json, text/event-stream",
                                     "mcp-protocol-version": "2025-11-25"})
    assert anonymous.status_code == 401 and 'scope="pets:read"' in anonymous.headers["www-authenticate"]
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {demo['token']}"})
    async with Client(streamable_http_client(demo["url"], http_client=http)) as client:
        pets = await client.call_tool("list_pets", {"limit": 2})
        tools = (await client.list_tools()).tools
    assert not pets.is_error and len(pets.structured_content) == 2
    schemes = {t.name: t.meta["securitySchemes"] for t in tools}
    assert schemes["get_inventory"] == [{"type": "noauth"}]
    assert schemes["delete_pet"] == [{"type": "oauth2", "scopes": ["pets:write"]}]


def test_mcp_inspector_calls_the_protected_gateway(demo, tmp_path: Path):
    try:
        inspector = npm_tool(TOOLS_HOME / "inspector", ["node@22", f"{INSPECTOR[0]}@{INSPECTOR[1]}"], *INSPECTOR,
                             "mcp-inspector")
    except NpmUnavailable as exc:
        pytest.skip(str(exc))
    env = {**os.environ, "PATH": f"{inspector.parent}{os.pathsep}{os.environ['PATH']}"}  # its own Node 22

    def inspect(*args: str, token: str | None = demo["token"]) -> subprocess.CompletedProcess[str]:
        auth = ["--header", f"Authorization: Bearer {token}"] if token else []
        return subprocess.run([str(inspector), "--cli", demo["url"], *args, *auth], capture_output=True, text=True,
                              timeout=120, env=env, cwd=tmp_path)

    listed = inspect("--method", "tools/list")
    assert listed.returncode == 0, listed.stderr
    assert "list_pets" in {t["name"] for t in json.loads(listed.stdout)["tools"]}
    called = inspect("--method", "tools/call", "--tool-name", "get_pet", "--tool-arg", "petId=1")
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["structuredContent"]["name"] == "Rex"
    refused = inspect("--method", "tools/call", "--tool-name", "get_pet", "--tool-arg", "petId=1", token=None)
    assert refused.returncode == 3 and "auth_required" in refused.stdout + refused.stderr  # 3: sign-in needed


@pytest.mark.anyio
async def test_serve_with_auth_flags_needs_no_config_file(petstore_backend):
    """The common case: `gateway serve --spec S --upstream U --auth-issuer ISSUER --resource-url URL`."""
    from adapters.devauth import AuthServer
    from adapters.petstore import MAPPING, SPEC

    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    with AuthServer(audience=url) as authority:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--spec", str(SPEC), "--mapping", str(MAPPING),
             "--upstream", f"{petstore_backend.url}/api", "--port", str(port), "--auth-issuer", authority.url,
             "--resource-url", url, "--required-scopes", "mcp"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx2.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("gateway serve did not become ready")
                time.sleep(0.05)
            metadata = httpx2.get(f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp").json()
            assert metadata["authorization_servers"] == [authority.url] and metadata["resource"] == url
            without_mcp = authority.issue(audience=url, scopes=["pets:read"])
            with_mcp = authority.issue(audience=url, scopes=["mcp", "pets:read"])
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": "get_pet", "arguments": {"petId": 1}}}
            headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25"}
            refused = httpx2.post(url, json=body, headers={**headers, "authorization": f"Bearer {without_mcp}"})
            assert refused.status_code == 403
            assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
            assert 'scope="mcp pets:read"' in refused.headers["www-authenticate"]
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {with_mcp}"})
            async with Client(streamable_http_client(url, http_client=http)) as client:
                result = await client.call_tool("get_pet", {"petId": 1})
            assert not result.is_error and result.structured_content["id"] == 1
        finally:
            process.terminate()
            process.wait(10)
