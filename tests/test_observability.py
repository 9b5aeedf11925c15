"""What operators see: JSON log lines with request ids (and, further down, metrics and traces)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest

from adapters.petstore import MAPPING, SPEC
from tests.conftest import write_text
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
