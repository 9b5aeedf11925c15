"""What operators see: JSON log lines with request ids (and, further down, metrics and traces)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.petstore import MAPPING, SPEC
from tests.conftest import ServerThread, debian_tool, free_port, write_text
from tests.gateway_harness import connect
from tests.test_lifecycle import serving

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.anyio
async def test_json_logs_carry_the_request_id_of_the_trace(tmp_path: Path, petstore_backend) -> None:
    config = write_text(tmp_path, f"""
        version: 1
        server: {{log_format: json}}
        backends:
          - {{name: pets, spec: {SPEC}, mapping: {MAPPING}, upstream: "{petstore_backend.url}/api"}}
        """, "gateway.yaml")
    with serving("--config", str(config)) as (process, url):
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
        async with httpx2.AsyncClient() as http:
            traced = await http.post(url, headers={**headers, "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
                                     json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                           "params": {"name": "get_inventory", "arguments": {}}})
            untraced = await http.post(url, headers=headers, json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                                                   "params": {"name": "nope", "arguments": {}}})
        assert traced.status_code == untraced.status_code == 200
        process.terminate()
        _, err = process.communicate(timeout=60)
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]  # every line is one JSON object
    assert all({"time", "level", "logger"} <= set(line) for line in lines)
    audit = [line for line in lines if line.get("event") == "tool_call"]
    assert [(a["tool"], a["outcome"], a["request_id"]) for a in audit] == [("get_inventory", "ok", TRACE_ID)]
    assert any(line["logger"] == "gateway.server" and "message" in line for line in lines)


def test_the_http_servers_own_lines_are_json_too(tmp_path: Path, petstore_backend) -> None:
    """A port already taken: uvicorn's error is a JSON line like every other, not its own text format."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_text(tmp_path, f"""
            version: 1
            server: {{log_format: json, port: {port}}}
            backends:
              - {{name: pets, spec: {SPEC}, mapping: {MAPPING}, upstream: "{petstore_backend.url}/api"}}
            """, "gateway.yaml")
        done = subprocess.run([sys.executable, "-m", "gateway", "serve", "--config", str(config)],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert any(line["logger"] == "uvicorn.error" and "address already in use" in line["message"] for line in lines)


PROMETHEUS_CONFIG = """
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: gateway
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""


@contextlib.contextmanager
def prometheus(binary: str, folder: Path, target_port: int) -> Iterator[str]:
    """Debian's Prometheus on loopback, scraping the gateway's metrics port every second; yields its URL."""
    port = free_port()
    config = folder / "prometheus.yml"
    config.write_text(PROMETHEUS_CONFIG.format(port=target_port))
    process = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
                                f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # it answers 503 until its storage is open
            with contextlib.suppress(httpx2.HTTPError):
                if httpx2.get(f"{url}/-/ready", timeout=5).status_code == 200:
                    break
            assert process.poll() is None and time.monotonic() < deadline, "Prometheus did not become ready"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.anyio
async def test_prometheus_scrapes_the_call_just_made(tmp_path: Path, petstore_backend) -> None:
    binary = debian_tool("/usr/bin/prometheus", "prometheus")
    if binary is None:
        pytest.skip("Debian's prometheus is not installed (apt-get install prometheus)")
    metrics_port = free_port()
    config = write_text(tmp_path, f"""
        version: 1
        server: {{metrics: {{enabled: true, port: {metrics_port}}}}}
        backends:
          - {{name: pets, spec: {SPEC}, mapping: {MAPPING}, upstream: "{petstore_backend.url}/api"}}
        """, "gateway.yaml")
    with serving("--config", str(config)) as (_, url), prometheus(binary, tmp_path, metrics_port) as prom:
        async with connect(url) as client:
            assert not (await client.call_tool("get_inventory", {})).is_error
            assert (await client.call_tool("get_pet", {"petId": "x"})).is_error
        query = 'gateway_tool_calls_total{tool="get_inventory",backend="pets",outcome="ok"}'
        async with httpx2.AsyncClient(timeout=10) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    answer = (await http.get(f"{prom}/api/v1/query", params={"query": query})).json()
                except (httpx2.HTTPError, ValueError):  # not answering yet, or a 503 page
                    answer = {}
                found = answer.get("data", {}).get("result", [])
                if found or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            assert found and float(found[0]["value"][1]) == 1.0, answer
            text = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
    assert 'gateway_tool_calls_total{backend="pets",outcome="invalid_arguments",tool="get_pet"} 1.0' in text
    assert 'mcp_server_operation_duration_seconds_count{error_type="",gen_ai_tool_name="get_inventory",' \
           'mcp_method_name="tools/call"} 1.0' in text
    assert 'gateway_upstream_request_duration_seconds_count{backend="pets",status_class="2xx"} 1.0' in text
    assert 'gateway_upstream_in_flight{backend="pets"} 0.0' in text


@pytest.mark.anyio
async def test_metrics_on_the_main_port_count_token_checks_and_bound_their_labels(petstore_backend) -> None:
    from adapters.devauth import AuthServer
    from gateway.auth.settings import InboundAuth
    from gateway.config import MetricsSettings, config_from_args
    from gateway.runtime import load_gateway
    from gateway.server import create_app
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    with AuthServer(audience=resource) as auth:
        config = config_from_args(spec=str(SPEC), mapping=str(MAPPING), upstream=f"{petstore_backend.url}/api")
        config = replace(config, server=replace(config.server, port=port, metrics=MetricsSettings(enabled=True),
                                                auth=InboundAuth(mode="oauth", issuer=auth.url, resource_url=resource)))
        with ServerThread(create_app(load_gateway(config)), port=port) as server:
            headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
            call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": "get_inventory", "arguments": {}}}
            unknown = {**call, "params": {"name": "x" * 40, "arguments": {}}}
            async with httpx2.AsyncClient() as http:
                good = auth.issue(scopes=["pets:read"])
                for token in (good, good, auth.issue(expires_in=-120), auth.issue(audience="https://elsewhere")):
                    await http.post(server.url + "/mcp", json=call, headers={**headers,
                                                                            "Authorization": f"Bearer {token}"})
                await http.post(server.url + "/mcp", json=unknown, headers={**headers,
                                                                           "Authorization": f"Bearer {good}"})
                text = (await http.get(server.url + "/metrics")).text
    assert 'gateway_token_checks_total{result="ok"} 3.0' in text
    assert 'gateway_token_checks_total{result="expired"} 1.0' in text
    assert 'gateway_token_checks_total{result="bad_audience"} 1.0' in text
    assert 'gateway_jwks_fetches_total{result="ok"} 1.0' in text
    assert "x" * 40 not in text and 'gen_ai_tool_name="other"' in text  # a caller's tool name is never a label


ECHO_SPEC = """
openapi: 3.0.3
info: {title: Echo, version: "1"}
paths:
  /echo/{word}:
    get:
      operationId: echo
      parameters: [{name: word, in: path, required: true, schema: {type: string, maxLength: 10}}]
      responses: {"200": {description: ok, content: {application/json: {schema: {type: object}}}}}
"""


class Collector:
    """An OTLP/HTTP receiver: the spans exporters post to `/v1/traces`, decoded from protobuf."""

    def __init__(self) -> None:
        self.spans: list[Any] = []

    def app(self) -> Starlette:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        async def traces(request: Request) -> Response:
            export = ExportTraceServiceRequest()
            export.ParseFromString(await request.body())
            for resource in export.resource_spans:
                for scope in resource.scope_spans:
                    self.spans.extend(scope.spans)
            return Response(b"", media_type="application/x-protobuf")

        return Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])

    def named(self, name: str) -> list[Any]:
        return [span for span in self.spans if span.name == name]


def attributes(span: Any) -> dict[str, Any]:
    return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in span.attributes}


@pytest.mark.anyio
async def test_a_traced_call_continues_the_callers_trace_into_the_backend(tmp_path: Path) -> None:
    received: list[str] = []

    async def echo(request: Request) -> JSONResponse:
        received.append(request.headers.get("traceparent", ""))
        return JSONResponse({"word": request.path_params["word"]})

    collector = Collector()
    write_text(tmp_path, ECHO_SPEC, "echo.yaml")
    with ServerThread(Starlette(routes=[Route("/echo/{word}", echo)])) as upstream, \
            ServerThread(collector.app()) as receiver:
        config = write_text(tmp_path, f"""
            version: 1
            server: {{tracing: {{enabled: true}}}}
            backends:
              - {{name: echo, spec: echo.yaml, upstream: "{upstream.url}"}}
            """, "gateway.yaml")
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
        with serving("--config", str(config), env=env) as (process, url):
            headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
            parent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
            in_meta = "00-11111111111111111111111111111111-2222222222222222-01"
            calls = [
                ({"name": "echo", "arguments": {"word": "hi"}}, {"traceparent": parent}),
                ({"name": "echo", "arguments": {"word": "far too long"}}, {"traceparent": parent}),
                ({"name": "echo", "arguments": {"word": "meta"}, "_meta": {"traceparent": in_meta}}, {}),
            ]
            async with httpx2.AsyncClient() as http:
                for n, (params, extra) in enumerate(calls):
                    answer = await http.post(url, headers={**headers, **extra}, json={
                        "jsonrpc": "2.0", "id": n, "method": "tools/call", "params": params})
                    assert answer.status_code == 200
                listed = await http.post(url, headers={**headers, "traceparent": parent},
                                         json={"jsonrpc": "2.0", "id": 9, "method": "resources/list"})
                assert listed.status_code == 200
            deadline = time.monotonic() + 20
            while len(collector.named("tools/call echo")) < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            process.terminate()
            process.communicate(timeout=60)
    servers = collector.named("tools/call echo")
    clients = collector.named("GET /echo/{word}")
    assert len(servers) == 3 and len(clients) == 2  # the invalid call sent nothing upstream
    first, invalid, meta = servers
    assert first.trace_id.hex() == TRACE_ID and first.parent_span_id.hex() == "00f067aa0ba902b7"
    assert first.kind == first.SPAN_KIND_SERVER and attributes(first) == {
        "mcp.method.name": "tools/call", "mcp.protocol.version": "2025-11-25", "jsonrpc.request.id": "0",
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "echo"}
    assert attributes(invalid)["error.type"] == "tool_error" and invalid.status.code == invalid.status.STATUS_CODE_ERROR
    assert meta.trace_id.hex() == "1" * 32 and meta.parent_span_id.hex() == "2" * 16
    client = clients[0]
    assert client.parent_span_id == first.span_id and client.kind == client.SPAN_KIND_CLIENT
    assert attributes(client)["http.response.status_code"] == 200
    assert attributes(client)["url.template"] == "/echo/{word}" and "hi" not in str(attributes(client))
    assert received[0] == f"00-{TRACE_ID}-{client.span_id.hex()}-01"  # the backend continues the same trace
    [sdk_span] = collector.named("resources/list")  # made by the SDK's middleware: this request is not a hot one
    assert sdk_span.trace_id.hex() == TRACE_ID and sdk_span.parent_span_id.hex() == "00f067aa0ba902b7"
