"""Swagger 2.0 -> the OpenAPI 3 shape the rest of the loader reads.

Only the parts that differ are converted, as plain dicts: parameters (`type`/`items`/`collectionFormat` become a
`schema` and `style`/`explode`), the `body` and `formData` parameters (a request body per `consumes` type),
responses (`schema` becomes `content` per `produces` type), host/basePath/schemes (servers) and
securityDefinitions (security schemes). Schemas are left as written: `#/definitions/...` references resolve in
the bundled 2.0 document as they are, and the schema converter reads `x-nullable` itself.

Azure extensions are honoured: `x-ms-parameterized-host` gives the server URL template and its variables (those
parameters are not operation parameters), `x-ms-paths` is read by the operation builder like `paths`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

from gateway.spec import pointer
from gateway.spec.model import Server, ServerVariable
from gateway.spec.openapi3 import Warn, text
from gateway.spec.refs import RefError, deref

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_SCHEMA_KEYS = (
    "type", "format", "items", "default", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "enum", "multipleOf", "x-nullable",
    "x-ms-enum", "x-enum-descriptions", "x-enumDescriptions", "x-enumNames", "x-enum-names",
)  # fmt: skip
_QUERY_STYLES = {
    "csv": ("form", False),
    "ssv": ("spaceDelimited", False),
    "pipes": ("pipeDelimited", False),
    "multi": ("form", True),
}
_OAUTH2_FLOWS = {
    "implicit": "implicit",
    "password": "password",
    "application": "clientCredentials",
    "accessCode": "authorizationCode",
}

Located = tuple[Mapping[str, Any], str]
"""An object and its JSON pointer in the bundled document."""


def mime_types(document: Mapping[str, Any], operation: Mapping[str, Any], key: str) -> list[str]:
    """`consumes` or `produces`: the operation's list replaces the document's. Empty when neither says."""
    value = operation.get(key) or document.get(key)
    return [t for t in value if isinstance(t, str)] if isinstance(value, list) else []


def convert_parameters(
    params: list[Located], consumes: list[str], warn: Warn
) -> tuple[list[Located], dict[str, Any] | None]:
    """Split 2.0 parameters into OpenAPI 3 parameters and a request body (from the `body` or `formData` ones)."""
    plain: list[Located] = []
    body: Mapping[str, Any] | None = None
    form: list[Located] = []
    for param, at in params:
        location = param["in"]
        if location == "body":
            body = param
        elif location == "formData":
            form.append((param, at))
        else:
            plain.append((_parameter(param, at, warn), at))
    if body is not None and form:
        warn(form[0][1], "`formData` parameters are ignored: the operation also has a `body` parameter")
    if body is not None:
        return plain, _body(body, consumes)
    return plain, (_form_body(form, consumes, warn) if form else None)


def convert_response(obj: Mapping[str, Any], produces: list[str]) -> dict[str, Any]:
    converted: dict[str, Any] = {"description": text(obj.get("description"))}
    schema = obj.get("schema")
    if schema is not None:
        examples = obj.get("examples") if isinstance(obj.get("examples"), Mapping) else {}
        converted["content"] = {
            mime: {"schema": _file_as_binary(schema), "example": examples.get(mime)}
            for mime in produces or ["application/json"]
        }
    return converted


def _parameter(param: Mapping[str, Any], at: str, warn: Warn) -> dict[str, Any]:
    location = param["in"]
    style, explode = _style(param, location, at, warn)
    converted = {
        key: param[key] for key in ("name", "in", "required", "description", "allowEmptyValue",
                                    "x-ms-skip-url-encoding", "x-ms-parameter-location") if key in param
    }
    converted.update(schema=_schema(param), style=style, explode=explode)
    return converted


def _schema(param: Mapping[str, Any]) -> Any:
    """The schema a 2.0 non-body parameter describes with its own keywords (`type`, `items`, `enum`, ...)."""
    if "type" not in param and "schema" in param:  # a 3.0-style parameter in a 2.0 document: take it as meant
        return param["schema"]
    schema = {key: param[key] for key in _SCHEMA_KEYS if key in param}
    items = schema.get("items")
    if isinstance(items, Mapping) and "$ref" not in items:
        schema["items"] = _schema(items)  # drops the nested collectionFormat
    return _file_as_binary(schema)


def _file_as_binary(schema: Any) -> Any:
    if isinstance(schema, Mapping) and schema.get("type") == "file":
        return {**{k: v for k, v in schema.items() if k != "type"}, "type": "string", "format": "binary"}
    return schema


def _style(param: Mapping[str, Any], location: str, at: str, warn: Warn) -> tuple[str, bool]:
    """OpenAPI 3 `style`/`explode` for a 2.0 `collectionFormat` (which only matters for arrays)."""
    on_query = location in ("query", "formData")
    if param.get("type") != "array":
        return ("form", True) if on_query else ("simple", False)
    fmt = param.get("collectionFormat", "csv")
    if fmt == "tsv" and on_query:
        return "tabDelimited", False  # no OpenAPI 3 style: the request builder joins with a tab
    if on_query and fmt in _QUERY_STYLES:
        return _QUERY_STYLES[fmt]
    if fmt != "csv":
        warn(at, f"collectionFormat `{fmt}` is not possible in a {location} parameter: values are sent comma-separated")
    return ("form", False) if on_query else ("simple", False)


def _body(param: Mapping[str, Any], consumes: list[str]) -> dict[str, Any]:
    return {
        "required": param.get("required") is True,
        "description": text(param.get("description")),
        "content": {mime: {"schema": param.get("schema")} for mime in consumes or ["application/json"]},
    }


def _form_body(form: list[Located], consumes: list[str], warn: Warn) -> dict[str, Any]:
    """One object schema with a property per `formData` parameter, sent as a form or as multipart."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    encoding: dict[str, Any] = {}
    has_file = False
    for param, at in form:
        name = param["name"]
        has_file = has_file or param.get("type") == "file"
        schema = _schema(param)
        if isinstance(param.get("description"), str) and isinstance(schema, Mapping):
            schema = {**schema, "description": param["description"]}
        properties[name] = schema
        if param.get("required") is True:
            required.append(name)
        if param.get("type") == "array":
            style, explode = _style(param, "formData", at, warn)
            encoding[name] = {"style": style, "explode": explode}
    object_schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        object_schema["required"] = required
    urlencoded, multipart = FORM_TYPES
    declared = dict.fromkeys(mime.split(";")[0].strip().lower() for mime in consumes)
    kinds = [
        kind for kind in declared if kind == multipart or (kind == urlencoded and not has_file)
    ]  # files: multipart
    kinds = kinds or [multipart if has_file else urlencoded]
    media = {"schema": object_schema, "encoding": encoding} if encoding else {"schema": object_schema}
    return {"required": bool(required), "content": dict.fromkeys(kinds, media)}


def servers(document: Mapping[str, Any], base_url: str | None, warn: Warn) -> tuple[Server, ...]:
    """Servers from `x-ms-parameterized-host`, or `host` + `basePath` per scheme (https first).

    Without `host`, the 2.0 specification says the host serving the document is meant: the spec's URL when it was
    downloaded, else a relative server (`/basePath`) the operator completes in the configuration.
    """
    base_path = document.get("basePath")
    base_path = "/" + base_path.strip("/") if isinstance(base_path, str) and base_path.strip("/") else ""
    schemes = _schemes(document, base_url)
    parameterized = document.get("x-ms-parameterized-host")
    if isinstance(parameterized, Mapping) and isinstance(parameterized.get("hostTemplate"), str):
        template = parameterized["hostTemplate"] + base_path
        variables = {
            param["name"]: ServerVariable(
                default=str(param.get("default", "")),
                enum=tuple(str(v) for v in param.get("enum") or ()),
                description=text(param.get("description")),
            )
            for param in _host_parameters(document, warn)
        }
        if parameterized.get("useSchemePrefix", True) is False:
            return (Server(template, variables),)
        return tuple(Server(f"{scheme}://{template}", variables) for scheme in schemes)
    host = document.get("host")
    if isinstance(host, str) and host:
        return tuple(Server(f"{scheme}://{host.rstrip('/')}{base_path}") for scheme in schemes)
    if base_url is not None:
        return (Server(urljoin(base_url, base_path or "/")),)
    return (Server(base_path or "/"),)


def host_parameter_names(document: Mapping[str, Any]) -> frozenset[str]:
    """Names of the `x-ms-parameterized-host` parameters: server variables, not operation parameters."""
    return frozenset(param["name"] for param in _host_parameters(document, lambda at, message: None))


def _host_parameters(document: Mapping[str, Any], warn: Warn) -> list[Mapping[str, Any]]:
    parameterized = document.get("x-ms-parameterized-host")
    declared = parameterized.get("parameters") if isinstance(parameterized, Mapping) else None
    result = []
    for i, param in enumerate(declared if isinstance(declared, list) else ()):
        at = pointer.join("#/x-ms-parameterized-host/parameters", i)
        try:
            param, at = deref(document, param, at)
        except RefError as exc:
            warn(at, f"host parameter skipped: {exc}")
            continue
        if isinstance(param, Mapping) and isinstance(param.get("name"), str):
            result.append(param)
        else:
            warn(at, "host parameter without a `name`: skipped")
    return result


def _schemes(document: Mapping[str, Any], base_url: str | None) -> list[str]:
    declared = document.get("schemes")
    listed = [s.lower() for s in declared if isinstance(s, str)] if isinstance(declared, list) else []
    schemes = [s for s in ("https", "http") if s in listed]
    if schemes:
        return schemes
    return [urlsplit(base_url).scheme] if base_url is not None else ["https"]


def security_schemes(document: Mapping[str, Any], warn: Warn) -> dict[str, dict[str, Any]]:
    """`securityDefinitions` as OpenAPI 3 security scheme objects (basic -> http basic, oauth2 flows)."""
    declared = document.get("securityDefinitions")
    result: dict[str, dict[str, Any]] = {}
    for name, definition in declared.items() if isinstance(declared, Mapping) else ():
        at = pointer.join("#/securityDefinitions", name)
        if not isinstance(definition, Mapping):
            warn(at, "security definition is not an object: skipped")
            continue
        kind = definition.get("type")
        scheme: dict[str, Any] = {k: v for k, v in definition.items() if k.startswith("x-") or k == "description"}
        if kind == "basic":
            scheme.update(type="http", scheme="basic")
        elif kind == "apiKey":
            scheme.update(type="apiKey", name=definition.get("name"), **{"in": definition.get("in")})
        elif kind == "oauth2":
            if definition.get("flow") not in _OAUTH2_FLOWS:
                warn(at, f"oauth2 security definition with unknown flow {definition.get('flow')!r}: skipped")
                continue
            flow = {key: definition[key] for key in ("authorizationUrl", "tokenUrl") if key in definition}
            scopes = definition.get("scopes")
            flow["scopes"] = dict(scopes) if isinstance(scopes, Mapping) else {}
            scheme.update(type="oauth2", flows={_OAUTH2_FLOWS[definition["flow"]]: flow})
        else:
            warn(at, f"security definition of unknown type {kind!r}: skipped")
            continue
        result[str(name)] = scheme
    return result
