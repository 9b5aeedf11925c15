"""Request-building fuzz campaign: hostile generated arguments for every parameter location and style.

    .venv/bin/python bench/fuzz.py [--count 10000] [--served 300] [--construct NAME ...] [--write-results]

A spec made for it (`SPEC`, one operation per construct: path simple/label/matrix, several parameters in a
template and in one segment, `allow_slash`, query form/spaceDelimited/pipeDelimited/deepObject with explode
true and false plus allowReserved, header, cookie, form and multipart bodies) is loaded with
`load_gateway(config_from_args(...))`; hypothesis generates `--count` argument sets per construct (strings
drawn from a hostile alphabet: `/ ? # % . .. \\r \\n ; , = & [ ] @ :`, escapes, non-ASCII, lone surrogates).
Each set that passes the tool's validator goes through `gateway.calls.request.build_request` and the
backend's `outbound()` (the URL and headers exactly as the forwarder sends them), and is checked by
`check_request`:

* scheme, host, port and the base path are always the backend's; the path has no `?`/`#`, and no segment
  is empty, `.` or `..` (raw or percent-decoded); the template's literal segments stay where they are;
* no header name or value holds CR, LF or NUL, names are tokens, and the set of headers is exactly the
  expected one (no second header appears);
* every argument lands in its own location only: the argument is swapped for a neutral value and the two
  requests may differ in that argument's own path segments, query pairs, header, cookie or body field;
* string values round-trip: percent-decoding what was sent gives the argument back.

`--served N` then sends N generated calls per construct through a real gateway (uvicorn) to a recording
upstream and checks that what arrived (raw path, query, headers, body) is what the builder produced.
The pytest version (`tests/test_fuzz_requests.py`) runs the same checks with a smaller count.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gateway.calls.forward import Backend  # noqa: E402
from gateway.calls.request import ArgumentError, build_request  # noqa: E402
from gateway.config import config_from_args  # noqa: E402
from gateway.runtime import Gateway, load_gateway  # noqa: E402

UPSTREAM = "http://127.0.0.1:9/base/v1"  # never contacted by the bulk run: only `outbound()` is used
PREFIX_PATH = "/base/v1"


# -- the spec ------------------------------------------------------------------------------------------------

def _obj(name: str) -> dict:
    """An object schema whose property names carry the parameter's name (so form-exploded keys are its own)."""
    return {"type": "object", "additionalProperties": False,
            "properties": {f"{name}_r": {"type": "string"}, f"{name}_g": {"type": "string"}}}


ARR = {"type": "array", "items": {"type": "string"}}
ARR_MIXED = {"type": "array", "items": {"type": ["string", "integer", "boolean"]}}
STR = {"type": "string"}


def _p(name: str, where: str, schema: dict, style: str | None = None, explode: bool | None = None,
       **extra: Any) -> dict:
    parameter = {"name": name, "in": where, "schema": schema, **extra}
    if where == "path":
        parameter["required"] = True
    if style is not None:
        parameter["style"] = style
    if explode is not None:
        parameter["explode"] = explode
    return parameter


def _path_params(style: str) -> list[dict]:
    return [_p("s", "path", STR, style), _p("ae", "path", ARR_MIXED, style, True), _p("an", "path", ARR, style, False),
            _p("oe", "path", _obj("oe"), style, True), _p("on", "path", _obj("on"), style, False)]


def _query_params(style: str, objects: bool = True) -> list[dict]:
    params = [_p("qs", "query", STR, style), _p("qae", "query", ARR_MIXED, style, True),
              _p("qan", "query", ARR, style, False)]
    if objects:
        params += [_p("qoe", "query", _obj("qoe"), style, True), _p("qon", "query", _obj("qon"), style, False)]
    return params


_OK = {"200": {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}}
_DEEP = {"type": "object", "properties": {
    "a": STR, "n": {"type": "object", "properties": {"b": STR, "l": ARR}}, "l": ARR,
    "ol": {"type": "array", "items": {"type": "object", "properties": {"x": STR}}}}}
_BODY = {"type": "object", "properties": {
    "bs": STR, "bl": ARR, "bo": {"type": "object", "properties": {"k": STR}}, "bn": {"type": "integer"}}}
_MULTI = {"type": "object", "properties": {
    "ms": STR, "ml": ARR, "mo": {"type": "object", "properties": {"k": STR}},
    "mf": {"type": "string", "format": "binary"}}}


def _op(operation_id: str, parameters: list[dict], method: str = "get", body: dict | None = None) -> dict:
    operation: dict = {"operationId": operation_id, "parameters": parameters, "responses": _OK}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": body}
    return {method: operation}


SPEC: dict = {
    "openapi": "3.0.3",
    "info": {"title": "Fuzz target", "version": "1"},
    "paths": {
        "/simple/{s}/{ae}/{an}/{oe}/{on}": _op("path_simple", _path_params("simple")),
        "/label/{s}/{ae}/{an}/{oe}/{on}": _op("path_label", _path_params("label")),
        "/matrix/{s}/{ae}/{an}/{oe}/{on}": _op("path_matrix", _path_params("matrix")),
        "/multi/{a}.{b}/v{c}-{d}/x/{e}": _op("path_multi", [_p(n, "path", STR) for n in "abcde"]),
        "/files/{path}/raw": _op("path_slash", [_p("path", "path", STR), _p("tail", "query", STR)]),
        "/form": _op("query_form", [*_query_params("form"),
                                    _p("qr", "query", STR, allowReserved=True)]),
        "/space": _op("query_space", [*_query_params("spaceDelimited", objects=False),
                                      _p("qon", "query", _obj("qon"), "spaceDelimited", False)]),
        "/pipe": _op("query_pipe", [*_query_params("pipeDelimited", objects=False),
                                    _p("qon", "query", _obj("qon"), "pipeDelimited", False)]),
        "/deep": _op("query_deep", [_p("d", "query", _DEEP, "deepObject", True), _p("qs", "query", STR)]),
        "/header": _op("header", [_p("X-S", "header", STR), _p("X-A", "header", ARR_MIXED),
                                  _p("X-Oe", "header", _obj("xoe"), explode=True),
                                  _p("X-On", "header", _obj("xon"), explode=False),
                                  _p("qs", "query", STR)]),
        "/cookie": _op("cookie", [_p("cs", "cookie", STR), _p("ca", "cookie", ARR, explode=False),
                                  _p("co", "cookie", _obj("co"), explode=False), _p("X-S", "header", STR)]),
        "/formbody/{id}": _op("form_body", [_p("id", "path", STR), _p("qs", "query", STR)], "post",
                              {"application/x-www-form-urlencoded": {"schema": _BODY}}),
        "/multipart/{id}": _op("multipart", [_p("id", "path", STR), _p("X-S", "header", STR)], "post",
                               {"multipart/form-data": {"schema": _MULTI}}),
    },
}
MAPPING = """
version: 1
tools:
  path_slash:
    parameters:
      path: {allow_slash: true}
"""
CONSTRUCTS = tuple(operation["operationId"] for item in SPEC["paths"].values() for operation in item.values())


def load(folder: Path, upstream: str = UPSTREAM) -> Gateway:
    """The fuzz spec and mapping written to `folder` and loaded as the gateway loads them."""
    (folder / "fuzz-openapi.yaml").write_text(yaml.safe_dump(SPEC, sort_keys=False), encoding="utf-8")
    (folder / "fuzz-mapping.yaml").write_text(MAPPING, encoding="utf-8")
    return load_gateway(config_from_args(spec=str(folder / "fuzz-openapi.yaml"),
                                         mapping=str(folder / "fuzz-mapping.yaml"), upstream=upstream))


# -- hostile values --------------------------------------------------------------------------------------------

HOSTILE_PIECES = ["/", "?", "#", "%", ".", "..", "\r", "\n", "\r\n", ";", ",", "=", "&", "[", "]", "@", ":", "+",
                  " ", "\t", "\x00", "\x7f", "\\", "%2e", "%2E%2e", "%2f", "%252f", "%0d%0a", "%00", "é", "☃", "\u2028",
                  "\ufeff", "\ud800", "//evil.example", "http://evil.example/", "../", "./", "/..", "~", "{x}", '"',
                  "'", "X-Injected: 1", "Set-Cookie: a=b", "a", "b", "0", "|", "\u0085"]
WHOLE = ["", ".", "..", "...", "/", "//", "../admin", "./.", "%2e%2e", "%2E", "a/../b", "/etc/passwd",
         "..%2F..%2F", "x\r\nHost: evil", "a\nb", "evil.example:80", "@evil", "?", "#", "&a=b", "a=b"]
hostile_text = st.one_of(
    st.sampled_from(WHOLE),
    st.lists(st.sampled_from(HOSTILE_PIECES), max_size=8).map("".join),
    st.text(max_size=12),
    st.lists(st.one_of(st.sampled_from(HOSTILE_PIECES), st.text(max_size=3)), max_size=6).map("".join),
)
scalar = st.one_of(hostile_text, st.integers(-(2**70), 2**70), st.booleans())


def _strategy(schema: Mapping[str, Any], depth: int = 0, filled: bool = False) -> st.SearchStrategy[Any]:
    """Values for the schemas SPEC uses, with hostile text wherever a string goes (mostly valid, some not).
    `filled`: arrays and objects mostly non-empty (path values, where an empty one is refused)."""
    kind = schema.get("type")
    if filled and kind in ("array", "object"):
        plain = _strategy(schema, depth)
        return st.one_of(plain, plain.filter(bool), plain.filter(bool), plain.filter(bool))
    if isinstance(kind, list):
        return scalar
    if kind == "string":
        if schema.get("format") == "binary" or "contentEncoding" in schema:
            return st.one_of(st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()), hostile_text)
        return hostile_text
    if kind == "integer":
        return st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False).map(round))
    if kind == "array":
        return st.lists(_strategy(schema.get("items") or {}, depth + 1), max_size=4)
    if kind == "object" and depth < 3:
        properties = schema.get("properties") or {}
        fixed = st.fixed_dictionaries({}, optional={k: _strategy(v, depth + 1) for k, v in properties.items()})
        if schema.get("additionalProperties") is False:
            return fixed
        extra = st.dictionaries(hostile_text, hostile_text, max_size=2)
        return st.one_of(fixed, st.tuples(fixed, extra).map(lambda pair: {**pair[1], **pair[0]}))
    return scalar


def arguments(tool: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Argument sets for `tool`: its required arguments always, the others sometimes, plus a rare stray."""
    schema = tool.input_schema
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    in_path = {b.argument for b in tool.request.bindings if b.target == "path"}
    return st.fixed_dictionaries(
        {name: _strategy(properties[name], filled=name in in_path) for name in required},
        optional={name: _strategy(sub) for name, sub in properties.items() if name not in required},
    )


# -- the checks ------------------------------------------------------------------------------------------------

class Violation(AssertionError):
    """A built request broke an invariant."""


@dataclass
class Built:
    """One built request, decomposed: the URL parts, header list, query pairs, body pieces."""

    url: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    content: bytes
    content_type: str = ""

    @property
    def segments(self) -> list[str]:
        return self.path[len(PREFIX_PATH) + 1:].split("/")

    @property
    def pairs(self) -> Counter[tuple[str, str]]:
        return _pairs(self.query)

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def body_fields(self) -> Counter[tuple[str, str]]:
        if self.content_type.startswith("application/x-www-form-urlencoded"):
            return _pairs(self.content.decode("ascii"))
        if self.content_type.startswith("multipart/"):
            return Counter((name, data.hex()) for name, data in _multipart_parts(self.content, self.content_type))
        return Counter()


def _pairs(text: str) -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    for pair in text.split("&") if text else ():
        key, eq, value = pair.partition("=")
        if not eq:
            raise Violation(f"a query or form pair without '=': {pair!r} in {text!r}")
        if "=" in value:
            raise Violation(f"a raw '=' inside a value: {pair!r}")
        found[(key, value)] += 1
    return found


def _multipart_parts(content: bytes, content_type: str) -> list[tuple[str, bytes]]:
    boundary = content_type.split("boundary=", 1)[1].encode()
    chunks = content.split(b"--" + boundary)
    if chunks[0] != b"" or chunks[-1] != b"--\r\n":
        raise Violation(f"multipart framing broken: {content[:200]!r}")
    parts = []
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b"\r\n") or not chunk.endswith(b"\r\n"):
            raise Violation(f"multipart part framing broken: {chunk[:200]!r}")
        head, sep, data = chunk[2:-2].partition(b"\r\n\r\n")
        if not sep:
            raise Violation(f"a multipart part without a header block: {chunk[:200]!r}")
        lines = head.split(b"\r\n")
        for item in lines:
            name, colon, _ = item.partition(b":")
            if not colon or not re.fullmatch(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
                raise Violation(f"a malformed part header line {item!r}")
        disposition = next(item for item in lines if item.lower().startswith(b"content-disposition:"))
        match = re.match(rb'content-disposition: form-data; name="([^"\r\n]*)"', disposition, re.I)
        if match is None:
            raise Violation(f"a malformed Content-Disposition {disposition!r}")
        parts.append((match.group(1).decode(), data))
    return parts


def decompose(backend: Backend, request: Any) -> Built:
    outbound = backend.outbound(request)
    url = outbound.url
    split = urlsplit(url)
    headers = [(str(k), str(v)) for k, v in outbound.headers]
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    return Built(url, split.path, split.query, headers, outbound.content or b"", content_type)


_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_BAD_SEGMENTS = {"", ".", ".."}


def check_structure(tool: Any, built: Built, base: str = UPSTREAM) -> None:
    """The URL's origin and base path, the path's segments and the header block."""
    expected, got = urlsplit(base), urlsplit(built.url)
    if (got.scheme, got.hostname, got.port) != (expected.scheme, expected.hostname, expected.port) or got.username \
            or got.password or got.fragment or "#" in built.url:
        raise Violation(f"the request left the backend's origin: {built.url!r}")
    if not built.path.startswith(PREFIX_PATH + "/"):
        raise Violation(f"the path lost the base path: {built.path!r}")
    template = tool.request.path.lstrip("/").split("/")
    segments = built.segments
    for segment in segments:
        if segment in _BAD_SEGMENTS or unquote(segment) in _BAD_SEGMENTS or segment.lower() in ("%2e", "%2e%2e"):
            raise Violation(f"an empty, '.' or '..' segment in {built.path!r}")
        if "?" in segment or "#" in segment or "\\" in segment or re.search(r"%(?![0-9A-Fa-f]{2})", segment):
            raise Violation(f"a raw '?', '#', '\\' or a broken escape in the path: {built.path!r}")
    slashes = any(b.allow_slash for b in tool.request.bindings)
    if not slashes and len(segments) != len(template):
        raise Violation(f"{len(segments)} segments for a {len(template)}-segment template: {built.path!r}")
    literal_positions = [(i, t) for i, t in enumerate(template) if "{" not in t]
    for i, literal in literal_positions:
        position = i if not slashes or i < _first_slash_index(tool, template) else i - len(template) + len(segments)
        if segments[position] != literal:
            raise Violation(f"the literal segment {literal!r} moved: {built.path!r}")
    names = [name.lower() for name, _ in built.headers]
    if len(names) != len(set(names)):
        raise Violation(f"a header appears twice: {names}")
    for name, value in built.headers:
        if not _TOKEN.match(name) or re.search(r"[\r\n\x00]", name + value):
            raise Violation(f"a header with a line break or a bad name: {name!r}: {value!r}")
        if not value.isascii():
            raise Violation(f"a non-ASCII header value: {name!r}: {value!r}")
    for name, value in built.pairs:
        if re.search(r"[#\s]", name + value) or re.search(r"%(?![0-9A-Fa-f]{2})", name + value):
            raise Violation(f"a query pair with '#', whitespace or a broken escape: {name}={value}")


def _first_slash_index(tool: Any, template: list[str]) -> int:
    slash = {b.wire_name for b in tool.request.bindings if b.allow_slash}
    return next(i for i, t in enumerate(template) if any("{" + n + "}" in t for n in slash))


def _allowed_headers(tool: Any, arguments: Mapping[str, Any]) -> set[str]:
    allowed = {"host", "user-agent", "accept"}
    for binding in tool.request.bindings:
        if binding.argument in arguments and binding.target == "header":
            allowed.add(binding.wire_name.lower())
        if binding.argument in arguments and binding.target == "cookie":
            allowed.add("cookie")
    if tool.request.body is not None:
        allowed.add("content-type")
    return allowed


def _query_keys(binding: Any, value: Any) -> Callable[[str], bool]:
    """Which decoded query (or form) keys belong to `binding`."""
    name = binding.wire_name
    parameter = binding.parameter
    style = parameter.style if parameter is not None else "form"
    explode = parameter.explode if parameter is not None else True
    if style == "deepObject":
        return lambda key: key == name or key.startswith(name + "[")
    if isinstance(value, Mapping) and explode and style == "form":
        own = {str(k) for k in value}
        return lambda key: key in own
    return lambda key: key == name


def _neutral(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {}
    if isinstance(value, list):
        return []
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return 7
    return "k"


def check_locations(tool: Any, backend: Backend, arguments: Mapping[str, Any], built: Built) -> int:
    """Swap each argument for a neutral value: only its own parts of the request may change. Returns the count
    of swaps checked."""
    checked = 0
    template = tool.request.path.lstrip("/").split("/")
    slashes = any(b.allow_slash for b in tool.request.bindings)
    for binding in tool.request.bindings:
        if binding.argument not in arguments:
            continue
        swapped = {**arguments, binding.argument: _neutral(arguments[binding.argument])}
        if binding.target == "path":
            swapped[binding.argument] = "k"
        with contextlib.suppress(UnicodeEncodeError):
            if tool.validate(swapped):
                continue
        try:
            other = decompose(backend, build_request(tool.request, swapped))
        except ArgumentError:
            continue
        checked += 1
        where = f"{tool.name}: swapping {binding.argument!r} ({binding.target})"
        if binding.target != "path" and other.path != built.path and not slashes:
            raise Violation(f"{where} changed the path: {built.path!r} vs {other.path!r}")
        if binding.target == "path" and not slashes:
            own = {i for i, t in enumerate(template) if "{" + binding.wire_name + "}" in t}
            changed = {i for i, (a, b) in enumerate(zip(built.segments, other.segments, strict=True)) if a != b}
            if not changed <= own:
                raise Violation(f"{where} changed segments {changed - own}: {built.path!r} vs {other.path!r}")
        diff = (built.pairs - other.pairs) + (other.pairs - built.pairs)
        if binding.target == "query":
            mine = _query_keys(binding, arguments[binding.argument])
            mine_too = _query_keys(binding, swapped[binding.argument])
            stray = [pair for pair in diff if not (mine(unquote(pair[0])) or mine_too(unquote(pair[0])))]
            if stray:
                raise Violation(f"{where} changed other query pairs {stray}: {built.query!r} vs {other.query!r}")
        elif diff:
            raise Violation(f"{where} changed the query {list(diff)}: {built.query!r} vs {other.query!r}")
        random_boundary = built.content_type.startswith("multipart/")  # a fresh boundary per build
        header_diff = {(k, v) for k, v in set(built.headers) ^ set(other.headers)
                       if not (random_boundary and k.lower() == "content-type")}
        own_header = {"header": binding.wire_name.lower(), "cookie": "cookie"}.get(binding.target)
        if binding.target in ("body", "body-property"):
            own_header = "content-type" if tool.request.body.kind == "multipart" else None
        stray_headers = {name for name, _ in header_diff if name.lower() != own_header}
        if stray_headers:
            raise Violation(f"{where} changed other headers {stray_headers}")
        if binding.target == "body-property":
            fields = (built.body_fields() - other.body_fields()) + (other.body_fields() - built.body_fields())
            strays = {name for name, _ in fields if name != binding.wire_name}
            if strays:
                raise Violation(f"{where} changed other body fields {strays}")
        elif (built.content_type.startswith("multipart/") and built.body_fields() != other.body_fields()) or (
                not built.content_type.startswith("multipart/") and built.content != other.content):
            raise Violation(f"{where} changed the body")
    return checked


def check_round_trip(tool: Any, arguments: Mapping[str, Any], built: Built) -> None:
    """String arguments of the plain styles come back unchanged from what was sent."""
    template = tool.request.path.lstrip("/").split("/")
    for binding in tool.request.bindings:
        value = arguments.get(binding.argument)
        if not isinstance(value, str):
            continue
        parameter = binding.parameter
        style = parameter.style if parameter is not None else None
        if binding.target == "path" and f"{{{binding.wire_name}}}" in template and not binding.allow_slash:
            segment = built.segments[template.index(f"{{{binding.wire_name}}}")]
            matrix = f";{binding.wire_name}="
            if style == "label":
                decoded = segment[1:] if segment.startswith(".") else None
            elif style == "matrix":
                decoded = segment[len(matrix):] if segment.startswith(matrix) else None
            else:
                decoded = segment
            if decoded is None or unquote(decoded, errors="strict") != value:
                raise Violation(f"{tool.name}: path value {value!r} came out as {segment!r}")
        elif binding.target == "path" and binding.allow_slash:
            joined = "/".join(built.segments[1:-1])
            if unquote(joined, errors="strict") != value:
                raise Violation(f"{tool.name}: allow_slash value {value!r} came out as {joined!r}")
        elif binding.target == "query" and style in ("form", "deepObject") and value and not parameter.allow_reserved:
            got = [unquote(v, errors="strict") for k, v in built.pairs.elements() if unquote(k) == binding.wire_name]
            if got != [value]:
                raise Violation(f"{tool.name}: query value {value!r} came out as {got!r}")
        elif binding.target == "header" and value and binding.wire_name.lower() not in ("accept", "content-type"):
            if built.header(binding.wire_name) != [value]:
                raise Violation(f"{tool.name}: header value {value!r} came out as {built.header(binding.wire_name)}")
        elif binding.target == "cookie":
            pairs = [p.partition("=") for p in (built.header("cookie") or [""])[0].split("; ")]
            got = [unquote(v, errors="strict") for k, _, v in pairs if unquote(k) == binding.wire_name]
            if got != [value]:
                raise Violation(f"{tool.name}: cookie value {value!r} came out as {got!r}")
        elif binding.target == "body-property" and built.content_type.startswith("application/x-www-form"):
            got = [unquote(v, errors="strict") for k, v in built.body_fields().elements() if k == binding.wire_name]
            if got != [value]:
                raise Violation(f"{tool.name}: form field {value!r} came out as {got!r}")


def check_request(tool: Any, backend: Backend, arguments: Mapping[str, Any]) -> str:
    """Validate, build and check one argument set; the outcome: "invalid", "refused" or "built" (or
    "validator_crash": the known bug of tests/test_fuzz_requests.py::test_lone_surrogate_is_an_invalid_argument)."""
    try:
        if tool.validate(dict(arguments)):
            return "invalid"
    except UnicodeEncodeError:
        return "validator_crash"
    try:
        request = build_request(tool.request, arguments)
    except ArgumentError:
        return "refused"
    built = decompose(backend, request)
    check_structure(tool, built)
    extra = {name.lower() for name, _ in built.headers} - _allowed_headers(tool, arguments)
    if extra:
        raise Violation(f"{tool.name}: unexpected headers {extra}")
    check_locations(tool, backend, arguments, built)
    check_round_trip(tool, arguments, built)
    return "built"


# -- running -----------------------------------------------------------------------------------------------------

@dataclass
class Tally:
    outcomes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())


def fuzz_construct(gw: Gateway, construct: str, count: int, derandomize: bool = True) -> Tally:
    """Run `count` generated argument sets for one construct; raises (hypothesis-shrunk) on a violation."""
    tool = gw.tools[construct]
    backend = Backend("fuzz", UPSTREAM)
    tally = Tally()

    @settings(max_examples=count, deadline=None, database=None, derandomize=derandomize,
              suppress_health_check=list(HealthCheck))
    @given(arguments(tool))
    def run(args: dict[str, Any]) -> None:
        tally.outcomes[check_request(tool, backend, args)] += 1

    started = time.perf_counter()
    run()
    tally.seconds = time.perf_counter() - started
    return tally


# -- served sample ---------------------------------------------------------------------------------------------

class Recorder:
    """An upstream that records every request exactly as it arrived (raw path, raw query, raw headers, body) and
    answers `{}`. A bare ASGI app: a router would match on the decoded path (and a `\n` in it fails to match)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, list[tuple[str, str]], bytes]] = []

    def app(self) -> Any:
        async def app(scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                if scope["type"] == "lifespan":
                    while (await receive())["type"] != "lifespan.shutdown":
                        await send({"type": "lifespan.startup.complete"})
                    await send({"type": "lifespan.shutdown.complete"})
                return
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
            self.requests.append((scope["method"], scope["raw_path"].decode("latin-1"),
                                  scope["query_string"].decode("latin-1"), headers, body))
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"{}"})

        return app


def sample_arguments(gw: Gateway, construct: str, count: int) -> list[dict[str, Any]]:
    """`count` generated argument sets that validate and build (to be sent through a served gateway)."""
    tool = gw.tools[construct]
    found: list[dict[str, Any]] = []

    @settings(max_examples=count * 12, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(arguments(tool))
    def collect(args: dict[str, Any]) -> None:
        if len(found) < count and "\\ud" not in json.dumps(args) and not tool.validate(dict(args)):
            with contextlib.suppress(ArgumentError):
                build_request(tool.request, args)
                found.append(args)

    collect()
    return found


async def send_served(url: str, recorder: Recorder, gw: Gateway, upstream: str, construct: str,
                      samples: list[dict[str, Any]]) -> Counter[str]:
    """Call `construct` with each sample through the served gateway; compare what reached the upstream with
    what the builder makes (method, raw path, query, the argument headers, body fields)."""
    import httpx2

    tool = gw.tools[construct]
    backend = Backend("fuzz", upstream)
    outcomes: Counter[str] = Counter()
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    async with httpx2.AsyncClient(timeout=30) as http:
        for n, args in enumerate(samples):
            before = len(recorder.requests)
            body = {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": construct, "arguments": args}}
            answer = await http.post(url, content=json.dumps(body), headers={**headers,
                                                                          "Content-Type": "application/json"})
            result = answer.json().get("result") or {}
            if answer.status_code != 200 or result.get("isError") or len(recorder.requests) != before + 1:
                raise Violation(f"{construct}: served call failed for {args!r}: {answer.status_code} "
                                f"{answer.text[:500]}")
            method, raw, query, got_headers, content = recorder.requests[-1]
            expected = decompose(backend, build_request(tool.request, args))
            if method != tool.request.method or raw != expected.path or query != expected.query:
                raise Violation(f"{construct}: upstream got {method} {raw}?{query}, built {expected.path}?"
                                f"{expected.query} for {args!r}")
            check_structure(tool, Built(upstream + raw[len(PREFIX_PATH):], raw, query, got_headers, content,
                                        expected.content_type), upstream)
            for binding in tool.request.bindings:
                if binding.target in ("header", "cookie") and binding.argument in args:
                    name = binding.wire_name if binding.target == "header" else "cookie"
                    sent = [v.strip() for v in expected.header(name)]
                    arrived = [v for k, v in got_headers if k.lower() == name.lower()]
                    if sent != arrived:
                        raise Violation(f"{construct}: header {name} sent {sent}, arrived {arrived}")
            if expected.content_type.startswith("multipart/"):
                ours = Counter(name for name, _ in _multipart_parts(expected.content, expected.content_type))
                ctype = next(v for k, v in got_headers if k.lower() == "content-type")
                theirs = Counter(name for name, _ in _multipart_parts(content, ctype))
                if ours != theirs:
                    raise Violation(f"{construct}: multipart parts {ours} arrived as {theirs}")
            elif content != expected.content:
                raise Violation(f"{construct}: body {expected.content!r} arrived as {content!r}")
            outcomes["served"] += 1
    return outcomes


def run_served(gw_folder: Path, count: int, constructs: tuple[str, ...] = CONSTRUCTS) -> Counter[str]:
    import asyncio

    from adapters.devauth.server import ServerThread
    from gateway.server import create_app

    recorder = Recorder()
    outcomes: Counter[str] = Counter()
    with ServerThread(recorder.app()) as upstream:
        base = f"{upstream.url}{PREFIX_PATH}"
        gw = load(gw_folder, base)
        with ServerThread(create_app(gw)) as server:
            for construct in constructs:
                samples = sample_arguments(gw, construct, count)
                outcomes += asyncio.run(send_served(f"{server.url}/mcp", recorder, gw, base, construct, samples))
    return outcomes


@contextlib.contextmanager
def _tempdir() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="gateway-fuzz-") as folder:
        yield Path(folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="generated argument sets per construct")
    parser.add_argument("--served", type=int, default=300, help="calls per construct through a served gateway")
    parser.add_argument("--construct", action="append", choices=CONSTRUCTS, help="only these (repeatable)")
    parser.add_argument("--write-results", action="store_true", help="write a section of bench/RESULTS.md")
    args = parser.parse_args(argv)
    constructs = tuple(args.construct or CONSTRUCTS)
    rows = ["| construct | generated | built and checked | refused by the builder | invalid (validator) "
            "| validator crashed (bug) | s |", "|---|---|---|---|---|---|---|"]
    total = Counter()
    with _tempdir() as folder:
        gw = load(folder)
        for construct in constructs:
            tally = fuzz_construct(gw, construct, args.count)
            total += tally.outcomes
            o = tally.outcomes
            rows.append(f"| {construct} | {tally.total} | {o['built']} | {o['refused']} | {o['invalid']} | "
                        f"{o['validator_crash']} | {tally.seconds:.1f} |")
            print(rows[-1], file=sys.stderr, flush=True)
        served = run_served(folder, args.served, constructs) if args.served else Counter()
    rows.append(f"| **all** | {sum(total.values())} | {total['built']} | {total['refused']} | {total['invalid']} "
                f"| {total['validator_crash']} | |")
    body = "\n".join(rows) + (f"\n\nServed through a real gateway to a recording upstream and compared: "
                              f"{served['served']} calls ({args.served} per construct). Violations: 0.\n")
    print(body)
    if args.write_results:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from report import write_section

        write_section(Path(__file__).resolve().parent / "RESULTS.md", "Request-building fuzz (bench/fuzz.py)", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
