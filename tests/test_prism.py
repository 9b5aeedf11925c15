"""End to end against Stoplight Prism: every request the gateway sends must be one the spec allows.

MCP client -> gateway -> recording proxy -> Prism mocking the spec. For each spec, up to MAX_TOOLS tools
(spread evenly over the listing) are called once with arguments valid against the tool's own inputSchema.
A call passes when Prism found nothing wrong with any request it caused and the result is either a
success whose structuredContent fits the outputSchema (the SDK client checks that) or an error that
Prism caused itself (a non-2xx answer by design, or a mock body that breaks the spec's own schema).
"""

from __future__ import annotations

import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as fixed_seed
from hypothesis_jsonschema import from_schema

from tests.conftest import ServerThread
from tests.gateway_harness import connect, running_gateway, text_of
from tests.prism_oracle import (
    DummyCredentials,
    Exchange,
    PrismUnavailable,
    RecordingProxy,
    load_document,
    prism_executable,
    running_prism,
)

pytestmark = pytest.mark.anyio

MAX_TOOLS = 25
SPECS = [  # (file under the shared corpus, also served to a 2025-11-25 client)
    ("oai--v2.0-petstore.yaml", False),
    ("oai--v3.0-petstore.yaml", True),
    ("swagger-petstore--v3-openapi.yaml", True),
    ("oai--v2.0-petstore-separate/spec/swagger.json", False),
    ("azure--storage-rm-2019-04-01/storage/resource-manager/Microsoft.Storage/stable/2019-04-01/storage.json", False),
    ("azure--keyvault-dataplane-7.0/keyvault.json", False),
    ("apisguru--cloudmersive.com--ocr--v1.yaml", False),
    ("apisguru--slack.com--1.2.0.yaml", False),
    ("apisguru--box.com--2.0.yaml", False),
    ("oai--v3.1-non-oauth-scopes.json", False),
    ("openai--openapi.yaml", False),
]


@pytest.fixture(scope="session")
def prism() -> Path:
    try:
        return prism_executable()
    except PrismUnavailable as exc:
        pytest.skip(str(exc))
    except RuntimeError as exc:
        pytest.fail(str(exc))


# ---------------------------------------------------------------------------------------------------------------
# Arguments: one object valid against the tool's inputSchema, with typical values
# ---------------------------------------------------------------------------------------------------------------

# Values for the string formats Prism checks: fixed, well-formed and plain, so a call tests the request the
# gateway builds rather than exotic encodings.
FORMAT_EXAMPLES = {
    "date": "2024-01-15", "date-time": "2024-01-15T10:30:00Z", "time": "10:30:00Z", "email": "user@example.com",
    "hostname": "example.com", "uri": "https://example.com/x", "url": "https://example.com/x",
    "uri-reference": "https://example.com/x", "ipv4": "192.0.2.1", "ipv6": "2001:db8::1",
    "uuid": "123e4567-e89b-42d3-a456-426614174000", "byte": "eA==", "binary": "x", "password": "secret",
}
PLAIN_NAME = "^[A-Za-z0-9]{1,12}$"
MAGNITUDE = 10**6  # numbers stay within ±MAGNITUDE: ordinary values, and inside every integer format's range
ANNOTATIONS = frozenset({"description", "title", "default", "examples", "example", "deprecated", "readOnly",
                         "writeOnly", "$comment"})
OPEN_OBJECT = frozenset({"additionalProperties", "patternProperties", "unevaluatedProperties", "allOf", "anyOf",
                         "oneOf", "$ref"})
FORMAT_CHECKER = jsonschema.Draft202012Validator.FORMAT_CHECKER  # formats beyond it are only informative
SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
SUBSCHEMAS = ("items", "additionalProperties", "contains", "propertyNames", "if", "then", "else",
              "unevaluatedProperties", "unevaluatedItems")
SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")


def _plain(node: Any, fill: bool, all_of_part: bool = False) -> Any:
    """A copy of a schema that accepts (about) a subset of what it did: short alphanumeric strings (and map keys),
    fixed format values, numbers of ordinary size, arrays of at most three items, untyped values as strings,
    objects without undeclared properties and, with `fill`, with every declared one. An allOf part is only one
    side of its object, so it is neither closed nor typed when untyped. `not` is left alone: narrowing there
    would widen."""
    if not isinstance(node, dict):
        return node
    if not set(node) - ANNOTATIONS and not all_of_part:
        node = {**node, "type": "string"}  # untyped: a model would pass a string
    elif "type" not in node and {"properties", "required"} & node.keys():
        node = {**node, "type": "object"}  # an object schema that forgot its type
    elif "type" not in node and "items" in node:
        node = {**node, "type": "array"}
    out = dict(node)
    for key in SUBSCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            out[key] = {name: _plain(sub, fill) for name, sub in node[key].items()}
    for key in SUBSCHEMAS:
        if key in node:
            out[key] = _plain(node[key], fill)
    for key in SUBSCHEMA_LISTS:
        if isinstance(node.get(key), list):
            out[key] = [_plain(sub, fill, all_of_part=key == "allOf") for sub in node[key]]
    kinds = node.get("type") if isinstance(node.get("type"), list) else [node.get("type")]
    free = not {"enum", "const", "pattern"} & node.keys()
    if "string" in kinds and free and node.get("format") in FORMAT_EXAMPLES:
        out["enum"] = [FORMAT_EXAMPLES[node["format"]]]
    elif "string" in kinds and free and node.get("format") not in FORMAT_CHECKER.checkers:
        low = max(node.get("minLength", 0), 1)
        high = node.get("maxLength", low + 11)
        out["pattern"] = f"^[A-Za-z0-9]{{{low},{high}}}$"
    if {"integer", "number"} & set(kinds):
        low, high = max(node.get("minimum", -MAGNITUDE), -MAGNITUDE), min(node.get("maximum", MAGNITUDE), MAGNITUDE)
        if low <= high:
            out["minimum"], out["maximum"] = low, high
    if "array" in kinds:
        out["maxItems"] = min(node.get("maxItems", 3), max(node.get("minItems", 0), 3))
    if isinstance(node.get("additionalProperties"), dict) and "propertyNames" not in node:
        out["propertyNames"] = {"pattern": PLAIN_NAME}  # a map's keys: plain names too
    if isinstance(node.get("properties"), dict):
        if fill:
            out["required"] = sorted(set(node.get("required", [])) | set(node["properties"]))
        if not all_of_part and not OPEN_OBJECT & node.keys():
            out["additionalProperties"] = False
    return out


def typical(schema: dict[str, Any], every_argument: bool) -> dict[str, Any]:
    """A narrowing of an inputSchema for typical calls: plain values (see `_plain`), no explicit nulls, non-empty
    top-level arrays, and every declared property present at every level (or only the required ones)."""
    out = _plain(schema, every_argument)
    props = {}
    for name, prop in (out.get("properties") or {}).items():
        prop = dict(prop) if isinstance(prop, dict) else {}
        if prop.get("type") == "array":
            prop["minItems"] = max(prop.get("minItems", 0), 1)
        if prop.get("type") != "null" and "not" not in prop:
            prop["not"] = {"type": "null"}
        props[name] = prop
    return {**out, "properties": props} if props else out


def hypothesis_example(schema: dict[str, Any], seed: int, draws: int = 4) -> Any:
    """The last of a few examples hypothesis-jsonschema draws for `schema` from a fixed seed: Hypothesis starts
    with the simplest values ("0", 0), and a call should carry some ordinary ones too."""
    drawn: list[Any] = []

    @fixed_seed(seed)
    @settings(database=None, deadline=None, max_examples=draws, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(from_schema(schema, allow_x00=False, codec="ascii"))
    def draw(value: Any) -> None:
        drawn.append(value)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        draw()
    return drawn[-1]


def _walk(root: dict[str, Any], ref: str) -> Any:
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def simple_value(schema: Any, root: dict[str, Any], depth: int = 0) -> Any:
    """Fallback when hypothesis cannot draw: the plainest value, required properties only below the top."""
    while isinstance(schema, dict) and str(schema.get("$ref", "")).startswith("#/") and depth < 20:
        schema, depth = _walk(root, schema["$ref"]), depth + 1
    if not isinstance(schema, dict) or depth > 20:
        return "x"
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("allOf", "anyOf", "oneOf"):
        if schema.get(key):
            merged = {k: v for k, v in schema.items() if k != key}
            return simple_value({**schema[key][0], **merged}, root, depth + 1)
    kinds = schema.get("type") if isinstance(schema.get("type"), list) else [schema.get("type")]
    kind = next((k for k in kinds if k not in (None, "null")), None)
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties") or {}
        names = list(props) if depth == 0 else list(schema.get("required") or [])
        return {name: simple_value(props.get(name, {}), root, depth + 1) for name in names}
    if kind == "array" or (kind is None and "items" in schema):
        return [simple_value(schema.get("items", {}), root, depth + 1)
                for _ in range(max(schema.get("minItems", 0), 1))]
    if kind in ("integer", "number"):
        low = schema.get("minimum", 1)
        return max(low, min(1, schema.get("maximum", 1)))
    if kind == "boolean":
        return True
    return FORMAT_EXAMPLES.get(schema.get("format"), "x" * max(schema.get("minLength", 1), 1))


def make_arguments(schema: dict[str, Any], seed: int) -> tuple[dict[str, Any] | None, list[str]]:
    """Arguments valid against `schema` (formats checked), or None with what was tried."""
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    tried = []
    attempts = [
        ("hypothesis, every argument", lambda: hypothesis_example(typical(schema, True), seed)),
        ("hypothesis, required arguments", lambda: hypothesis_example(typical(schema, False), seed)),
        ("fallback", lambda: simple_value(schema, schema)),
    ]
    for how, draw in attempts:
        try:
            value = draw()
        except Exception as exc:  # hypothesis-jsonschema raises many kinds on schemas it does not support
            tried.append(f"{how}: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        if isinstance(value, dict) and validator.is_valid(value):
            return value, tried
        tried.append(f"{how}: drew {value!r:.200} which the inputSchema rejects")
    return None, tried


# ---------------------------------------------------------------------------------------------------------------
# Judging one call
# ---------------------------------------------------------------------------------------------------------------

OK, PRISM_FAULT, FAILED, NOT_CALLED = "ok", "prism's fault", "FAILED", "not called"


@dataclass(frozen=True, slots=True)
class Outcome:
    tool: str
    verdict: str  # OK, PRISM_FAULT, FAILED or NOT_CALLED
    reason: str
    arguments: dict[str, Any] | None
    exchanges: tuple[Exchange, ...]

    def describe(self) -> str:
        lines = [f"{self.tool}: {self.verdict}: {self.reason}", f"  arguments: {self.arguments!r:.600}"]
        lines += ["  " + ex.describe().replace("\n", "\n  ") for ex in self.exchanges]
        return "\n".join(lines)


def judge(result: Any, error: Exception | None, exchanges: tuple[Exchange, ...]) -> tuple[str, str]:
    """Verdict on one call from the tool result (or the client's exception) and the requests it caused."""
    if any(ex.request_violations for ex in exchanges):
        return FAILED, "Prism found the upstream request invalid against the spec"
    mock_broke_spec = any(ex.response_violations for ex in exchanges)
    if error is not None:
        if mock_broke_spec:
            return PRISM_FAULT, f"Prism's mock answer breaks the spec, so: {error}"
        return FAILED, f"the client raised {type(error).__name__}: {error}"
    if not exchanges:
        return FAILED, f"no upstream request was made; the tool answered: {text_of(result)[:500]}"
    status = exchanges[-1].status
    if result.is_error:
        if not 200 <= status < 300:
            problem = exchanges[-1].problem
            return PRISM_FAULT, f"Prism answered {status}" + (f" ({problem})" if problem else "")
        if mock_broke_spec:
            return PRISM_FAULT, f"Prism's mock answer breaks the spec; the tool answered: {text_of(result)[:300]}"
        return FAILED, f"tool error although Prism answered {status}: {text_of(result)[:500]}"
    if not 200 <= status < 300:
        return FAILED, f"success although Prism answered {status}"
    return OK, ""


def spread(items: list[Any], n: int) -> list[Any]:
    """At most n items, evenly spread over the list, in order."""
    return list(items) if len(items) <= n else [items[i * len(items) // n] for i in range(n)]


async def call_every_tool(url: str, proxy: RecordingProxy, legacy: bool) -> list[Outcome]:
    outcomes = []
    async with connect(url, legacy=legacy) as client:
        assert client.protocol_version == ("2025-11-25" if legacy else "2026-07-28")
        tools = (await client.list_tools()).tools
        assert tools, "the gateway lists no tools"
        for tool in spread(tools, MAX_TOOLS):
            arguments, tried = make_arguments(tool.input_schema, zlib.crc32(tool.name.encode()))
            if arguments is None:
                try:
                    jsonschema.Draft202012Validator.check_schema(tool.input_schema)
                except jsonschema.SchemaError as exc:  # the gateway's fault, not the generator's
                    outcomes.append(Outcome(tool.name, FAILED, f"invalid inputSchema: {exc.message}", None, ()))
                else:
                    outcomes.append(Outcome(tool.name, NOT_CALLED, "; ".join(tried), None, ()))
                continue
            before = len(proxy.exchanges)
            result, error = None, None
            try:
                result = await client.call_tool(tool.name, arguments)
            except Exception as exc:  # the SDK raises when structuredContent breaks the outputSchema
                error = exc
            exchanges = tuple(proxy.exchanges[before:])
            verdict, reason = judge(result, error, exchanges)
            outcomes.append(Outcome(tool.name, verdict, reason, arguments, exchanges))
    return outcomes


@pytest.mark.parametrize(("spec", "legacy"), [
    pytest.param(spec, legacy, id=f"{spec.split('/')[0]}{'-legacy' if legacy else ''}")
    for spec, served_legacy in SPECS for legacy in ((False, True) if served_legacy else (False,))
])
async def test_every_request_passes_prism(spec: str, legacy: bool, shared_specs: Path, prism: Path,
                                          tmp_path: Path) -> None:
    path = shared_specs / spec
    credentials = DummyCredentials.for_document(load_document(path))
    with running_prism(prism, path, tmp_path / "prism.log") as oracle_url:
        proxy = RecordingProxy(oracle_url, credentials)
        with ServerThread(proxy) as upstream, running_gateway(str(path), upstream.url, discovery="flat") as (_, url):
            outcomes = await call_every_tool(url, proxy, legacy)

    print(f"\n{spec}{' (2025-11-25 client)' if legacy else ''}: {len(outcomes)} tools called")
    for outcome in outcomes:
        print(f"  {outcome.tool:45} {outcome.verdict}{': ' + outcome.reason[:160] if outcome.reason else ''}")
    failed = [o for o in outcomes if o.verdict == FAILED]
    if failed:
        pytest.fail(f"{len(failed)} of {len(outcomes)} calls failed on {spec}:\n\n"
                    + "\n\n".join(o.describe() for o in failed), pytrace=False)
    assert any(o.verdict in (OK, PRISM_FAULT) for o in outcomes), f"no call on {spec} reached Prism"
