"""Load an OpenAPI / Swagger document from a file or URL into an `ApiModel`.

The steps, each in its own module: read and parse (`fetch`, `parse`), tell the version, bundle every `$ref` into
one self-contained document (`refs`), then build the operations (`operations`, with `swagger2` for 2.0 documents)
and the document-wide servers and security. Everything that can be skipped is skipped with a warning; SpecError
is raised only when the document cannot be used at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from gateway.errors import Diagnostic, SpecError
from gateway.spec import openapi3, pointer, swagger2
from gateway.spec.fetch import Fetcher, is_url, source_uri
from gateway.spec.model import ApiModel, SchemaDialect
from gateway.spec.operations import OperationBuilder
from gateway.spec.refs import RefError, bundle, deref

_OPENAPI_3 = re.compile(r"3\.(\d+)(?:[.-]|$)")


def load_spec(source: str, *, lint: bool = True) -> ApiModel:
    """Read the spec at `source` (a file path or an http(s) URL) and everything its `$ref`s name.

    `lint` also checks each OpenAPI 3 operation against the specification's object model (`validate`): advisory
    warnings that `gateway check` reports, which serving skips to start faster."""
    uri = source_uri(source)
    with Fetcher(uri) as fetcher:
        data, uri = fetcher.fetch(uri)
        if not isinstance(data, dict):
            raise SpecError(source, f"not an OpenAPI document: the top level is a {_kind(data)}, not a mapping")
        spec_version, dialect, warnings = _version(data, source)
        paths = data.get("paths")
        if paths is not None and not isinstance(paths, Mapping):
            raise SpecError(f"{source}#/paths", f"`paths` must be a map, not a {_kind(paths)}")
        document, bundle_warnings = bundle(data, uri, source, fetcher)
    warnings.extend(bundle_warnings)
    base_url = uri if is_url(uri) else None
    builder = OperationBuilder(document, source, spec_version, dialect, base_url, lint=lint)
    operations = builder.build()
    if not operations:
        webhooks = " (webhooks are not operations)" if document.get("webhooks") else ""
        warnings.append(Diagnostic(source, f"the document has no operations{webhooks}"))
    if spec_version == "2.0":
        servers = swagger2.servers(document, base_url, builder.warn)
        security_schemes = swagger2.security_schemes(document, builder.warn)
    else:  # no servers means one server "/" (OpenAPI 3)
        servers = openapi3.servers(document.get("servers") or [{"url": "/"}], "#/servers", base_url, builder.warn)
        security_schemes = _security_schemes(document, builder)
    security = openapi3.security(document["security"], "#/security", builder.warn) if "security" in document else None
    info = document.get("info") if isinstance(document.get("info"), Mapping) else {}
    return ApiModel(
        source=source,
        spec_version=spec_version,
        dialect=dialect,
        title=openapi3.text(info.get("title")),
        version=str(info.get("version", "")),
        description=openapi3.text(info.get("description")),
        servers=servers,
        operations=operations,
        security_schemes=security_schemes,
        security=security or (),
        document=document,
        warnings=(*warnings, *builder.warnings),
    )


def _version(document: Mapping[str, Any], name: str) -> tuple[str, SchemaDialect, list[Diagnostic]]:
    """The declared version and the schema dialect; SpecError for anything but Swagger 2.0 and OpenAPI 3.x."""
    if "openapi" in document:
        declared = str(document["openapi"])
        match = _OPENAPI_3.match(declared)
        if match is None:
            raise SpecError(f"{name}#/openapi", f"unsupported OpenAPI version {declared!r} (2.0, 3.0 and 3.1 are)")
        minor = int(match.group(1))
        if minor == 0:
            return declared, "openapi-3.0", []
        if minor == 1:
            return declared, "openapi-3.1", []
        note = f"OpenAPI {declared} is newer than 3.1: read as 3.1, features added later are ignored"
        return declared, "openapi-3.1", [Diagnostic(f"{name}#/openapi", note)]
    if "swagger" in document:
        declared = str(document["swagger"])
        if declared not in ("2.0", "2"):
            raise SpecError(f"{name}#/swagger", f"unsupported Swagger version {declared!r} (2.0 is)")
        return "2.0", "openapi-3.0", []
    if "swaggerVersion" in document:
        raise SpecError(name, f"Swagger {document['swaggerVersion']} is not supported: convert it to OpenAPI 3")
    raise SpecError(name, "not an OpenAPI or Swagger document: it has no `openapi` or `swagger` field")


def _security_schemes(document: Mapping[str, Any], builder: OperationBuilder) -> dict[str, Mapping[str, Any]]:
    components = document.get("components")
    declared = components.get("securitySchemes") if isinstance(components, Mapping) else None
    result = {}
    for name, scheme in declared.items() if isinstance(declared, Mapping) else ():
        at = pointer.join("#/components/securitySchemes", name)
        try:
            scheme, at = deref(document, scheme, at)
        except RefError as exc:
            builder.warn(at, f"security scheme skipped: {exc}")
            continue
        if isinstance(scheme, Mapping):
            result[str(name)] = scheme
        else:
            builder.warn(at, "security scheme is not an object: skipped")
    return result


def _kind(value: Any) -> str:
    return {list: "list", str: "string", type(None): "empty document"}.get(type(value), type(value).__name__)
