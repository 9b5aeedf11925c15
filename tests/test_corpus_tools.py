"""Every shared spec becomes tools that every MCP client accepts (skipped without ../shared/specs)."""

from __future__ import annotations

import re
import time

import jsonschema
import jsonschema_rs
import pytest

from gateway.config import config_from_args
from gateway.runtime import load_gateway
from gateway.serving.endpoint import descriptors_json
from tests.conftest import SHARED_SPECS, manifest

NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ARGUMENT = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")
ENTRIES = [row["file"] for row in manifest(SHARED_SPECS)] if (SHARED_SPECS / "MANIFEST.tsv").exists() else []


@pytest.mark.parametrize("spec", ENTRIES or [pytest.param("-", marks=pytest.mark.skip("no shared specs"))])
def test_every_tool_is_valid(spec):
    started = time.perf_counter()
    gw = load_gateway(config_from_args(spec=str(SHARED_SPECS / spec)))
    seconds = time.perf_counter() - started
    print(f"{spec}: {len(gw.tools)} tools in {seconds:.2f}s")
    for legacy in (False, True):
        descriptors = descriptors_json(gw.tools, legacy=legacy)
        names = [d["name"] for d in descriptors]
        assert len(set(names)) == len(names)
        for tool in descriptors:
            assert NAME.match(tool["name"]), tool["name"]
            schema = tool["inputSchema"]
            assert schema["type"] == "object"
            jsonschema.Draft202012Validator.check_schema(schema)
            jsonschema_rs.validator_for(schema)
            assert all(ARGUMENT.match(arg) for arg in schema.get("properties", {})), tool["name"]
            output = tool.get("outputSchema")
            if output is not None:
                jsonschema.Draft202012Validator.check_schema(output)
                jsonschema_rs.validator_for(output)
                if legacy:
                    assert output["type"] == "object", tool["name"]
