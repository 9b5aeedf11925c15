"""The mapping as plain frozen records: what a mapping file says, and what each selected operation gets.

Two levels. `ToolMapping` (with `SelectRule`, `ToolEntry`) is the file as written, checked but not yet
applied to a spec. `SelectedOperation` pairs one operation of the spec with its `ToolSettings`: the
file's defaults merged with the operation's own entry, which is all the tool generator needs.
Records that come from the file keep `where` (`file:line`) so that later stages can point at the line
behind a problem they find (a fixed value that breaks the parameter's schema, say).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from gateway.spec.model import Operation

DEFAULT_MAPPING_SOURCE = "(default mapping)"


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What MCP clients are told about this API (`server:`); None: the gateway derives it from the spec."""

    name: str | None = None
    instructions: str | None = None


@dataclass(frozen=True, slots=True)
class Defaults:
    """`defaults:`. A `timeout` of None leaves the backend's read timeout in force."""

    timeout: float | None = None
    max_response_bytes: int = 1_000_000
    include_deprecated: bool = False
    max_text_bytes: int = 16_384


@dataclass(frozen=True, slots=True)
class SelectRule:
    """One `select.include` / `select.exclude` rule: it matches when every field given matches.

    `method` is lower case, like `Operation.method`; `path` is an fnmatch glob over the path template
    (`*` also crosses "/", so `/pets/*` covers `/pets/{petId}/photos` too).
    """

    where: str
    operation_id: str | None = None
    tag: str | None = None
    method: str | None = None
    path: str | None = None

    def matches(self, operation: Operation) -> bool:
        return (
            (self.operation_id is None or operation.operation_id == self.operation_id)
            and (self.tag is None or self.tag in operation.tags)
            and (self.method is None or operation.method == self.method)
            and (self.path is None or fnmatchcase(operation.path, self.path))
        )


@dataclass(frozen=True, slots=True)
class Selection:
    """`select:`. `include` None means every operation (deprecated ones only with `include_deprecated`)."""

    include: tuple[SelectRule, ...] | None = None
    exclude: tuple[SelectRule, ...] = ()


@dataclass(frozen=True, slots=True)
class ParameterSettings:
    """Settings of one parameter (or flattened body property), keyed by its name in the spec.

    `has_fixed`/`has_default` tell "not given" apart from a given `null`. A fixed value is always sent
    and never offered to the model; `hidden` with a default sends that default.
    """

    fixed: Any = None
    has_fixed: bool = False
    default: Any = None
    has_default: bool = False
    hidden: bool = False
    description: str | None = None
    allow_slash: bool = False
    where: str = ""


@dataclass(frozen=True, slots=True)
class SummaryTemplate:
    """A compiled `response.summary`: literal text and JMESPath expressions, in order."""

    source: str
    parts: tuple[str | ParsedResult, ...]

    def render(self, value: Any) -> str:
        """The text for one shaped result.

        Strings are inserted as they are, null as nothing, anything else as JSON. An expression that
        fails on this value (`length(@)` of a number, say) renders as nothing rather than failing a call
        whose answer was fine.
        """
        return "".join(part if isinstance(part, str) else _render_value(part, value) for part in self.parts)


def _render_value(expression: ParsedResult, value: Any) -> str:
    try:
        found = expression.search(value)
    except JMESPathError:
        return ""
    if found is None:
        return ""
    return found if isinstance(found, str) else json.dumps(found, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class ResponseSettings:
    """`response:` of a tool. `select` is compiled; its source text is `select.expression`."""

    select: ParsedResult | None = None
    max_items: int | None = None
    summary: SummaryTemplate | None = None

    @property
    def render_summary(self) -> Callable[[Any], str] | None:
        """The summary as the call path uses it: result -> text (None without a summary)."""
        return self.summary.render if self.summary is not None else None


WidgetKind = Literal["table", "card", "list", "custom"]
"""`custom` is a template of the adapter's own; the others are the built-in widgets."""


@dataclass(frozen=True, slots=True)
class WidgetAction:
    """One button of a widget: a tool call (`tool`, `arguments`) or a follow-up prompt (`prompt`).

    `{key}` / `{a.b}` in the label, the prompt and the argument values are filled by the widget from the
    row (or the card's object); an argument that is exactly `"{key}"` keeps the value's JSON type.
    `tool` is a tool name as served, checked against the served tools once every backend is loaded.
    """

    label: str
    where: str
    tool: str | None = None
    prompt: str | None = None
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WidgetSettings:
    """`widget:` of a tool entry as written. `enabled` False is `widget: false`.

    `kind` None lets the output schema choose; `template` (absolute, resolved against the mapping's
    folder) makes it `custom`. Other None fields take the widget defaults.
    """

    where: str
    enabled: bool = True
    kind: WidgetKind | None = None
    template: Path | None = None
    title: str | None = None
    columns: tuple[str, ...] | None = None
    page_size: int | None = None
    actions: tuple[WidgetAction, ...] = ()
    row_action: int | None = None  # index into `actions`
    description: str | None = None
    prefers_border: bool | None = None
    link_domains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolEntry:
    """One `tools:` entry as written. `key` is an operationId or `"METHOD /path"`."""

    key: str
    where: str
    name: str | None = None
    title: str | None = None
    description: str | None = None
    annotations: Mapping[str, bool] = field(default_factory=dict)
    timeout: float | None = None
    max_response_bytes: int | None = None
    scopes: tuple[str, ...] | None = None
    noauth: bool = False
    parameters: Mapping[str, ParameterSettings] = field(default_factory=dict)
    response: ResponseSettings = ResponseSettings()
    widget: WidgetSettings | None = None  # None: chosen from the output schema
    invoking: str | None = None
    invoked: str | None = None
    visibility: tuple[str, ...] | None = None  # subset of ("model", "app"); None: both
    pinned: bool = False
    keywords: tuple[str, ...] = ()


DiscoveryMode = Literal["flat", "search", "auto"]


@dataclass(frozen=True, slots=True)
class ToolsetEntry:
    """One `toolsets:` entry as written: the served tools its rules match, at `<server path>/<key>`.

    `discovery` None takes the gateway's `server.discovery.mode`.
    """

    key: str
    where: str
    include: tuple[SelectRule, ...]
    exclude: tuple[SelectRule, ...] = ()
    name: str | None = None
    instructions: str | None = None
    discovery: DiscoveryMode | None = None


@dataclass(frozen=True, slots=True)
class Toolsets:
    """`toolsets:`: the named entries, and whether each tag also makes one (`from_tags`, at `where`)."""

    entries: tuple[ToolsetEntry, ...] = ()
    from_tags: bool = False
    where: str = ""


@dataclass(frozen=True, slots=True)
class ToolMapping:
    """A loaded mapping file (or the default mapping), checked but not yet applied to a spec."""

    source: str
    version: int = 1
    server: ServerInfo = ServerInfo()
    defaults: Defaults = Defaults()
    select: Selection = Selection()
    tools: tuple[ToolEntry, ...] = ()
    toolsets: Toolsets = Toolsets()


@dataclass(frozen=True, slots=True)
class ToolSettings:
    """Everything the mapping says about one selected operation: defaults merged with its entry.

    `where` is the line of the operation's `tools:` entry, else of the rule that selected it, else the
    mapping's source; None fields mean "derive it from the spec".
    """

    where: str
    name: str | None = None
    title: str | None = None
    description: str | None = None
    annotations: Mapping[str, bool] = field(default_factory=dict)
    timeout: float | None = None
    max_response_bytes: int = 1_000_000
    scopes: tuple[str, ...] | None = None  # None: from the operation's OpenAPI security
    noauth: bool = False
    parameters: Mapping[str, ParameterSettings] = field(default_factory=dict)
    response: ResponseSettings = ResponseSettings()
    widget: WidgetSettings | None = None
    invoking: str | None = None
    invoked: str | None = None
    visibility: tuple[str, ...] | None = None
    pinned: bool = False
    keywords: tuple[str, ...] = ()
    max_text_bytes: int = 16_384


@dataclass(frozen=True, slots=True)
class SelectedOperation:
    """An operation that becomes a tool, with its settings."""

    operation: Operation
    settings: ToolSettings
