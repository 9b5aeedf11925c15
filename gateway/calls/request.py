"""Request building: a tool's `RequestPlan` plus validated arguments -> the upstream HTTP request.

Arguments reach this stage already validated against the tool's inputSchema, but a schema says
nothing about what a value does to a URL. This module is where text from the model becomes part
of an HTTP message, so it is where injection is stopped:

* path values are percent-encoded down to RFC 3986 unreserved characters, so no value can add a
  `/`, `?`, `#` or an escape that decodes to one, and a segment that would be empty, `.` or `..`
  is refused. The forwarder only appends the result to the backend's base path, so scheme, host
  and port are out of reach;
* query names and values are percent-encoded the same way (`allowReserved` relaxes this, except
  for `&`, `=`, `#` and `+`, which would break the pair structure or be read as a space);
* header and cookie values with control characters (CR, LF, NUL, ...) or non-ASCII text are
  refused, and headers the gateway owns (authorization, framing, content type) are never taken
  from arguments.

Parameter serialisation follows the OpenAPI 3.1.1 "Style Examples" table (which follows RFC 6570;
its label rows fix a typo of the 3.0.x tables). What OpenAPI leaves open is decided here:

* `null` values, and `null` items of arrays and objects, are left out; an empty array or object
  adds nothing to a query;
* arrays and objects nested inside a parameter value are written as compact JSON text, except
  under `deepObject`, which nests brackets: `f[a][b]=1`, and `f[tags][]=x` for arrays (the
  qs/Rails/PHP convention deepObject comes from; a top-level array is `f[]=x`);
* `spaceDelimited`/`pipeDelimited` with `explode: true` repeat the key, like `form`;
* a `content` parameter (`media_type` set) is compact JSON for JSON media types; for any other
  media type a string goes as it is and other values as JSON;
* integral floats of an `integer` schema lose their `.0` (`3.0` -> `3`); other numbers are
  written in Python's shortest round-tripping form.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from gateway.spec import pointer
from gateway.spec.model import Encoding, Parameter, Schema
from gateway.tools.model import ArgumentBinding, BodyPlan, RequestPlan

OWNED_HEADERS = frozenset(
    {
        "accept",
        "authorization",
        "connection",
        "content-length",
        "content-type",
        "cookie",
        "host",
        "transfer-encoding",
    }
)
"""Headers only the gateway sets: a binding naming one is skipped. OpenAPI itself says header
parameters named Accept, Content-Type or Authorization are ignored; the rest frame the message."""

_PLACEHOLDER = re.compile(r"\{([^{}/]+)\}")
_PATH_LITERAL_SAFE = "/!$&'()*+,;=:@%"  # a template's own text: keep what the spec author wrote
_QUERY_RESERVED_SAFE = ":/?@!$'()*,;[]"  # allowReserved: RFC 3986 reserved minus & = # +
_PCT_TRIPLET = re.compile(r"(%[0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_DELIMITERS = {"spaceDelimited": "%20", "pipeDelimited": "%7C"}
_DEFAULT_TYPES = {
    "json": "application/json",
    "form": "application/x-www-form-urlencoded",
    "multipart": "multipart/form-data",
    "text": "text/plain; charset=utf-8",
    "binary": "application/octet-stream",
}

Encode = Callable[[Any], str]
"""Turns a value (a scalar, or a nested array/object written as JSON) into its encoded text."""


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """An HTTP request ready for the forwarder, which appends `path` and `query` to the backend URL."""

    method: str  # upper case
    path: str  # percent-encoded absolute path, starts with "/"
    query: str  # percent-encoded query string without "?" ("" when none)
    headers: tuple[tuple[str, str], ...]
    content: bytes | None = None


class ArgumentError(ValueError):
    """An argument that passed JSON Schema validation but cannot be sent safely.

    `pointer` locates the argument in the tool call's arguments (`/petId`), so the model is told
    exactly which value to change.
    """

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(f"{pointer}: {message}")
        self.pointer = pointer
        self.message = message


class _Refused(Exception):
    """Raised deep inside serialisation; `build_request` adds the argument's pointer."""


def build_request(plan: RequestPlan, arguments: Mapping[str, Any]) -> UpstreamRequest:
    """The upstream request for one tool call. Deterministic, except for a multipart boundary."""
    values = {name: value for name, value in {**arguments, **plan.constants}.items() if value is not None}
    headers: list[tuple[str, str]] = [("Accept", plan.accept)] if plan.accept else []
    query = [f"{_quote(name)}={_quote(value)}" for name, value in plan.fixed_query]
    cookies: list[str] = []
    for binding in plan.bindings:
        if binding.argument not in values or binding.target not in ("query", "header", "cookie"):
            continue
        with _located(binding.argument):
            value = values[binding.argument]
            if binding.target == "query":
                query += _parameter_pairs(binding, value, _query_encoder(_allow_reserved(binding)))
            elif binding.target == "cookie":
                cookies += _parameter_pairs(binding, value, _cookie_encoder())
            elif binding.wire_name.lower() not in OWNED_HEADERS:
                headers.append((binding.wire_name, _header_value(binding, value)))
    if cookies:
        headers.append(("Cookie", "; ".join(cookies)))
    content = None
    if plan.body is not None:
        encoded = _body(plan.body, plan.bindings, values)
        if encoded is not None:
            content, content_type = encoded
            headers.append(("Content-Type", content_type))
    return UpstreamRequest(
        method=plan.method.upper(),
        path=_path(plan.path, plan.bindings, values),
        query="&".join(query),
        headers=tuple(headers),
        content=content,
    )


class _located:
    """Context manager turning `_Refused` into an `ArgumentError` at the given location."""

    def __init__(self, *tokens: str) -> None:
        self.pointer = pointer.join("", *tokens) or "/"

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, _Refused):
            raise ArgumentError(self.pointer, str(exc)) from None


# -- scalars and encoders ---------------------------------------------------------------------------


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _Refused(f"cannot be written as JSON ({exc})") from None


def _text(value: Any, as_int: bool = False) -> str:
    """A scalar as parameter text: booleans as true/false, arrays and objects as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Refused("numbers must be finite")
        return str(int(value)) if as_int and value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    return _json(value)


def _quote(text: str, safe: str = "") -> str:
    """Percent-encode UTF-8 `text`, keeping RFC 3986 unreserved characters and `safe`."""
    try:
        return quote(text, safe=safe)
    except UnicodeEncodeError:
        raise _Refused("contains text that is not valid Unicode (a lone surrogate)") from None


def _checked(text: str) -> str:
    """Header-bound text: control characters would split or end the header, non-ASCII cannot be sent."""
    if _CONTROL.search(text):
        raise _Refused("header and cookie values cannot contain control characters (CR, LF, NUL, ...)")
    if not text.isascii():
        raise _Refused("header values must be ASCII text")
    return text


def _is_integer(schema: Any) -> bool:
    """Whether `schema` (or, for an array, its items) is of type integer, so 3.0 is written 3."""
    if not isinstance(schema, Mapping):
        return False
    kind = schema.get("type")
    if kind == "integer" or (isinstance(kind, list) and "integer" in kind):
        return True
    return kind == "array" and _is_integer(schema.get("items"))


def _encoder(encode: Callable[[str], str], as_int: bool = False) -> Encode:
    return lambda value: encode(_text(value, as_int))


def _query_encoder(allow_reserved: bool, as_int: bool = False) -> Callable[[Any, bool], str]:
    """`(value, is_name) -> text`; names are always fully encoded, values keep reserved characters
    (and existing %XX escapes, as RFC 6570 reserved expansion does) when `allow_reserved`."""

    def value_text(text: str) -> str:
        pieces = _PCT_TRIPLET.split(text)
        return "".join(piece if i % 2 else _quote(piece, _QUERY_RESERVED_SAFE) for i, piece in enumerate(pieces))

    def encode(value: Any, is_name: bool = False) -> str:
        text = _text(value, as_int)
        return value_text(text) if allow_reserved and not is_name else _quote(text)

    return encode


def _cookie_encoder(as_int: bool = False) -> Callable[[Any, bool], str]:
    return lambda value, is_name=False: _quote(_checked(_text(value, as_int)))


def _allow_reserved(binding: ArgumentBinding) -> bool:
    return binding.parameter is not None and binding.parameter.allow_reserved


def _content_text(parameter: Parameter, value: Any) -> str | None:
    """The text of a `content` parameter, None for a `schema` parameter."""
    if parameter.media_type is None:
        return None
    if isinstance(value, str) and not _is_json_type(parameter.media_type):
        return value
    return _json(value)


def _is_json_type(content_type: str) -> bool:
    base = content_type.split(";", 1)[0].strip().lower()
    return base in ("application/json", "text/json") or base.endswith("+json")


# -- parameter styles ----------------------------------------------------------------------------------


def _items(value: Any) -> list[Any] | list[tuple[str, Any]] | None:
    """Array items, or object (key, value) pairs, without nulls; None for a scalar."""
    if isinstance(value, Mapping):
        return [(key, item) for key, item in value.items() if item is not None]
    if isinstance(value, list | tuple):
        return [item for item in value if item is not None]
    return None


def _style_pairs(name: str, value: Any, style: str, explode: bool, encode: Callable[..., str]) -> list[str]:
    """Query-like `name=value` pairs (already encoded) for form, spaceDelimited, pipeDelimited, deepObject."""
    if style == "deepObject" and isinstance(value, Mapping | list | tuple):
        return list(_deep_pairs(name, value, encode))
    key = encode(name, True)
    items = _items(value)
    if items is None:
        return [f"{key}={encode(value)}"]
    if not items:
        return []
    if isinstance(value, Mapping):
        if explode:
            return [f"{encode(k, True)}={encode(v)}" for k, v in items]
        flat: Iterable[Any] = (x for pair in items for x in pair)
    else:
        if explode:
            return [f"{key}={encode(item)}" for item in items]
        flat = items
    return [f"{key}=" + _DELIMITERS.get(style, ",").join(encode(x) for x in flat)]


def _deep_pairs(prefix: str, value: Any, encode: Callable[..., str]) -> Iterator[str]:
    items = _items(value)
    if items is None:
        yield f"{encode(prefix, True)}={encode(value)}"
    elif isinstance(value, Mapping):
        for key, item in items:
            yield from _deep_pairs(f"{prefix}[{_text(key)}]", item, encode)
    else:
        for item in items:
            yield from _deep_pairs(prefix + "[]", item, encode)


def _parameter_pairs(binding: ArgumentBinding, value: Any, encode: Callable[..., str]) -> list[str]:
    parameter = binding.parameter
    if parameter is None:
        return [f"{encode(binding.wire_name, True)}={encode(value)}"]
    content = _content_text(parameter, value)
    if content is not None:
        return [f"{encode(binding.wire_name, True)}={encode(content)}"]
    if _is_integer(parameter.schema):
        encode = _query_encoder(parameter.allow_reserved, True) if binding.target == "query" else _cookie_encoder(True)
    return _style_pairs(binding.wire_name, value, parameter.style, parameter.explode, encode)


def _simple(value: Any, explode: bool, encode: Encode, separator: str = ",") -> str:
    """RFC 6570 simple/label expansion body: `blue`, `blue,black`, `R,100,G,200` / `R=100,G=200`."""
    items = _items(value)
    if items is None:
        return encode(value)
    if isinstance(value, Mapping):
        if explode:
            return separator.join(f"{encode(k)}={encode(v)}" for k, v in items)
        return ",".join(f"{encode(k)},{encode(v)}" for k, v in items)
    return (separator if explode else ",").join(encode(item) for item in items)


def _path_value(name: str, value: Any, style: str, explode: bool, encode: Encode) -> str:
    if style == "label":
        return "." + _simple(value, explode, encode, ".")
    if style != "matrix":
        return _simple(value, explode, encode)
    items = _items(value)
    if explode and items is not None:
        if isinstance(value, Mapping):
            return "".join(f";{encode(k)}={encode(v)}" for k, v in items)
        return "".join(f";{encode(name)}={encode(item)}" for item in items)
    body = _simple(value, False, encode)
    return f";{encode(name)}" + (f"={body}" if body else "")


def _header_value(binding: ArgumentBinding, value: Any) -> str:
    parameter = binding.parameter
    content = None if parameter is None else _content_text(parameter, value)
    if content is not None:
        return _checked(content)
    explode = parameter is not None and parameter.explode
    as_int = parameter is not None and _is_integer(parameter.schema)
    return _simple(value, explode, _encoder(_checked, as_int))


# -- path ----------------------------------------------------------------------------------------------


def _path(template: str, bindings: Iterable[ArgumentBinding], values: Mapping[str, Any]) -> str:
    """The template with every `{name}` expanded; each expanded segment checked for `""`, `.` and `..`."""
    by_name = {binding.wire_name: binding for binding in bindings if binding.target == "path"}
    segments = []
    for segment in template.lstrip("/").split("/"):
        expanded = []
        start = 0
        for match in _PLACEHOLDER.finditer(segment):
            expanded.append(_quote(segment[start : match.start()], _PATH_LITERAL_SAFE))
            expanded.append(_path_parameter(match.group(1), by_name.get(match.group(1)), values))
            start = match.end()
        expanded.append(_quote(segment[start:], _PATH_LITERAL_SAFE))
        text = "".join(expanded)
        if len(expanded) > 1:
            _check_segments(text, by_name, segment)
        segments.append(text)
    return "/" + "/".join(segments)


def _path_parameter(name: str, binding: ArgumentBinding | None, values: Mapping[str, Any]) -> str:
    if binding is None:
        raise ArgumentError(pointer.join("", name), f"the path parameter {{{name}}} has no argument")
    if binding.argument not in values:
        raise ArgumentError(pointer.join("", binding.argument), f"the path parameter {{{name}}} is required")
    value = values[binding.argument]
    with _located(binding.argument):
        safe = "/" if binding.allow_slash else ""  # allowReserved is query-only: never honoured here
        parameter = binding.parameter
        as_int = parameter is not None and _is_integer(parameter.schema)
        encode = _encoder(lambda text: _quote(text, safe), as_int)
        content = None if parameter is None else _content_text(parameter, value)
        if content is not None:
            return encode(content)
        if parameter is None:
            return _simple(value, False, encode)
        return _path_value(name, value, parameter.style, parameter.explode, encode)


def _check_segments(text: str, by_name: Mapping[str, ArgumentBinding], segment: str) -> None:
    for part in text.split("/"):
        if part in ("", ".", ".."):
            names = _PLACEHOLDER.findall(segment)
            argument = by_name[names[0]].argument
            shown = "an empty segment" if not part else f"a {part!r} segment"
            raise ArgumentError(pointer.join("", argument), f"would make {shown} in the URL path, which is not allowed")


# -- body ----------------------------------------------------------------------------------------------


def _body(plan: BodyPlan, bindings: Iterable[ArgumentBinding], values: Mapping[str, Any]) -> tuple[bytes, str] | None:
    """The encoded body and its Content-Type, or None when no body is to be sent."""
    if plan.flattened:
        fields = [(b.wire_name, values[b.argument], (b.argument,)) for b in bindings if b.target == "body-property"]
        fields = [field for field in fields if field[1] is not None and field[0] is not None]
        fields = [(name, value, where) for name, value, where in fields if where[0] in values]
        if not fields and not plan.required:
            return None
        return _encode_body(plan, {name: value for name, value, _ in fields}, dict(fields_where(fields)))
    binding = next((b for b in bindings if b.target == "body"), None)
    if binding is None or binding.argument not in values:
        if plan.required:
            where = pointer.join("", binding.argument) if binding is not None else "/"
            raise ArgumentError(where, "the request body is required")
        return None
    value = values[binding.argument]
    return _encode_body(plan, value, _nested_where(binding.argument, value))
