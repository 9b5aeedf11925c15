"""The API model: what the rest of the gateway knows of an OpenAPI document.

Every spec version (Swagger 2.0, OpenAPI 3.0, 3.1) is turned into these plain, frozen records.
Schemas stay OpenAPI schema objects (dicts) exactly as written, `$ref`s included: they are
resolved against `ApiModel.document`, a single bundled document in which every external file
reference has been rewritten into an internal one (see `refs.py`). The later stages never read
the original files again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.errors import Diagnostic

ParamLocation = Literal["path", "query", "header", "cookie"]
SchemaDialect = Literal["openapi-3.0", "openapi-3.1"]
"""How to read schema objects: 3.0 (and 2.0, converted) use `nullable`/`x-nullable`, 3.1 is JSON Schema 2020-12."""

Schema = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Parameter:
    """One path, query, header or cookie parameter, with its serialisation settings made explicit.

    `style`/`explode` are always filled with the OpenAPI defaults for the location (form/explode for
    query and cookie, simple for path and header), so the request builder needs no defaulting.
    A parameter described with `content` instead of `schema` has `media_type` set (serialised as JSON).
    """

    name: str
    location: ParamLocation
    schema: Schema
    required: bool = False
    description: str = ""
    style: str = "form"
    explode: bool = True
    allow_reserved: bool = False
    allow_empty_value: bool = False
    skip_url_encoding: bool = False  # Azure `x-ms-skip-url-encoding`: a path value keeps its `/` (a resource id)
    deprecated: bool = False
    media_type: str | None = None
    example: Any = None


@dataclass(frozen=True, slots=True)
class Encoding:
    """Per-property encoding of a form or multipart body (OpenAPI `encoding` object)."""

    content_type: str | None = None
    style: str | None = None
    explode: bool | None = None
    allow_reserved: bool = False
    headers: Mapping[str, Schema] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MediaType:
    """One entry of a `content` map: a media type and the schema of its payload."""

    content_type: str
    schema: Schema | None = None
    encoding: Mapping[str, Encoding] = field(default_factory=dict)
    example: Any = None


@dataclass(frozen=True, slots=True)
class RequestBody:
    required: bool
    content: tuple[MediaType, ...]
    description: str = ""


@dataclass(frozen=True, slots=True)
class Response:
    """One response of an operation. `status` is as written: "200", "2XX" or "default"."""

    status: str
    description: str = ""
    content: tuple[MediaType, ...] = ()


@dataclass(frozen=True, slots=True)
class ServerVariable:
    default: str
    enum: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class Server:
    """A server URL template (`https://{region}.example.com/v1`) and its variables."""

    url: str
    variables: Mapping[str, ServerVariable] = field(default_factory=dict)
    description: str = ""

    def resolved_url(self) -> str:
        """The URL with every variable replaced by its default."""
        url = self.url
        for name, var in self.variables.items():
            url = url.replace("{" + name + "}", var.default)
        return url


SecurityRequirement = Mapping[str, tuple[str, ...]]
"""One alternative of an OpenAPI `security` list: scheme name -> scopes (all of them needed together)."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One HTTP operation of the API.

    `path` is the path template as written in the spec, which may carry a query or fragment qualifier
    used to tell operations apart (Azure `x-ms-paths` such as `/webhdfs/v1/{path}?op=OPEN`, AWS
    conversions such as `/#X-Amz-Target=DynamoDB_20120810.GetItem`). `pointer` locates the operation
    in the bundled document (for messages), e.g. `#/paths/~1pets~1{petId}/get`.
    """

    method: str  # lower case: get, put, post, delete, options, head, patch, trace
    path: str
    pointer: str
    operation_id: str | None = None
    summary: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    deprecated: bool = False
    parameters: tuple[Parameter, ...] = ()
    request_body: RequestBody | None = None
    responses: tuple[Response, ...] = ()
    security: tuple[SecurityRequirement, ...] | None = None  # None: the document default applies
    servers: tuple[Server, ...] = ()  # operation- or path-level override; empty: the document's
    extensions: Mapping[str, Any] = field(default_factory=dict)  # the operation's x-* keys


@dataclass(frozen=True, slots=True)
class ApiModel:
    """A loaded API description: its operations plus what is needed to read their schemas."""

    source: str  # the file path or URL it was loaded from
    spec_version: str  # as declared: "2.0", "3.0.3", "3.1.0"
    dialect: SchemaDialect
    title: str
    version: str  # info.version
    description: str
    servers: tuple[Server, ...]
    operations: tuple[Operation, ...]
    security_schemes: Mapping[str, Mapping[str, Any]]  # name -> OpenAPI 3 security scheme object
    security: tuple[SecurityRequirement, ...]  # document-level default
    document: Mapping[str, Any]  # the bundled document: every $ref in a schema resolves inside it
    warnings: tuple[Diagnostic, ...] = ()
