"""The gateway process as operators run it: live reload (SIGHUP, `server.reload: watch`) and the SIGTERM drain.

Each test runs `gateway serve` as a real process, a real upstream on 127.0.0.1 and the SDK's `Client`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapters.petstore import MAPPING, SPEC
from tests.conftest import ServerThread, free_port, write_text
from tests.gateway_harness import connect

SLOW_SPEC = """
openapi: 3.0.3
info: {title: Slow, version: "1"}
paths:
  /slow:
    get:
      operationId: slow
      parameters: [{name: seconds, in: query, schema: {type: number}}]
      responses: {"200": {description: done, content: {application/json: {schema: {type: object}}}}}
"""


@contextlib.contextmanager
def serving(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`gateway serve ARGS` on a free port (`env` added to the environment); yields (process, MCP URL) once
    it answers."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--port", str(port), *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield process, f"http://127.0.0.1:{port}/mcp"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


async def tool_names(url: str) -> list[str]:
    async with connect(url) as client:
        return [t.name for t in (await client.list_tools()).tools]


async def until(predicate, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not await predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.2)


@pytest.mark.anyio
async def test_sighup_reloads_and_a_broken_mapping_keeps_the_old_tools(tmp_path: Path, petstore_backend) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING.read_text())
    upstream = f"{petstore_backend.url}/api"
    with serving("--spec", str(SPEC), "--mapping", str(mapping), "--upstream", upstream) as (process, url):
        assert "list_pets" in await tool_names(url)
        async with connect(url) as client:
            before = {r.uri for r in (await client.list_resources()).resources}
        mapping.write_text(MAPPING.read_text().replace("name: list_pets", "name: all_pets")
                           .replace("title: Get a pet", "title: Get one pet"))
        process.send_signal(signal.SIGHUP)
        await until(lambda: _has(url, "all_pets"))
        async with connect(url) as client:
            after = {r.uri for r in (await client.list_resources()).resources}
            result = await client.call_tool("all_pets", {})
        assert not result.is_error
        changed = {uri.split("/")[-1].rsplit("-", 1)[0] for uri in before ^ after}
        assert changed == {"list_pets", "all_pets", "get_pet"}  # only the widgets that changed get new URIs
        mapping.write_text("version: 1\ntools:\n  listPets:\n    nmae: typo\n")
        process.send_signal(signal.SIGHUP)
        await asyncio.sleep(3)
        assert "all_pets" in await tool_names(url)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert f"{mapping}:4" in err and "reload failed; still serving the previous tools" in err
    assert process.returncode == 0


async def _has(url: str, name: str) -> bool:
    return name in await tool_names(url)


@pytest.mark.anyio
async def test_watch_reloads_when_a_mapping_changes(tmp_path: Path, petstore_backend) -> None:
    mapping = write_text(tmp_path, MAPPING.read_text(), "mapping.yaml")
    config = write_text(tmp_path, f"""
        version: 1
        server: {{reload: watch}}
        backends:
          - {{name: pets, spec: {SPEC}, mapping: mapping.yaml, upstream: "{petstore_backend.url}/api"}}
        """, "gateway.yaml")
    with serving("--config", str(config)) as (_, url):
        assert "get_inventory" in await tool_names(url)
        mapping.write_text(MAPPING.read_text().replace("name: get_inventory", "name: count_pets"))
        await until(lambda: _has(url, "count_pets"))


def slow_upstream() -> Starlette:
    async def slow(request: Request) -> JSONResponse:
        await asyncio.sleep(float(request.query_params.get("seconds", "0")))
        return JSONResponse({"slept": request.query_params.get("seconds")})

    return Starlette(routes=[Route("/slow", slow)])


@pytest.mark.anyio
async def test_sigterm_drains_then_finishes_calls_in_flight_and_exits_0(tmp_path: Path) -> None:
    write_text(tmp_path, SLOW_SPEC, "slow.yaml")
    config = write_text(tmp_path, """
        version: 1
        server: {drain_seconds: 1.5, shutdown_grace_seconds: 10}
        backends:
          - {name: slow, spec: slow.yaml, upstream: "UPSTREAM"}
        """, "gateway.yaml")
    with ServerThread(slow_upstream()) as upstream:
        config.write_text(config.read_text().replace("UPSTREAM", upstream.url))
        with serving("--config", str(config)) as (process, url):
            base = url.rsplit("/", 1)[0]
            message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "slow", "arguments": {"seconds": 2.5}}}
            headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
            async with httpx2.AsyncClient(timeout=30) as http:
                call = asyncio.create_task(http.post(url, json=message, headers=headers))
                await asyncio.sleep(0.5)
                process.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.3)
                ready = await http.get(f"{base}/readyz")
                healthy = await http.get(f"{base}/healthz")
                answer = (await call).json()["result"]
            assert ready.status_code == 503 and healthy.status_code == 200
            assert not answer.get("isError") and answer["structuredContent"] == {"slept": "2.5"}
            _, err = process.communicate(timeout=60)
            with pytest.raises(httpx2.ConnectError):
                httpx2.get(f"{base}/healthz")
    assert process.returncode == 0, err
    assert "Traceback" not in err
