"""Widgets: HTML views of tool results, served as `ui://` resources for MCP Apps hosts and ChatGPT.

Built once at start from the loaded tools. Each tool with a widget gets its own HTML document: its
template (a built-in one from the `widgets` package, or the adapter's own) with the shared runtime
and the tool's widget config filled in. The document's URI carries a hash of the document itself,
`ui://widget/<tool>-<12 hex of sha256>.html`, because hosts cache widget HTML hard: a changed
template, runtime or config is a new URI, never a stale copy, and replicas built from the same files
serve the same URIs.

One document serves both kinds of host: MCP Apps hosts read `_meta.ui.*` and the MIME type
`text/html;profile=mcp-app`; ChatGPT reads the `openai/*` keys too. With `server.widgets.skybridge`
every widget is also served as `text/html+skybridge` under `...-<hash>.skybridge.html`, and the tool's
`openai/outputTemplate` points at that copy: a host that only knows the Apps SDK follows
`openai/outputTemplate` and expects that MIME type, while MCP Apps hosts follow `ui.resourceUri` to
the standard copy. Without the option both keys name the one standard document.

With `server.widgets.embed_in_results` the serving layer also puts the widget into each result of its
tool (`embedded_widget_meta`): `_meta["openai.com/widget"]`, an embedded `text/html+skybridge`
resource, the pattern older Apps SDK hosts read.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import mcp_types as types

from gateway.config import WidgetOptions
from gateway.errors import ConfigError, Diagnostic
from gateway.mapping import WidgetAction
from gateway.tools.model import ToolSpec, WidgetSpec
from gateway.yamlfile import config_error, did_you_mean

MCP_APP_MIME = "text/html;profile=mcp-app"
SKYBRIDGE_MIME = "text/html+skybridge"
UI_EXTENSION = "io.modelcontextprotocol/ui"
"""The MCP Apps extension id, advertised in the server's capabilities when it serves widgets."""
BUILT_IN_PACKAGE = "widgets"
"""The package holding `runtime.js` and the built-in templates `table.html`, `card.html`, `list.html`."""
RUNTIME_PLACEHOLDER = "<!--gateway:runtime-->"
CONFIG_PLACEHOLDER = "<!--gateway:config-->"
MAX_STATUS_TEXT = 64
READ_TTL_MS = 86_400_000
"""How long a host may cache a widget read: a day. Safe because a URI's content never changes."""
EMBEDDED_WIDGET_META = "openai.com/widget"
"""The result `_meta` key under which older Apps SDK hosts look for the widget itself."""
DISPLAY_MODES_META = "io.semantic-adapter-gateway/displayModes"
"""Resource `_meta` key: the display modes the widget may ask the host for (MCP Apps defines no such key, so
the prefix is ours); `gateway doctor` compares it with what the widget's config asks for."""
FULLSCREEN_KINDS = frozenset({"table"})
"""Built-in widgets that offer a full-screen view (when big and the host offers it)."""
URI_FORMATS = frozenset({"uri", "url", "iri"})

_PLACEHOLDER = re.compile(r"<!--gateway:(runtime|config)-->")
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_DESCRIPTIONS = {
    "table": "a sortable, paged table of the result, shown to the user (no need to repeat its rows)",
    "card": "a card with the result's fields, shown to the user (no need to repeat them)",
    "list": "a list of the result's items, shown to the user (no need to repeat them)",
    "custom": "a view of the result, shown to the user",
}


@dataclass(frozen=True, slots=True)
class Widget:
    """One tool's served widget: the filled-in HTML, its URI(s) and the resource `_meta`."""

    tool: str
    title: str
    description: str
    template: str
    runtime: str
    config: Mapping[str, Any]
    config_json: str  # `config` as `script_json` writes it, once
    uri: str
    meta: Mapping[str, Any]
    skybridge_uri: str | None = None
    calls_tools: bool = False

    @property
    def html(self) -> str:
        """The served HTML, filled in when read: hundreds of ~40 kB pages need not sit in memory, since hosts
        read each once and cache it (the template and runtime strings are shared by every widget)."""
        return _fill(self.template, self.runtime, self.config_json)

    @property
    def size(self) -> int:
        """The HTML's length in bytes, from its parts' (each placeholder is replaced once): `resources/list`
        gives every widget's size, and filling hundreds of pages to measure them cost a tenth of start-up."""
        return (_utf8_length(self.template) - len(RUNTIME_PLACEHOLDER) - len(CONFIG_PLACEHOLDER)
                + _utf8_length(self.runtime) + len(_RUNTIME_OPEN) + len(_CONFIG_OPEN) + 2 * len(_SCRIPT_CLOSE)
                + len(self.config_json.encode("utf-8")))

    @property
    def output_template(self) -> str:
        """What `openai/outputTemplate` names: the skybridge copy when there is one."""
        return self.skybridge_uri or self.uri


@dataclass(frozen=True, slots=True)
class WidgetRegistry:
    """The widgets of the served tools, by tool name; empty when no tool has one (or widgets are off)."""

    widgets: Mapping[str, Widget] = field(default_factory=dict)
    called: frozenset[str] = frozenset()  # tools some widget calls
    documents: Mapping[str, tuple[Widget, str]] = field(default_factory=dict)  # URI -> (widget, MIME type)
    embed: bool = False  # server.widgets.embed_in_results

    @classmethod
    def build(cls, tools: Mapping[str, ToolSpec], options: WidgetOptions | None = None,
              library: Traversable | None = None) -> WidgetRegistry:
        """Check every widget's actions against `tools` and build the served HTML.

        `library` holds `runtime.js` and the built-in templates (default: the installed `widgets`
        package). Raises `ConfigError`: actions calling tools that are not served (or with arguments
        the tool does not take), templates that are missing or lack a placeholder.
        """
        options = options or WidgetOptions()
        specs = {tool.name: tool.widget for tool in tools.values() if tool.widget is not None}
        if not options.enabled or not specs:
            return cls()
        problems = [problem for name, spec in specs.items() for action in spec.actions
                    for problem in _action_problems(tools[name], action, tools)]
        if problems:
            raise config_error(problems)
        templates = _Templates(library)
        widgets = {name: _widget(tools[name], spec, templates, options) for name, spec in specs.items()}
        called = frozenset(action.tool for spec in specs.values() for action in spec.actions if action.tool)
        documents = {uri: (widget, mime) for widget in widgets.values() for uri, mime in _copies(widget)}
        return cls(widgets, called, documents, options.embed_in_results)

    def __len__(self) -> int:
        return len(self.widgets)

    def only(self, tools: Iterable[str]) -> WidgetRegistry:
        """The widgets of the named tools: a toolset's endpoint serves its own."""
        names = set(tools)
        widgets = {name: widget for name, widget in self.widgets.items() if name in names}
        documents = {uri: (w, mime) for uri, (w, mime) in self.documents.items() if w.tool in widgets}
        return WidgetRegistry(widgets, self.called, documents, self.embed)

    def tool_meta(self, tool: ToolSpec) -> dict[str, Any]:
        """The widget keys of a tool descriptor's `_meta` (empty for a plain tool)."""
        meta: dict[str, Any] = {}
        widget = self.widgets.get(tool.name)
        ui: dict[str, Any] = {}
        if widget is not None:
            ui["resourceUri"] = widget.uri
            meta["openai/outputTemplate"] = widget.output_template
        if tool.visibility is not None:
            ui["visibility"] = list(tool.visibility)
        if ui:
            meta["ui"] = ui
        invoking, invoked = tool.invoking, tool.invoked
        if widget is not None and (invoking is None or invoked is None):
            generated = status_texts(tool.title or tool.name.replace("_", " ").capitalize())
            invoking, invoked = invoking or generated[0], invoked or generated[1]
        if invoking:
            meta["openai/toolInvocation/invoking"] = invoking
        if invoked:
            meta["openai/toolInvocation/invoked"] = invoked
        if (widget is not None and widget.calls_tools) or tool.name in self.called:
            meta["openai/widgetAccessible"] = True
        if tool.visibility == ("app",):
            meta["openai/visibility"] = "private"
        return meta

    def embedded_widget_meta(self, tool_name: str) -> dict[str, Any] | None:
        """The `_meta` keys that embed `tool_name`'s widget in a result, or None (the option is off, or the tool
        has no widget): `{"openai.com/widget": <embedded resource>}`, the resource being the widget as
        `text/html+skybridge` (under its skybridge URI when that copy is served) with the resource `_meta`.

        For hosts that still read the widget from the result instead of `resources/read`; merge it into the
        result's `_meta` (`with_embedded_widget` does)."""
        widget = self.widgets.get(tool_name)
        if not self.embed or widget is None:
            return None
        resource = types.EmbeddedResource(type="resource", resource=types.TextResourceContents(
            uri=widget.output_template, mime_type=SKYBRIDGE_MIME, text=widget.html, _meta=dict(widget.meta)))
        return {EMBEDDED_WIDGET_META: resource.model_dump(by_alias=True, mode="json", exclude_none=True)}

    def with_embedded_widget(self, result: types.CallToolResult, tool_name: str) -> types.CallToolResult:
        """`result` with the widget embedded in its `_meta` when `embedded_widget_meta` gives any (else as is)."""
        embedded = self.embedded_widget_meta(tool_name)
        if embedded is None:
            return result
        return result.model_copy(update={"meta": {**(result.meta or {}), **embedded}})

    def resources(self) -> list[types.Resource]:
        """`resources/list`: every widget, and its skybridge copy when there is one."""
        return [
            types.Resource(uri=uri, name=f"{widget.tool}-widget", title=widget.title, description=widget.description,
                           mime_type=mime, size=widget.size, _meta=dict(widget.meta))
            for uri, (widget, mime) in self.documents.items()
        ]

    def read(self, uri: str) -> types.ReadResourceResult | None:
        """`resources/read` of a widget URI; None for a URI that names no widget."""
        if uri not in self.documents:
            return None
        widget, mime = self.documents[uri]
        contents = types.TextResourceContents(uri=uri, mime_type=mime, text=widget.html, _meta=dict(widget.meta))
        return types.ReadResourceResult(contents=[contents], ttl_ms=READ_TTL_MS, cache_scope="public")


def _copies(widget: Widget) -> Iterable[tuple[str, str]]:
    yield widget.uri, MCP_APP_MIME
    if widget.skybridge_uri is not None:
        yield widget.skybridge_uri, SKYBRIDGE_MIME


def _action_problems(tool: ToolSpec, action: WidgetAction, tools: Mapping[str, ToolSpec]) -> list[Diagnostic]:
    """What is wrong with a tool-call action: a tool that is not served, arguments it cannot take."""
    if action.tool is None:
        return []
    what = f"tool {tool.name!r}: widget action {action.label!r}"
    target = tools.get(action.tool)
    if target is None:
        return [Diagnostic(action.where, f"{what} calls {action.tool!r}, which is not a served tool"
                                         f"{did_you_mean(action.tool, tools)}", "error")]
    problems = []
    if target.visibility is not None and "app" not in target.visibility:
        problems.append(Diagnostic(action.where, f"{what} calls {target.name!r}, whose visibility "
                                                 f"{list(target.visibility)} does not include \"app\"", "error"))
    properties = target.input_schema.get("properties", {})
    for name in action.arguments:
        if name not in properties:
            problems.append(Diagnostic(action.where, f"{what}: {target.name!r} takes no argument {name!r}"
                                                     f"{did_you_mean(name, properties)}; its arguments: "
                                                     f"{', '.join(properties) or 'none'}", "error"))
    missing = [name for name in target.input_schema.get("required", ()) if name not in action.arguments]
    if missing:
        problems.append(Diagnostic(action.where, f"{what} leaves out {', '.join(map(repr, missing))}, which "
                                                 f"{target.name!r} requires", "error"))
    return problems


class _Templates:
    """Reads the runtime and templates once each; every problem is a `ConfigError` naming the file."""

    def __init__(self, library: Traversable | None) -> None:
        self.library = library
        self.cache: dict[str, str] = {}
        self.checked: set[str] = set()  # templates and runtimes already checked
        self.digests: dict[str, bytes] = {}  # text -> its SHA-256

    def digest(self, template: str, runtime: str, config_json: str) -> str:
        """The content address of the filled-in page, from digests of its parts: a widget's
        URI changes whenever its HTML would, without building and hashing every widget's HTML at start-up
        (GitHub's spec has 541 widgets, over 20 MB of it)."""
        parts = []
        for text in (template, runtime):
            if text not in self.digests:
                self.digests[text] = hashlib.sha256(text.encode("utf-8")).digest()
            parts.append(self.digests[text])
        parts.append(config_json.encode("utf-8"))
        return hashlib.sha256(b"\0".join(parts)).hexdigest()[:12]

    def _built_in(self, name: str) -> str:
        if name not in self.cache:
            library = self.library
            if library is None:
                try:
                    library = resources.files(BUILT_IN_PACKAGE)
                except ModuleNotFoundError:
                    raise ConfigError(BUILT_IN_PACKAGE, "the built-in widgets (package `widgets`) are not installed; "
                                      "reinstall the gateway, or turn widgets off (server.widgets.enabled: false)"
                                      ) from None
            self.cache[name] = _read(library / name, f"{BUILT_IN_PACKAGE}/{name}",
                                     "the file is missing from the installed widgets package")
        return self.cache[name]

    def runtime(self) -> str:
        script = self._built_in("runtime.js")
        if script not in self.checked:
            if "</script" in script.lower():
                raise ConfigError(f"{BUILT_IN_PACKAGE}/runtime.js", "the runtime contains `</script`, so it cannot "
                                  "be inlined in a <script> element")
            self.checked.add(script)
        return script

    def template(self, spec: WidgetSpec) -> tuple[str, str]:
        """The template's text and where to report its problems."""
        if spec.template is None:
            return self._built_in(f"{spec.kind}.html"), f"{BUILT_IN_PACKAGE}/{spec.kind}.html"
        where = f"{spec.where} ({spec.template})"
        key = str(spec.template)
        if key not in self.cache:
            self.cache[key] = _read(spec.template, where, "cannot read the widget template")
        return self.cache[key], where


def _read(file: Traversable | Path, where: str, problem: str) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(where, f"{problem}: {exc}") from None


def _widget(tool: ToolSpec, spec: WidgetSpec, templates: _Templates, options: WidgetOptions) -> Widget:
    template, where = templates.template(spec)
    if template not in templates.checked:
        for placeholder in (RUNTIME_PLACEHOLDER, CONFIG_PLACEHOLDER):
            count = template.count(placeholder)
            if count != 1:
                raise ConfigError(where, f"a widget template must contain {placeholder} exactly once, not {count} "
                                         "times")
        templates.checked.add(template)
    runtime, config = templates.runtime(), widget_config(tool, spec, options)
    config_json = script_json(config)
    digest = templates.digest(template, runtime, config_json)
    description = spec.description or f"{spec.title}: {_DESCRIPTIONS[spec.kind]}."
    return Widget(
        tool=tool.name,
        title=spec.title,
        description=description,
        template=template,
        runtime=runtime,
        config=config,
        config_json=config_json,
        uri=f"ui://widget/{tool.name}-{digest}.html",
        meta=resource_meta(spec, description, options, config["displayModes"]),
        skybridge_uri=f"ui://widget/{tool.name}-{digest}.skybridge.html" if options.skybridge else None,
        calls_tools=any(action.tool is not None for action in spec.actions),
    )


def widget_config(tool: ToolSpec, spec: WidgetSpec, options: WidgetOptions | None = None) -> dict[str, Any]:
    """The JSON the widget runtime reads from `#gateway-widget-config` (shape: docs/mapping.md).

    `displayModes`: what the widget may ask the host for ("fullscreen" for tables unless turned off);
    `linkFields`: paths (relative to a row, or to the object) of `format: uri` strings in the output schema,
    shown as links when they are http(s); `linkDomains`: the origins declared for links.
    """
    options = options or WidgetOptions()
    modes = ["inline", "fullscreen"] if options.fullscreen and spec.kind in FULLSCREEN_KINDS else ["inline"]
    return {
        "tool": tool.name,
        "title": spec.title,
        "kind": spec.kind,
        "columns": list(spec.columns) if spec.columns is not None else None,
        "pageSize": spec.page_size,
        "actions": [_action_config(action) for action in spec.actions],
        "rowAction": spec.row_action,
        "displayModes": modes,
        "linkFields": link_fields(tool.response.output_schema),
        "linkDomains": link_domains(spec, options),
    }


def link_fields(schema: Mapping[str, Any] | None) -> list[str]:
    """Dotted paths of the `format: uri` strings in an output schema, as the widget looks values up: from a row
    for an array of objects (array items keep their parent's path), from the root for an object; "" for the
    items of a list. Follows local `$defs` references and `anyOf`/`oneOf`/`allOf`, a few levels deep."""
    if not isinstance(schema, Mapping):
        return []
    definitions = schema.get("$defs", {}) if isinstance(schema.get("$defs"), Mapping) else {}
    found: list[str] = []

    def walk(node: Any, path: str, depth: int, seen: frozenset[str]) -> None:
        if depth > 12 or not isinstance(node, Mapping):
            return
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            name = reference.removeprefix("#/$defs/")
            if name not in seen:
                walk(definitions.get(name), path, depth + 1, seen | {name})
        if node.get("format") in URI_FORMATS and path not in found:
            found.append(path)
        for key in ("anyOf", "oneOf", "allOf"):
            for branch in node.get(key, ()) if isinstance(node.get(key), list) else ():
                walk(branch, path, depth + 1, seen)
        properties = node.get("properties")
        if isinstance(properties, Mapping):
            for name, sub in properties.items():
                walk(sub, f"{path}.{name}" if path else str(name), depth + 1, seen)
        walk(node.get("items"), path, depth + 1, seen)

    walk(schema, "", 0, frozenset())
    return found


def _action_config(action: WidgetAction) -> dict[str, Any]:
    if action.tool is not None:
        return {"label": action.label, "tool": action.tool, "arguments": dict(action.arguments)}
    return {"label": action.label, "prompt": action.prompt}


def script_json(value: Any) -> str:
    """JSON that is safe inside a `<script>` element: it cannot close the element or open a comment.

    `<`, `>` and `&` only occur inside JSON strings, where their `\\uXXXX` escapes mean the same;
    U+2028/U+2029 are escaped for old JavaScript parsers that treat them as line ends.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return re.sub("[<>&\u2028\u2029]", lambda match: _SCRIPT_ESCAPES[match.group()], text)


def fill(template: str, runtime: str, config: Any) -> str:
    """The served HTML: both placeholders replaced in one pass, so nothing inserted is scanned again."""
    return _fill(template, runtime, script_json(config))


_RUNTIME_OPEN = "<script>"
_CONFIG_OPEN = '<script type="application/json" id="gateway-widget-config">'
_SCRIPT_CLOSE = "</script>"


def _fill(template: str, runtime: str, config_json: str) -> str:
    parts = {"runtime": f"{_RUNTIME_OPEN}{runtime}{_SCRIPT_CLOSE}",
             "config": f"{_CONFIG_OPEN}{config_json}{_SCRIPT_CLOSE}"}
    return _PLACEHOLDER.sub(lambda match: parts[match.group(1)], template)


@functools.lru_cache(maxsize=16)
def _utf8_length(text: str) -> int:
    """Bytes of `text` in UTF-8; the template and runtime, shared by every widget, are measured once."""
    return len(text.encode("utf-8"))


def link_domains(spec: WidgetSpec, options: WidgetOptions) -> list[str]:
    """The origins a widget's links open: the server's (`server.widgets.link_domains`), then its mapping's."""
    return list(dict.fromkeys((*options.link_domains, *spec.link_domains)))


def resource_meta(spec: WidgetSpec, description: str, options: WidgetOptions,
                  display_modes: Iterable[str] = ("inline",)) -> dict[str, Any]:
    """The resource `_meta` for both host families: `ui` (MCP Apps) and `openai/*` (Apps SDK).

    `ui.csp` lists only the non-empty domain lists, and is left out when both are empty: MCP Apps
    hosts then allow no network at all. `link_domains` become `openai/widgetCSP.redirect_domains` (MCP
    Apps has no such list: links open through `ui/open-link`, as the host decides). Display modes beyond
    "inline" are declared under `DISPLAY_MODES_META`.
    """
    csp = {key: list(domains) for key, domains in (("connectDomains", options.connect_domains),
                                                   ("resourceDomains", options.resource_domains)) if domains}
    ui: dict[str, Any] = {"prefersBorder": spec.prefers_border}
    if csp:
        ui["csp"] = csp
    if options.domain:
        ui["domain"] = options.domain
    openai_csp: dict[str, list[str]] = {"connect_domains": list(options.connect_domains),
                                         "resource_domains": list(options.resource_domains)}
    if domains := link_domains(spec, options):
        openai_csp["redirect_domains"] = domains
    meta: dict[str, Any] = {
        "ui": ui,
        "openai/widgetCSP": openai_csp,
        "openai/widgetDescription": description,
        "openai/widgetPrefersBorder": spec.prefers_border,
    }
    if options.domain:
        meta["openai/widgetDomain"] = options.domain
    modes = list(display_modes)
    if [mode for mode in modes if mode != "inline"]:
        meta[DISPLAY_MODES_META] = modes
    return meta


# -- status texts ("Listing pets…" / "Listed pets") -----------------------------------------------------------

_VERBS = frozenset({
    "accept", "add", "analyze", "apply", "approve", "archive", "assign", "attach", "ban", "begin", "book", "build",
    "buy", "calculate", "cancel", "change", "check", "clear", "close", "compute", "confirm", "convert", "copy",
    "count", "create", "cut", "decline", "delete", "deploy", "describe", "detach", "disable", "download", "drop",
    "edit", "enable", "execute", "export", "fetch", "find", "generate", "get", "import", "invite", "link", "list",
    "load", "lock", "log", "map", "merge", "modify", "move", "notify", "open", "order", "patch", "pay", "pin",
    "place", "plan", "post", "publish", "put", "query", "read", "refresh", "register", "reject", "remove", "rename",
    "replace", "report", "request", "reset", "resolve", "restore", "retrieve", "return", "run", "save", "scan",
    "schedule", "search", "select", "send", "set", "share", "ship", "show", "sort", "start", "stop", "submit",
    "subscribe", "summarize", "swap", "sync", "tag", "test", "track", "transfer", "trigger", "unlink", "unlock",
    "unsubscribe", "update", "upload", "upsert", "validate", "verify", "view", "write"
})
_DOUBLED = frozenset({
    "ban", "begin", "cut", "drop", "get", "log", "map", "pin", "plan", "put", "run", "scan", "set", "ship", "stop",
    "submit", "swap", "tag"
})
_PAST = {"begin": "began", "build": "built", "buy": "bought", "cut": "cut", "find": "found", "get": "got",
         "pay": "paid", "put": "put", "read": "read", "run": "ran", "send": "sent", "set": "set", "write": "wrote"}


def status_texts(title: str) -> tuple[str, str]:
    """Generated `invoking` / `invoked` texts for a title: "List pets" -> ("Listing pets…", "Listed pets").

    A title that starts with a known verb (also as "Lists", "Searches", "Queries") is inflected; any
    other title gives ("<title>…", "<title>: done"). Both are cut to 64 characters.
    """
    first, _, rest = title.strip().partition(" ")
    verb = _base_verb(first.lower())
    if verb is None:
        return _clip(f"{title.strip()}…"), _clip(f"{title.strip()}: done")
    tail = f" {rest}" if rest else ""
    doing, done = _present_participle(verb).capitalize(), (_PAST.get(verb) or _past(verb)).capitalize()
    return _clip(f"{doing}{tail}…"), _clip(f"{done}{tail}")


def _base_verb(word: str) -> str | None:
    candidates = [word]
    if word.endswith("ies"):
        candidates.append(word[:-3] + "y")
    if word.endswith("es"):
        candidates.append(word[:-2])
    if word.endswith("s"):
        candidates.append(word[:-1])
    return next((candidate for candidate in candidates if candidate in _VERBS), None)


def _present_participle(verb: str) -> str:
    if verb in _DOUBLED:
        return verb + verb[-1] + "ing"
    if verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
        return verb[:-1] + "ing"
    return verb + "ing"


def _past(verb: str) -> str:
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ied"
    if verb in _DOUBLED:
        return verb + verb[-1] + "ed"
    return verb + "ed"


def _clip(text: str) -> str:
    if len(text) <= MAX_STATUS_TEXT:
        return text
    cut = text[: MAX_STATUS_TEXT - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > MAX_STATUS_TEXT // 2 else cut).rstrip(" ,;:") + "…"
