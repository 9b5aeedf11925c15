"""Request building: a tool's `RequestPlan` plus validated arguments -> the upstream HTTP request.

Arguments reach this stage already validated against the tool's inputSchema, but a schema says
nothing about what a value does to a URL. This module is where text from the model becomes part
of an HTTP message, so it is where injection is stopped:

* path values are percent-encoded down to RFC 3986 unreserved characters, so no value can add a
  `/`, `?`, `#` or an escape that decodes to one, and a segment that would be empty, `.` or `..`
  is refused (a binding with `allow_slash` keeps `/`, nothing else). The forwarder only appends
  the result to the backend's base path, so scheme, host and port are out of reach;
* query names and values are percent-encoded the same way. `allowReserved` keeps RFC 3986
  reserved characters and existing `%XX` escapes in values, except `&`, `=`, `#` (they would
  break the pair structure or end the URL) and `+` (many servers read it as a space);
* header and cookie values with control characters (CR, LF, NUL, ...) are refused, as is
  non-ASCII header text (it cannot be sent); headers the gateway owns (authorization, framing,
  content type, cookies) are never taken from a header binding.

Parameter serialisation follows the OpenAPI 3.1.1 "Style Examples" table (itself RFC 6570; its
label rows correct the 3.0.x tables). What OpenAPI leaves open is decided here:

* `null` values, and `null` items of arrays and objects, are left out; an empty array or object
  adds nothing to a query;
* arrays and objects nested inside a parameter value are written as compact JSON text, except
  under `deepObject`, which nests brackets: `f[a][b]=1`, and `f[a][]=x` for arrays of scalars (the
  qs/Rails/PHP convention deepObject comes from; a top-level array is `f[]=x`); items of an array
  holding objects or arrays are indexed, `f[l][0][x]=1&f[l][1][x]=2` (qs's default);
* a query or header value without `allowEmptyValue` is never sent empty (an empty string, or a
  deepObject leaf that is one, is left out); a spec-declared `Accept` header replaces the plan's;
* `spaceDelimited`/`pipeDelimited` with `explode: true` repeat the key, like `form`;
* a `content` parameter (`media_type` set) is compact JSON for JSON media types; for other media
  types a string goes as it is and other values as JSON;
* integral floats of an `integer` schema lose their `.0` (`3.0` -> `3`); other numbers are
  written in Python's shortest round-tripping form.

Bodies: JSON is compact UTF-8. A form body has one field per top-level property, serialised like a
query parameter with the property's `encoding` style/explode (default: form, exploded, so arrays
repeat the key); an object property without an explicit `style` is sent as JSON text (as XML when
its encoding's contentType is XML), as are array items that are objects. A multipart body has one
part per property (arrays: one part per item, or one joined part for an explicit non-exploded
`style`); objects are `application/json` parts (XML parts for an XML contentType), strings whose
schema says `format: binary`/`base64` (or `contentMediaType`/`contentEncoding`, or an encoding
contentType that is neither text nor JSON) are file parts named after the property, and encoding
`headers` with a value of their own (`const`, a one-value `enum`, `default`) are added to the part.
Values the plan lists in `base64` (multipart file parts, binary bodies) arrive base64-encoded and are
sent decoded, their length limits checked on the bytes; a required array of a form or multipart body
must not be empty (it would vanish). An object given for an XML body is written as XML following the
schema's `xml` objects (`gateway.tools.xml`). Other text bodies take the argument's text as UTF-8.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from gateway.media import is_json, is_xml
from gateway.spec import pointer
from gateway.spec.model import Encoding, Parameter, Schema
from gateway.tools import xml
from gateway.tools.model import ArgumentBinding, BodyPlan, RequestPlan

OWNED_HEADERS = frozenset(
    {"authorization", "connection", "content-length", "content-type", "cookie", "host", "transfer-encoding"}
)
"""Headers only the gateway sets: a header binding naming one is skipped. OpenAPI itself says header
parameters named Content-Type or Authorization are ignored; the others frame the message. A spec-declared
`Accept` parameter is honoured: its value replaces the gateway's own `Accept`."""

_PLACEHOLDER = re.compile(r"\{([^{}/]+)\}")
_PATH_LITERAL_SAFE = "/!$&'()*+,;=:@%"  # the template's own text: keep what the spec author wrote
_QUERY_RESERVED_SAFE = ":/?@!$'()*,;[]"  # allowReserved: RFC 3986 reserved characters minus & = # +
_PCT_TRIPLET = re.compile(r"(%[0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_DELIMITERS = {"spaceDelimited": "%20", "pipeDelimited": "%7C", "tabDelimited": "%09"}  # tab: Swagger 2.0 tsv
_FILE_FORMATS = frozenset({"binary", "base64"})
_DEFAULT_TYPES = {
    "json": "application/json",
    "form": "application/x-www-form-urlencoded",
    "multipart": "multipart/form-data",
    "text": "text/plain; charset=utf-8",
    "binary": "application/octet-stream",
}


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """An HTTP request ready for the forwarder, which appends `path` and `query` to the backend URL."""

    method: str  # upper case
    path: str  # percent-encoded absolute path, starts with "/"
    query: str  # percent-encoded query string without "?" ("" when none)
    headers: tuple[tuple[str, str], ...]
    content: bytes | None = None  # the encoded body


class ArgumentError(ValueError):
    """An argument that passed JSON Schema validation but cannot be sent safely.

    `pointer` locates the argument in the call's arguments (`/petId`), so the model is told which
    value to change.
    """

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(f"{pointer}: {message}")
        self.pointer = pointer
        self.message = message


class _Refused(Exception):
    """Raised deep inside serialisation, where the argument is not known; `_Located` adds it."""


class _Located:
    """`with _Located(*tokens):` turns a `_Refused` raised inside into an `ArgumentError` at the pointer made
    of `tokens` (a plain class, not a generator: it wraps every argument of every call)."""

    __slots__ = ("tokens",)

    def __init__(self, *tokens: str) -> None:
        self.tokens = tokens

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, traceback: object) -> None:
        if isinstance(exc, _Refused):
            raise ArgumentError(pointer.join("", *self.tokens) or "/", str(exc)) from None


def build_request(plan: RequestPlan, arguments: Mapping[str, Any]) -> UpstreamRequest:
    """The upstream request for one tool call. Deterministic, except for a multipart boundary."""
    values = {name: value for name, value in {**arguments, **plan.constants}.items() if value is not None}
    accept = plan.accept
    headers: list[tuple[str, str]] = []
    query = [f"{_quote(name)}={_quote(value)}" for name, value in plan.fixed_query]
    cookies: list[str] = []
    for binding in plan.bindings:
        if binding.argument not in values:
            continue
        empty_ok = binding.parameter is None or binding.parameter.allow_empty_value
        with _Located(binding.argument):
            if binding.target == "query":
                pairs = _parameter_pairs(binding, values[binding.argument])
                query += pairs if empty_ok else [pair for pair in pairs if not pair.endswith("=")]
            elif binding.target == "cookie":
                cookies += _parameter_pairs(binding, values[binding.argument])
            elif binding.target == "header" and binding.wire_name.lower() not in OWNED_HEADERS:
                text = _header_value(binding, values[binding.argument])
                if not text and not empty_ok:
                    continue  # never sent empty: an empty header means something else to most servers
                if binding.wire_name.lower() == "accept":
                    accept = text  # the spec's own Accept parameter: the gateway's Accept yields to it
                else:
                    headers.append((binding.wire_name, text))
    if accept:
        headers.insert(0, ("Accept", accept))
    if cookies:
        headers.append(("Cookie", "; ".join(cookies)))
    content = None
    if plan.body is not None and (body := _body(plan.body, plan.bindings, values)) is not None:
        content, content_type = body
        headers.append(("Content-Type", content_type))
    return UpstreamRequest(
        method=plan.method.upper(),
        path=_path(plan.path, plan.bindings, values),
        query="&".join(query),
        headers=tuple(headers),
        content=content,
    )


# -- text and encoders -----------------------------------------------------------------------------


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _Refused(f"cannot be written as JSON ({exc})") from None


def _text(value: Any, as_int: bool = False) -> str:
    """A value as parameter text: booleans as true/false, nested arrays and objects as JSON."""
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


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Refused("contains text that is not valid Unicode (a lone surrogate)") from None


def _quote(text: str, safe: str = "") -> str:
    """Percent-encode the UTF-8 of `text`, keeping only RFC 3986 unreserved characters and `safe`."""
    return quote(_utf8(text), safe=safe)


def _quote_reserved(text: str) -> str:
    """allowReserved (RFC 6570 reserved expansion): reserved characters and %XX escapes pass through."""
    pieces = _PCT_TRIPLET.split(text)
    return "".join(piece if i % 2 else _quote(piece, _QUERY_RESERVED_SAFE) for i, piece in enumerate(pieces))


def _no_controls(text: str) -> str:
    """Header-bound text: control characters (CR, LF, NUL, ...) would split or end the header."""
    if _CONTROL.search(text):
        raise _Refused("header and cookie values cannot contain control characters (CR, LF, NUL, ...)")
    return text


def _header_text(text: str) -> str:
    if not _no_controls(text).isascii():
        raise _Refused("header values must be ASCII text")
    return text


def _cookie_text(text: str) -> str:
    return _quote(_no_controls(text))


@dataclass(frozen=True, slots=True)
class _Codec:
    """How one location writes text: names and values may be encoded differently (allowReserved)."""

    value_text: Callable[[str], str]
    name_text: Callable[[str], str] = _quote
    as_int: bool = False

    def name(self, key: Any) -> str:
        return self.name_text(_text(key))

    def value(self, value: Any) -> str:
        return self.value_text(_text(value, self.as_int))


def _codec(binding: ArgumentBinding) -> _Codec:
    parameter = binding.parameter
    as_int = parameter is not None and _is_integer(parameter.schema)
    if binding.target == "path":
        keep_slash = binding.allow_slash or (parameter is not None and parameter.skip_url_encoding)
        safe = "/" if keep_slash else ""  # allowReserved is query-only: never honoured here

        def path_text(text: str) -> str:
            return _quote(text, safe)

        return _Codec(path_text, path_text, as_int)
    if binding.target == "header":
        return _Codec(_header_text, _header_text, as_int)
    if binding.target == "cookie":
        return _Codec(_cookie_text, _cookie_text, as_int)
    reserved = parameter is not None and (parameter.allow_reserved or parameter.skip_url_encoding)
    return _Codec(_quote_reserved if reserved else _quote, as_int=as_int)


def _is_integer(schema: Any) -> bool:
    """Whether `schema` (or, for an array, its items) is of type integer, so that 3.0 is written 3."""
    if not isinstance(schema, Mapping):
        return False
    kind = schema.get("type")
    if kind == "integer" or (isinstance(kind, list) and "integer" in kind):
        return True
    return kind == "array" and _is_integer(schema.get("items"))


def _content_text(parameter: Parameter | None, value: Any) -> str | None:
    """The text of a `content` parameter; None for a `schema` parameter."""
    if parameter is None or parameter.media_type is None:
        return None
    if isinstance(value, str) and not is_json(parameter.media_type):
        return value
    return _json(value)


# -- parameter styles ------------------------------------------------------------------------------


def _items(value: Any) -> list[Any] | None:
    """Array items, or object (key, value) pairs, without nulls; None for a scalar."""
    if isinstance(value, Mapping):
        return [(key, item) for key, item in value.items() if item is not None]
    if isinstance(value, list | tuple):
        return [item for item in value if item is not None]
    return None


def _style_pairs(name: str, value: Any, style: str, explode: bool, codec: _Codec) -> list[str]:
    """Encoded `name=value` pairs for the form, spaceDelimited, pipeDelimited and deepObject styles, and the
    AWS query protocols' flattening (`x-aws-query`: `Entries.member.1.Id=a`; `x-aws-ec2`: `Filter.1.Name=a`)."""
    if style == "deepObject" and _items(value) is not None:
        return list(_deep_pairs(name, value, codec))
    if style in _AWS_STYLES:
        return list(_aws_pairs(name, value, _AWS_STYLES[style], codec))
    items = _items(value)
    if items is None:
        return [f"{codec.name(name)}={codec.value(value)}"]
    if not items:
        return []
    if isinstance(value, Mapping):
        if explode:
            return [f"{codec.name(key)}={codec.value(item)}" for key, item in items]
        items = [text for pair in items for text in pair]
    elif explode:
        return [f"{codec.name(name)}={codec.value(item)}" for item in items]
    return [f"{codec.name(name)}=" + _DELIMITERS.get(style, ",").join(codec.value(item) for item in items)]


_AWS_STYLES = {"x-aws-query": ".member.", "x-aws-ec2": "."}


def _aws_pairs(prefix: str, value: Any, list_infix: str, codec: _Codec) -> Iterator[str]:
    """AWS query-protocol names: lists number their items from 1, structures name their members."""
    items = _items(value)
    if items is None:
        yield f"{codec.name(prefix)}={codec.value(value)}"
    elif isinstance(value, Mapping):
        for key, item in items:
            yield from _aws_pairs(f"{prefix}.{_text(key)}", item, list_infix, codec)
    else:
        for index, item in enumerate(items, 1):
            yield from _aws_pairs(f"{prefix}{list_infix}{index}", item, list_infix, codec)


def _deep_pairs(prefix: str, value: Any, codec: _Codec) -> Iterator[str]:
    items = _items(value)
    if items is None:
        yield f"{codec.name(prefix)}={codec.value(value)}"
    elif isinstance(value, Mapping):
        for key, item in items:
            yield from _deep_pairs(f"{prefix}[{_text(key)}]", item, codec)
    elif all(_items(item) is None for item in items):
        for item in items:
            yield from _deep_pairs(prefix + "[]", item, codec)
    else:  # objects (or arrays) in an array: indexed, or `[][a]=1&[][b]=2` could not tell one item from two
        for index, item in enumerate(items):
            yield from _deep_pairs(f"{prefix}[{index}]", item, codec)


def _parameter_pairs(binding: ArgumentBinding, value: Any) -> list[str]:
    """Query or cookie pairs of one binding."""
    codec = _codec(binding)
    parameter = binding.parameter
    content = _content_text(parameter, value)
    if content is not None:
        return [f"{codec.name(binding.wire_name)}={codec.value_text(content)}"]
    if parameter is None:
        return _style_pairs(binding.wire_name, value, "form", True, codec)
    return _style_pairs(binding.wire_name, value, parameter.style, parameter.explode, codec)


def _simple(value: Any, explode: bool, codec: _Codec, separator: str = ",") -> str:
    """RFC 6570 simple (and label) expansion: `blue`, `blue,black`, `R,100,G,200` or `R=100,G=200`."""
    items = _items(value)
    if items is None:
        return codec.value(value)
    if isinstance(value, Mapping):
        if explode:
            return separator.join(f"{codec.value(key)}={codec.value(item)}" for key, item in items)
        return ",".join(f"{codec.value(key)},{codec.value(item)}" for key, item in items)
    return (separator if explode else ",").join(codec.value(item) for item in items)


def _path_value(name: str, value: Any, style: str, explode: bool, codec: _Codec) -> str:
    if style == "label":
        return "." + _simple(value, explode, codec, ".")
    if style != "matrix":
        return _simple(value, explode, codec)
    items = _items(value)
    if explode and items is not None:
        if isinstance(value, Mapping):
            return "".join(f";{codec.value(key)}={codec.value(item)}" for key, item in items)
        return "".join(f";{codec.name(name)}={codec.value(item)}" for item in items)
    body = _simple(value, False, codec)
    return f";{codec.name(name)}" + (f"={body}" if body else "")


def _header_value(binding: ArgumentBinding, value: Any) -> str:
    codec = _codec(binding)
    content = _content_text(binding.parameter, value)
    if content is not None:
        return codec.value_text(content)
    return _simple(value, binding.parameter is not None and binding.parameter.explode, codec)


# -- path ------------------------------------------------------------------------------------------


def _path(template: str, bindings: Iterable[ArgumentBinding], values: Mapping[str, Any]) -> str:
    """The template with every `{name}` expanded, each segment holding a parameter checked."""
    by_name = {binding.wire_name: binding for binding in bindings if binding.target == "path"}
    segments = []
    for pieces in _template(template):
        if len(pieces) == 1:  # a literal segment
            segments.append(pieces[0])
            continue
        text = "".join(_path_parameter(piece, by_name.get(piece), values) if i % 2 else piece
                       for i, piece in enumerate(pieces))
        if any(part in ("", ".", "..") for part in text.split("/")):
            shown = "an empty" if "" in text.split("/") else "a '.' or '..'"
            raise ArgumentError(
                pointer.join("", by_name[pieces[1]].argument), f"would make {shown} segment in the URL path"
            )
        segments.append(text)
    return "/" + "/".join(segments)


@functools.lru_cache(maxsize=4096)
def _template(template: str) -> tuple[tuple[str, ...], ...]:
    """A path template's segments, each as its pieces: encoded literal, parameter name, encoded literal, ...
    (parsed once per template, not per call)."""
    return tuple(tuple(piece if i % 2 else _quote(piece, _PATH_LITERAL_SAFE)
                       for i, piece in enumerate(_PLACEHOLDER.split(segment)))
                 for segment in template.lstrip("/").split("/"))


def _path_parameter(name: str, binding: ArgumentBinding | None, values: Mapping[str, Any]) -> str:
    if binding is None:
        raise ArgumentError(pointer.join("", name), f"the path parameter {{{name}}} has no argument")
    if binding.argument not in values:
        raise ArgumentError(pointer.join("", binding.argument), f"the path parameter {{{name}}} is required")
    value = values[binding.argument]
    codec = _codec(binding)
    parameter = binding.parameter
    with _Located(binding.argument):
        content = _content_text(parameter, value)
        if content is not None:
            return codec.value_text(content)
        if parameter is None:
            return _simple(value, False, codec)
        return _path_value(name, value, parameter.style, parameter.explode, codec)


# -- body ------------------------------------------------------------------------------------------

_Locate = Callable[..., AbstractContextManager[None]]
"""`locate()` (the whole body) or `locate(property)`: a `_Located` context for errors about it."""


def _body(plan: BodyPlan, bindings: Iterable[ArgumentBinding], values: Mapping[str, Any]) -> tuple[bytes, str] | None:
    """The encoded body and its Content-Type, or None when no body is sent."""
    if plan.flattened:
        given = {b.wire_name: b.argument for b in bindings if b.target == "body-property" and b.argument in values}
        if not given and not plan.required:
            return None
        body = {name: values[argument] for name, argument in given.items()}
        return _encode_body(plan, body, lambda *names: _Located(*(given[name] for name in names)))
    binding = next((b for b in bindings if b.target == "body"), None)
    if binding is None or binding.argument not in values:
        if plan.required:
            raise ArgumentError(pointer.join("", binding.argument) if binding else "/", "the request body is required")
        return None
    argument = binding.argument
    return _encode_body(plan, values[argument], lambda *names: _Located(argument, *names))


def _encode_body(plan: BodyPlan, value: Any, locate: _Locate) -> tuple[bytes, str]:
    media = plan.media_type
    declared = media.content_type
    content_type = declared if declared and "*" not in declared else _DEFAULT_TYPES[plan.kind]
    with locate():
        if "" in plan.base64:
            return _decoded(value, plan.base64[""]), content_type
        if plan.kind == "json":
            return _utf8(_json(value)), content_type
        if plan.kind == "text" and is_xml(declared) and isinstance(value, Mapping | list):
            return _xml(value, plan.xml or xml.xml_plan(media.schema, lambda schema: schema)), content_type
        if plan.kind in ("text", "binary"):
            return _utf8(_text(value)), content_type
        if not isinstance(value, Mapping):
            raise _Refused(f"a {plan.kind} body must be an object")
    fields = [(name, item) for name, item in value.items() if item is not None]
    for name in sorted(plan.required_arrays):
        if isinstance(value.get(name), list | tuple) and not [item for item in value[name] if item is not None]:
            with locate(name):
                raise _Refused(f"the required property {name!r} needs at least one item: an empty list would "
                               f"not appear in a {plan.kind} body at all")
    if plan.kind == "form":
        pairs = []
        for name, item in fields:
            with locate(name):
                pairs += _form_field(name, item, media.encoding.get(name), _property_schema(media.schema, name))
        return "&".join(pairs).encode("ascii"), content_type
    parts = []
    for name, item in fields:
        with locate(name):
            parts += _parts(name, item, media.encoding.get(name), _property_schema(media.schema, name),
                            plan.base64.get(name))
    base = content_type.split(";", 1)[0].strip()
    return _multipart(parts, base if base.lower().startswith("multipart/") else "multipart/form-data")


def _decoded(value: Any, lengths: tuple[int | None, int | None] = (None, None)) -> bytes:
    """The bytes of a base64 argument (RFC 4648 standard alphabet, padded), length-checked."""
    if not isinstance(value, str):
        raise _Refused("must be a string of base64-encoded bytes")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _Refused("is not valid base64 (the tool takes binary content base64-encoded)") from None
    low, high = lengths
    if low is not None and len(data) < low:
        raise _Refused(f"decodes to {len(data)} bytes; at least {low} are needed")
    if high is not None and len(data) > high:
        raise _Refused(f"decodes to {len(data)} bytes; at most {high} are allowed")
    return data


# -- XML -------------------------------------------------------------------------------------------


def _xml(value: Any, node: xml.XmlNode) -> bytes:
    """An object body as XML, following the schema's `xml` objects (see `gateway.tools.xml.write`)."""
    try:
        return xml.write(value, node)
    except xml.XmlRefused as exc:
        raise _Refused(str(exc)) from None


def _property_schema(schema: Schema | None, name: str) -> Schema | None:
    """The schema of a top-level body property, looking into allOf/anyOf/oneOf (inline schemas only)."""
    if not isinstance(schema, Mapping):
        return None
    properties = schema.get("properties")
    if isinstance(properties, Mapping) and isinstance(properties.get(name), Mapping):
        return properties[name]
    for keyword in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(keyword) or ():
            if (found := _property_schema(branch, name)) is not None:
                return found
    return None


def _form_field(name: str, value: Any, encoding: Encoding | None, schema: Schema | None) -> list[str]:
    encoding = encoding or Encoding()
    declared = _part_type(encoding.content_type)
    if encoding.style is None and declared is not None and is_xml(declared) and isinstance(value, Mapping):
        value = _xml(value, xml.xml_plan(schema, lambda s: s, name)).decode("utf-8")
    elif encoding.style is None and ((declared is not None and is_json(declared)) or isinstance(value, Mapping)):
        value = _json(value)
    style = encoding.style or "form"
    explode = encoding.explode if encoding.explode is not None else style == "form"
    codec = _Codec(_quote_reserved if encoding.allow_reserved else _quote, as_int=_is_integer(schema))
    return _style_pairs(name, value, style, explode, codec)


# -- multipart -------------------------------------------------------------------------------------

_Part = tuple[list[tuple[str, str]], bytes]


def _parts(name: str, value: Any, encoding: Encoding | None, schema: Schema | None,
           encoded: tuple[int | None, int | None] | None = None) -> list[_Part]:
    """The parts of one property: one per array item (or one, joined, for a non-exploded `style`), else one.

    `encoded` set: the value (each item) is base64 and the part carries the decoded bytes.
    """
    is_array = isinstance(value, list | tuple)
    if is_array and isinstance(schema, Mapping):
        schema = schema.get("items")
    declared = _part_type(encoding.content_type if encoding else None)
    if is_array and encoding is not None and encoding.style is not None and encoding.explode is False:
        separator = {"spaceDelimited": " ", "pipeDelimited": "|"}.get(encoding.style, ",")
        value, is_array = separator.join(_text(item, _is_integer(schema)) for item in value if item is not None), False
    file = encoded is not None or is_file_part(schema, declared)
    disposition = f'form-data; name="{_disposition_text(name)}"'
    extra = _part_headers(encoding)
    parts = []
    for item in value if is_array else [value]:
        if item is None:
            continue
        if isinstance(item, Mapping) and declared is not None and is_xml(declared):
            parts.append(([("Content-Disposition", disposition), ("Content-Type", declared), *extra],
                          _xml(item, xml.xml_plan(schema, lambda s: s, name))))
        elif file:
            media = declared or (schema.get("contentMediaType") if isinstance(schema, Mapping) else None)
            headers = [
                ("Content-Disposition", f'{disposition}; filename="{_disposition_text(name)}"'),
                ("Content-Type", media if isinstance(media, str) else "application/octet-stream"),
            ]
            data = _decoded(item, encoded) if encoded is not None else _utf8(_text(item))
            parts.append((headers + extra, data))
        elif isinstance(item, Mapping | list | tuple):
            json_type = declared if declared and is_json(declared) else "application/json"
            parts.append(([("Content-Disposition", disposition), ("Content-Type", json_type), *extra],
                          _utf8(_json(item))))
        else:
            headers = [("Content-Disposition", disposition), *([("Content-Type", declared)] if declared else [])]
            parts.append((headers + extra, _utf8(_text(item, _is_integer(schema)))))
    return parts


def _part_headers(encoding: Encoding | None) -> list[tuple[str, str]]:
    """Part headers the `encoding` object declares with a value of their own (`const`, a one-value `enum`,
    a `default`); the model sets none. Content-Type is the encoding's own (OpenAPI ignores it here)."""
    found = []
    for header_name, schema in (encoding.headers.items() if encoding is not None else ()):
        if header_name.lower() in ("content-type", "content-disposition") or not isinstance(schema, Mapping):
            continue
        if "const" in schema:
            value = schema["const"]
        elif isinstance(schema.get("enum"), list) and len(schema["enum"]) == 1:
            value = schema["enum"][0]
        elif "default" in schema:
            value = schema["default"]
        else:
            continue
        text = _text(value)
        if _CONTROL.search(text) or not text.isascii() or not _HEADER_NAME.fullmatch(header_name):
            continue
        found.append((header_name, text))
    return found


def _part_type(declared: str | None) -> str | None:
    """The first of an encoding's comma-separated content types; wildcards become octet-stream."""
    if not declared:
        return None
    first = declared.split(",", 1)[0].strip()
    return "application/octet-stream" if "*" in first else first


def is_file_part(schema: Schema | None, declared: str | None) -> bool:
    """Whether a multipart property is a file: binary by its encoding's content type or by its schema."""
    if declared is not None and not is_json(declared) and not declared.lower().startswith("text/"):
        return True
    if not isinstance(schema, Mapping):
        return False
    return (
        schema.get("format") in _FILE_FORMATS
        or schema.get("type") == "file"
        or "contentMediaType" in schema
        or "contentEncoding" in schema
    )


def _disposition_text(text: str) -> str:
    """A quoted-string parameter of Content-Disposition, escaped as browsers do (WHATWG HTML)."""
    return text.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _multipart(parts: list[_Part], media_type: str) -> tuple[bytes, str]:
    boundary = secrets.token_hex(16)
    while any(boundary.encode() in data for _, data in parts):  # 128 random bits: practically never loops
        boundary = secrets.token_hex(16)
    chunks = []
    for headers, data in parts:
        head = "".join(f"{key}: {text}\r\n" for key, text in headers)
        chunks.append(f"--{boundary}\r\n{head}\r\n".encode() + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"{media_type}; boundary={boundary}"
