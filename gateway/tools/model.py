"""`ToolSpec`: one MCP tool and everything a call of it needs, computed once at start-up.

The call path (`gateway.calls`) only reads these records: it never looks at the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gateway.mapping.model import WidgetAction, WidgetKind
from gateway.spec.model import MediaType, Operation, Parameter
from gateway.tools.xml import XmlNode

BindingTarget = Literal["path", "query", "header", "cookie", "body", "body-property"]
BodyKind = Literal["json", "form", "multipart", "text", "binary"]


@dataclass(frozen=True, slots=True)
class ArgumentBinding:
    """Where one tool argument goes in the upstream request.

    `argument` is the property name in the tool's inputSchema (sanitised, unique); `wire_name` is the
    name on the wire (the parameter name, or the body property name). For `body`, the argument holds
    the whole request body; for `body-property`, one top-level property of an object body.
    """

    argument: str
    target: BindingTarget
    wire_name: str
    parameter: Parameter | None = None
    allow_slash: bool = False  # path values only: "/" kept (never "." or ".." segments, "?" or "#"); mapping opt-in


@dataclass(frozen=True, slots=True)
class BodyPlan:
    """How the request body is built: which media type, and whether its properties are flattened."""

    media_type: MediaType
    kind: BodyKind
    required: bool
    flattened: bool  # True: the body's properties are top-level arguments (bindings of target body-property)
    xml: XmlNode | None = None  # an XML body: the schema's XML shape (names, namespaces, attributes, wrapping)
    base64: Mapping[str, tuple[int | None, int | None]] = field(default_factory=dict)
    """Values the model gives base64-encoded and that are sent decoded: multipart file parts by property
    name, "" for the whole body; each with the (minLength, maxLength) of the decoded bytes."""
    required_arrays: frozenset[str] = frozenset()  # form/multipart properties that must not be sent empty


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """Everything needed to turn validated arguments into an upstream HTTP request.

    `path` is the path template without any `?`/`#` qualifier; a `?a=b` qualifier becomes `fixed_query`.
    `constants` are argument values fixed by the mapping (applied before building, never visible to the model).
    """

    method: str  # upper case
    path: str
    bindings: tuple[ArgumentBinding, ...]
    body: BodyPlan | None = None
    fixed_query: tuple[tuple[str, str], ...] = ()
    constants: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)  # mapping defaults, filled in when an argument is absent
    accept: str = "application/json"


@dataclass(frozen=True, slots=True)
class ResponsePlan:
    """How an upstream answer becomes a tool result.

    `output_schema` is the schema as promised to clients of protocol 2026-07-28 (any JSON); when the
    result is not an object, `wrap` says it is sent as `{"result": ...}` to older clients, whose
    structuredContent must be an object. `select` is a compiled JMESPath expression (mapping `select`),
    `max_items` caps arrays, `summary` is a text template for the model-facing text.
    """

    output_schema: Mapping[str, Any] | None = None
    wrap: bool = False
    select: Any = None  # jmespath.parser.ParsedResult
    max_items: int | None = None
    summary: Callable[[Any], str] | None = None  # renders the mapping's summary template over the result
    max_bytes: int = 1_000_000
    max_text_bytes: int = 16_384  # budget of the model-facing text; a larger JSON answer is previewed
    narrowing: tuple[str, ...] = ()  # arguments that page or filter the answer, named in a preview's note
    check: Callable[[Any], list[tuple[str, str]]] | None = field(default=None, compare=False, repr=False)
    """Compiled validator of `output_schema` (the modern, unwrapped form)."""
    xml: XmlNode | None = None  # how to read an XML answer as structured data (None: returned as text)


@dataclass(frozen=True, slots=True)
class WidgetSpec:
    """The widget that shows a tool's results, settings resolved; the HTML is built by `gateway.widgets`.

    `template` is set for `custom` widgets only; `where` is the mapping line behind the widget (its
    `widget:` entry, else the tool's), for problems found when the widgets are built.
    """

    kind: WidgetKind
    title: str
    template: Path | None = None
    columns: tuple[str, ...] | None = None
    page_size: int = 10
    actions: tuple[WidgetAction, ...] = ()
    row_action: int | None = None
    description: str | None = None
    prefers_border: bool = True
    link_domains: tuple[str, ...] = ()  # the mapping's, added to server.widgets.link_domains
    where: str = ""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One MCP tool generated from one operation."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    operation: Operation
    request: RequestPlan
    response: ResponsePlan
    backend: str = "default"
    title: str | None = None
    annotations: Mapping[str, Any] = field(default_factory=dict)  # readOnlyHint, destructiveHint, ...
    meta: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    scopes: tuple[str, ...] = ()  # OAuth scopes a caller needs for this tool (on top of the server's)
    public: bool = False  # callable without a token ("noauth") when inbound auth is on
    validate: Callable[[Any], list[tuple[str, str]]] | None = field(default=None, compare=False, repr=False)
    """Compiled input validator: arguments -> [(JSON pointer, message)], empty when valid."""
    widget: WidgetSpec | None = None
    invoking: str | None = None  # status texts from the mapping; gateway.widgets generates them for widget tools
    invoked: str | None = None
    visibility: tuple[str, ...] | None = None  # ("model", "app") subset from the mapping; None: both
    pinned: bool = False  # search mode: listed beside the meta-tools
    file_params: tuple[str, ...] = ()  # top-level arguments that take a file (base64, or a host's download URL)
    keywords: tuple[str, ...] = ()  # search mode: the mapping's extra words that find the tool
