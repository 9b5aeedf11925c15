"""The `gateway` command as a user runs it: init, check, tools, serve --stdio; and the call log line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from adapters.petstore import MAPPING, SPEC
from gateway.cli import main
from tests.gateway_harness import connect, running_gateway


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=120)


def test_init_writes_a_mapping_that_checks(tmp_path: Path):
    init = run("init", "--spec", str(SPEC))
    assert init.returncode == 0, init.stderr
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(init.stdout)
    check = run("check", "--spec", str(SPEC), "--mapping", str(mapping))
    assert check.returncode == 0, check.stderr
    assert "9 tools" in check.stdout  # every operation but the deprecated one


def test_check_reports_a_missing_operation_at_its_line(tmp_path: Path):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("version: 1\ntools:\n  listPets: {}\n  listPest:\n    name: typo\n")
    check = run("check", "--spec", str(SPEC), "--mapping", str(mapping))
    assert check.returncode == 2
    assert f"{mapping}:4" in check.stderr and "listPest" in check.stderr and "listPets" in check.stderr


def test_check_reports_a_malformed_spec(tmp_path: Path):
    spec = tmp_path / "broken.yaml"
    spec.write_text("openapi: 3.0.0\ninfo: {title: x, version: '1'}\npaths:\n  /a: [unclosed\n")
    check = run("check", "--spec", str(spec))
    assert check.returncode == 2
    assert re.search(r"broken.yaml:\d+: invalid YAML", check.stderr), check.stderr
    assert "Traceback" not in check.stderr


@pytest.mark.anyio
async def test_tools_json_is_exactly_what_tools_list_serves(petstore_backend, capsys):
    assert main(["tools", "--json", "--spec", str(SPEC), "--mapping", str(MAPPING)]) == 0
    printed = json.loads(capsys.readouterr().out)
    with running_gateway(str(SPEC), f"{petstore_backend.url}/api", str(MAPPING)) as (_, url):
        async with connect(url) as client:
            listed = (await client.list_tools()).tools
    served = [t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in listed]
    assert printed == served


@pytest.mark.anyio
async def test_stdio_serves_one_client(petstore_backend):
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "gateway", "serve", "--stdio", "--spec", str(SPEC), "--mapping", str(MAPPING),
              "--upstream", f"{petstore_backend.url}/api"],
    )
    async with Client(params) as client:
        tools = (await client.list_tools()).tools
        result = await client.call_tool("get_inventory", {})
    assert len(tools) == 9
    assert not result.is_error and set(result.structured_content) == {"available", "pending", "sold"}


def test_mapping_values_must_fit_the_parameter_schema(tmp_path: Path):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("version: 1\ntools:\n  listPets:\n    parameters:\n      limit: {default: 500}\n")
    check = run("check", "--spec", str(SPEC), "--mapping", str(mapping))
    assert check.returncode == 2
    assert f"{mapping}:5" in check.stderr and "limit" in check.stderr and "500" in check.stderr


def test_a_host_flag_cannot_bypass_the_auth_check_of_a_config_file(tmp_path: Path):
    config = tmp_path / "gateway.yaml"
    config.write_text(f"version: 1\nbackends:\n  - {{name: p, spec: {SPEC}, upstream: 'http://127.0.0.1:1'}}\n")
    served = run("serve", "--config", str(config), "--host", "0.0.0.0", "--port", "1")
    assert served.returncode == 2
    assert f"{config}:1: server.auth: the gateway listens on 0.0.0.0" in served.stderr


@pytest.mark.anyio
async def test_workers_serve_one_port_from_several_processes(petstore_backend):
    import socket
    import time

    from tests.conftest import free_port

    port = free_port()
    served = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--workers", "2", "--port", str(port),
                               "--spec", str(SPEC), "--mapping", str(MAPPING),
                               "--upstream", f"{petstore_backend.url}/api"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        async with connect(f"http://127.0.0.1:{port}/mcp") as client:
            results = [await client.call_tool("get_inventory", {}) for _ in range(4)]
        children = Path(f"/proc/{served.pid}/task/{served.pid}/children").read_text().split()
        commands = [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ") for pid in children]
        assert sum(b"spawn_main" in command for command in commands) == 2, commands  # two worker processes
        assert all(not r.is_error for r in results)
    finally:
        served.terminate()
        _, err = served.communicate(timeout=30)
    assert "Traceback" not in err
