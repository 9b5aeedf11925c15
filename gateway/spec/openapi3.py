"""OpenAPI 3 objects (plain dicts, refs already followed) -> the model's records.

Swagger 2.0 parameters, bodies and responses are first rewritten into their OpenAPI 3 shape (`swagger2.py`), so
this module is the one place that knows how a parameter, a request body or a response becomes a record. It is
lenient: what it cannot use it skips with a warning, and it raises ObjectError only when the operation holding
the object cannot be called correctly without it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urljoin

from gateway.spec import pointer
from gateway.spec.model import (
    Encoding,
    MediaType,
    Parameter,
    ParamLocation,
    RequestBody,
    Response,
    Schema,
    SecurityRequirement,
    Server,
    ServerVariable,
)
from gateway.spec.refs import RefError, deref

Warn = Callable[[str, str], None]
"""Reports a problem that does not stop loading: (JSON pointer in the bundled document, message)."""

LOCATIONS: tuple[ParamLocation, ...] = ("path", "query", "header", "cookie")
_DEFAULT_STYLE: Mapping[str, str] = {"path": "simple", "header": "simple", "query": "form", "cookie": "form"}


class ObjectError(Exception):
    """An object that makes its operation unusable; `at` is the object's JSON pointer."""

    def __init__(self, at: str, message: str) -> None:
        super().__init__(message)
        self.at = at
        self.message = message


def parameter_key(obj: Any, at: str) -> tuple[str, str]:
    """(name, in) of a parameter object: what identifies it, and what the gateway cannot do without."""
    if not isinstance(obj, Mapping):
        raise ObjectError(at, "parameter is not an object")
    name, location = obj.get("name"), obj.get("in")
    if not isinstance(location, str):
        raise ObjectError(at, f"parameter {name!r} has no `in`")
    if location == "body":  # Swagger 2.0: one body per operation (replacing the path's), its name never sent
        return "", location
    if not isinstance(name, str) or not name:
        raise ObjectError(at, "parameter has no `name`")
    return name, location


def parameter(obj: Mapping[str, Any], at: str, warn: Warn) -> Parameter:
    """A path, query, header or cookie parameter, with `style`/`explode` defaults made explicit."""
    name, location = parameter_key(obj, at)
    if location not in LOCATIONS:
        raise ObjectError(at, f"parameter {name!r} has an unknown location `in: {location}`")
    media_type: str | None = None
    content = obj.get("content")
    if isinstance(content, Mapping) and content:
        media_type, entry = next(iter(content.items()))
        raw_schema = entry.get("schema", {}) if isinstance(entry, Mapping) else {}
    elif "schema" in obj:
        raw_schema = obj["schema"]
    else:
        warn(at, f"parameter {name!r} has neither `schema` nor `content`: any value is accepted")
        raw_schema = {}
    style = obj.get("style")
    if not isinstance(style, str):
        style = _DEFAULT_STYLE[location]
    explode = obj.get("explode")
    return Parameter(
        name=name,
        location=location,  # type: ignore[arg-type]  # checked against LOCATIONS above
        schema=schema(raw_schema, pointer.join(at, "schema"), warn),
        required=location == "path" or obj.get("required") is True,  # path parameters are always required
        description=text(obj.get("description")),
        style=style,
        explode=explode if isinstance(explode, bool) else style == "form",
        allow_reserved=obj.get("allowReserved") is True,
        allow_empty_value=obj.get("allowEmptyValue") is True,
        skip_url_encoding=obj.get("x-ms-skip-url-encoding") is True,
        deprecated=obj.get("deprecated") is True,
        media_type=media_type,
        example=obj.get("example"),
    )


def request_body(obj: Any, at: str, document: Mapping[str, Any], warn: Warn) -> RequestBody:
    if not isinstance(obj, Mapping):
        raise ObjectError(at, "requestBody is not an object")
    content = obj.get("content")
    if not isinstance(content, Mapping):
        raise ObjectError(at, "requestBody has no `content` map")
    return RequestBody(
        required=obj.get("required") is True,
        content=media_types(content, pointer.join(at, "content"), document, warn),
        description=text(obj.get("description")),
    )


def response(status: str, obj: Mapping[str, Any], at: str, document: Mapping[str, Any], warn: Warn) -> Response:
    content = obj.get("content")
    return Response(
        status=status,
        description=text(obj.get("description")),
        content=media_types(content, pointer.join(at, "content"), document, warn)
        if isinstance(content, Mapping)
        else (),
    )


def media_types(content: Mapping[str, Any], at: str, document: Mapping[str, Any], warn: Warn) -> tuple[MediaType, ...]:
    result = []
    for content_type, entry in content.items():
        entry_at = pointer.join(at, content_type)
        if not isinstance(entry, Mapping):
            warn(entry_at, "media type entry is not an object: skipped")
            continue
        raw_schema = entry.get("schema")
        encoding = entry.get("encoding")
        result.append(
            MediaType(
                content_type=str(content_type),
                schema=None if raw_schema is None else schema(raw_schema, pointer.join(entry_at, "schema"), warn),
                encoding=_encodings(encoding, pointer.join(entry_at, "encoding"), document, warn)
                if isinstance(encoding, Mapping)
                else {},
                example=entry.get("example"),
            )
        )
    return tuple(result)


def _encodings(value: Mapping[str, Any], at: str, document: Mapping[str, Any], warn: Warn) -> dict[str, Encoding]:
    result = {}
    for name, obj in value.items():
        if not isinstance(obj, Mapping):
            continue
        headers: dict[str, Schema] = {}
        declared = obj.get("headers")
        for header_name, header in declared.items() if isinstance(declared, Mapping) else ():
            header_at = pointer.join(at, name, "headers", header_name)
            try:
                header, header_at = deref(document, header, header_at)
            except RefError as exc:
                warn(header_at, f"encoding header skipped: {exc}")
                continue
            if isinstance(header, Mapping):
                headers[header_name] = schema(header.get("schema", {}), pointer.join(header_at, "schema"), warn)
        style, explode = obj.get("style"), obj.get("explode")
        result[name] = Encoding(
            content_type=obj.get("contentType") if isinstance(obj.get("contentType"), str) else None,
            style=style if isinstance(style, str) else None,
            explode=explode if isinstance(explode, bool) else None,
            allow_reserved=obj.get("allowReserved") is True,
            headers=headers,
        )
    return result


def schema(value: Any, at: str, warn: Warn) -> Schema:
    """A schema object as written; JSON Schema's boolean schemas spelled as objects, anything else made `{}`."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, bool):
        return {} if value else {"not": {}}
    warn(at, f"schema is not an object ({type(value).__name__}): any value is accepted")
    return {}


def servers(value: Any, at: str, base_url: str | None, warn: Warn) -> tuple[Server, ...]:
    """Server objects; relative URLs are resolved against `base_url` (the spec's URL) when there is one."""
    if value is None:
        return ()
    if not isinstance(value, list):
        warn(at, "`servers` is not a list: ignored")
        return ()
    result = []
    for i, obj in enumerate(value):
        url = obj.get("url") if isinstance(obj, Mapping) else None
        if not isinstance(url, str):
            warn(pointer.join(at, i), "server has no `url`: skipped")
            continue
        variables = obj.get("variables")
        result.append(
            Server(
                url=server_url(url, base_url),
                variables={
                    str(name): ServerVariable(
                        default=str(var.get("default", "")),
                        enum=tuple(str(v) for v in var.get("enum") or ()),
                        description=text(var.get("description")),
                    )
                    for name, var in (variables.items() if isinstance(variables, Mapping) else ())
                    if isinstance(var, Mapping)
                },
                description=text(obj.get("description")),
            )
        )
    return tuple(result)


def server_url(url: str, base_url: str | None) -> str:
    """OpenAPI: a relative server URL is relative to where the document is served (unknown for a local file)."""
    if base_url is None or "://" in url or url.startswith("{"):
        return url
    return urljoin(base_url, url)


def security(value: Any, at: str, warn: Warn) -> tuple[SecurityRequirement, ...] | None:
    """A `security` list: each alternative maps scheme names to the scopes it needs. None when unusable."""
    if not isinstance(value, list):
        warn(at, "`security` is not a list: ignored")
        return None
    return tuple(
        {str(name): tuple(str(s) for s in scopes) if isinstance(scopes, list) else () for name, scopes in req.items()}
        for req in value
        if isinstance(req, Mapping)
    )


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""
