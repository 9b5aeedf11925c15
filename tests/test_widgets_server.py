"""Widgets, server side: selection, the served HTML and its URIs, resources/list and /read, tool and result
`_meta`, mapping and config checks. Protocol tests run the gateway under uvicorn in front of the petstore
backend and talk to it with the SDK client advertising the MCP Apps extension, in both protocol eras."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import mcp.client
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from gateway.auth.http import ScopePolicy
from gateway.config import GatewayConfig, WidgetOptions, config_from_args, load_config
from gateway.errors import ConfigError
from gateway.mapping import load_mapping
from gateway.runtime import Gateway, load_gateway
from gateway.server import create_app
from gateway.serving.endpoint import descriptor
from gateway.tools.generate import widget_for_output
from gateway.widgets import (
    CONFIG_PLACEHOLDER,
    DISPLAY_MODES_META,
    EMBEDDED_WIDGET_META,
    MCP_APP_MIME,
    RUNTIME_PLACEHOLDER,
    SKYBRIDGE_MIME,
    UI_EXTENSION,
    WidgetRegistry,
    link_fields,
    status_texts,
)
from tests.conftest import ROOT, ServerThread
from tests.gateway_harness import running_gateway, text_of

SPEC = ROOT / "adapters" / "petstore" / "openapi.yaml"
MAPPING = ROOT / "adapters" / "petstore" / "mapping.yaml"
WIDGET_DATA = "io.semantic-adapter-gateway/widgetData"
URI = re.compile(r"^ui://widget/(?P<tool>[A-Za-z0-9_-]+)-(?P<hash>[0-9a-f]{12})\.html$")
PACKAGED = resources.files("widgets")
ERAS = [pytest.param(False, id="2026-07-28"), pytest.param(True, id="legacy")]


# -- helpers -------------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def apps_client(url: str, *, legacy: bool = False) -> AsyncIterator[Client]:
    """An SDK client that tells the server it renders MCP Apps widgets."""
    apps = mcp.client.advertise(UI_EXTENSION, {"mimeTypes": [MCP_APP_MIME]})
    async with Client(url, mode="legacy" if legacy else "auto", extensions=[apps]) as client:
        yield client


def with_widgets(**options: Any) -> Callable[[GatewayConfig], GatewayConfig]:
    """A `configure=` for running_gateway that sets `server.widgets`."""
    def configure(config: GatewayConfig) -> GatewayConfig:
        return replace(config, server=replace(config.server, widgets=WidgetOptions(**options)))
    return configure


def gateway_for(spec: Path | str, mapping: Path | str | None = None) -> Gateway:
    return load_gateway(config_from_args(spec=str(spec), mapping=str(mapping) if mapping else None,
                                         upstream="http://127.0.0.1:9"))


@contextlib.contextmanager
def serving(gw: Gateway, widgets: WidgetRegistry) -> Iterator[str]:
    """The gateway under uvicorn with a widget registry built from a test's own widget library."""
    with ServerThread(create_app(gw, widgets=widgets)) as server:
        yield f"{server.url}/mcp"


def write_mapping(tmp_path: Path, tools: str, name: str = "mapping.yaml") -> Path:
    path = tmp_path / name
    path.write_text("version: 1\ntools:\n" + tools, encoding="utf-8")
    return path


def line_of(path: Path, text: str) -> int:
    """The 1-based line of the first line of `path` containing `text`."""
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


class Scripts(HTMLParser):
    """The `<script>` elements of a document, split the way browsers split them (content ends at `</script`)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=False)
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None
        self._text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._open, self._text = dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._open is not None:
            self.scripts.append((self._open, "".join(self._text)))
            self._open = None

    def config(self) -> Any:
        found = [text for attrs, text in self.scripts if attrs.get("id") == "gateway-widget-config"]
        assert len(found) == 1, found
        assert attrs_of(self.scripts, "gateway-widget-config").get("type") == "application/json"
        return json.loads(found[0])


def attrs_of(scripts: list[tuple[dict[str, str | None], str]], element_id: str) -> dict[str, str | None]:
    return next(attrs for attrs, _ in scripts if attrs.get("id") == element_id)


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A widget library of minimal stand-ins (runtime and the three built-in templates)."""
    folder = tmp_path / "library"
    folder.mkdir()
    (folder / "runtime.js").write_text("window.GatewayWidget = {start: function (render) {}}; // stand-in runtime\n")
    for kind in ("table", "card", "list"):
        (folder / f"{kind}.html").write_text(
            f"<!doctype html><html><body><main data-kind=\"{kind}\"></main>{CONFIG_PLACEHOLDER}{RUNTIME_PLACEHOLDER}"
            f"<script>GatewayWidget.start(function () {{}});</script></body></html>\n")
    return folder


@pytest.fixture
def petstore_upstream(petstore_backend: ServerThread) -> str:
    return f"{petstore_backend.url}/api"


# -- selection -----------------------------------------------------------------------------------------------

SHAPES_SPEC = """
openapi: 3.1.0
info: {title: Shapes, version: "1"}
paths:
  /things:
    get:
      operationId: listThings
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {type: array, items: {$ref: "#/components/schemas/Thing"}}
  /things/{id}:
    get:
      operationId: getThing
      parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
      responses:
        "200":
          description: ok
          content: {application/json: {schema: {$ref: "#/components/schemas/Thing"}}}
  /tags:
    get:
      operationId: listTags
      responses:
        "200":
          description: ok
          content: {application/json: {schema: {type: array, items: {type: string}}}}
  /readme:
    get:
      operationId: getReadme
      responses:
        "200": {description: ok, content: {text/plain: {schema: {type: string}}}}
  /mixed:
    get:
      operationId: getMixed
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema:
                anyOf:
                  - {type: array, items: {$ref: "#/components/schemas/Thing"}}
                  - {$ref: "#/components/schemas/Thing"}
  /either:
    get:
      operationId: getEither
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema:
                oneOf:
                  - {$ref: "#/components/schemas/Thing"}
                  - {type: object, properties: {other: {type: string}}}
components:
  schemas:
    Thing:
      type: object
      required: [id]
      properties: {id: {type: integer}, name: {type: string}}
"""


@pytest.fixture
def shapes_spec(tmp_path: Path) -> Path:
    path = tmp_path / "shapes.yaml"
    path.write_text(SHAPES_SPEC, encoding="utf-8")
    return path


def test_widget_is_chosen_from_the_output_shape(shapes_spec: Path) -> None:
    kinds = {name: tool.widget.kind if tool.widget else None for name, tool in gateway_for(shapes_spec).tools.items()}
    assert kinds == {"listThings": "table", "getThing": "card", "listTags": "list", "getReadme": None,
                     "getMixed": None, "getEither": "card"}


def test_shapes_of_hand_written_schemas() -> None:
    assert widget_for_output(None) is None
    assert widget_for_output({"type": "array", "items": {"type": ["object", "null"], "properties": {}}}) == "table"
    assert widget_for_output({"type": "array", "items": {"allOf": [{"properties": {"a": {}}}]}}) == "table"
    assert widget_for_output({"type": "array", "items": {"enum": ["a", "b"]}}) == "list"
    assert widget_for_output({"type": "array", "items": {"type": ["integer", "null"]}}) == "list"
    assert widget_for_output({"type": "array", "items": {}}) is None
    assert widget_for_output({"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "object"}]}}) is None
    assert widget_for_output({"type": ["object", "null"]}) == "card"
    assert widget_for_output({"type": "string"}) is None


def test_mapping_names_a_widget_or_turns_it_off(tmp_path: Path, shapes_spec: Path, library: Path) -> None:
    mapping = write_mapping(tmp_path, """\
  listThings: {widget: card}
  getThing: {widget: false}
  getReadme: {widget: {kind: list, title: Read me, page_size: 3, prefers_border: false}}
  getMixed: {widget: {title: Mixed}}
""")
    gw = gateway_for(shapes_spec, mapping)
    kinds = {name: tool.widget.kind if tool.widget else None for name, tool in gw.tools.items()}
    assert kinds == {"listThings": "card", "getThing": None, "listTags": "list", "getReadme": "list",
                     "getMixed": None, "getEither": "card"}
    warnings = [str(w) for w in gw.warnings]
    assert any(w.startswith(f"{mapping}:{line_of(mapping, 'getMixed')}:") and "name one with `kind`" in w
               for w in warnings), warnings
    registry = WidgetRegistry.build(gw.tools, WidgetOptions(), library)
    assert set(registry.widgets) == {"listThings", "listTags", "getReadme", "getEither"}
    readme = registry.widgets["getReadme"]
    assert Scripts(readme.html).config() == {"tool": "getReadme", "title": "Read me", "kind": "list", "columns": None,
                                             "pageSize": 3, "actions": [], "rowAction": None,
                                             "displayModes": ["inline"], "linkFields": [], "linkDomains": []}
    assert readme.meta["ui"] == {"prefersBorder": False} and readme.meta["openai/widgetPrefersBorder"] is False


# -- the served HTML and its URI -----------------------------------------------------------------------------


def test_served_html_fills_both_placeholders() -> None:
    gw = gateway_for(SPEC, MAPPING)
    registry = WidgetRegistry.build(gw.tools, gw.config.server.widgets)
    runtime = (PACKAGED / "runtime.js").read_text(encoding="utf-8")
    widget = registry.widgets["list_pets"]
    assert RUNTIME_PLACEHOLDER not in widget.html and CONFIG_PLACEHOLDER not in widget.html
    scripts = Scripts(widget.html)
    assert runtime in [text for _, text in scripts.scripts]
    assert scripts.config() == {
        "tool": "list_pets", "title": "Pets", "kind": "table", "columns": ["id", "name", "tag", "status"],
        "pageSize": 10,
        "actions": [{"label": "Details", "tool": "get_pet", "arguments": {"petId": "{id}"}},
                    {"label": "Ask about {name}", "prompt": "Tell me more about the pet {name} (id {id})."}],
        "rowAction": 0, "displayModes": ["inline", "fullscreen"], "linkFields": [], "linkDomains": [],
    }
    match = URI.match(widget.uri)
    assert match and match["tool"] == "list_pets"
    assert WidgetRegistry.build(gw.tools, gw.config.server.widgets).widgets["list_pets"].uri == widget.uri


def test_a_widget_uri_changes_exactly_when_its_html_does(library: Path) -> None:
    """The URI is content-addressed (hosts cache a widget by it): a new runtime, template or configuration
    gives a new URI, and the same ones give the same URI."""
    gw = gateway_for(SPEC, MAPPING)

    def uris(folder: Path, options: WidgetOptions | None = None) -> dict[str, str]:
        registry = WidgetRegistry.build(gw.tools, options or gw.config.server.widgets, folder)
        return {name: widget.uri for name, widget in registry.widgets.items()}

    first = uris(library)
    assert uris(library) == first
    runtime = library / "runtime.js"
    runtime.write_text(runtime.read_text() + "\n// changed")
    changed_runtime = uris(library)
    assert all(changed_runtime[name] != first[name] for name in first)
    template = library / "table.html"
    template.write_text(template.read_text().replace("<body>", "<body class=changed>"))
    changed_template = uris(library)
    tables = [name for name, widget in WidgetRegistry.build(gw.tools, gw.config.server.widgets, library)
              .widgets.items() if widget.config["kind"] == "table"]
    assert tables and all(changed_template[name] != changed_runtime[name] for name in tables)
    assert all(changed_template[name] == changed_runtime[name] for name in first if name not in tables)
    no_fullscreen = uris(library, replace(gw.config.server.widgets, fullscreen=False))  # the config differs
    assert all(no_fullscreen[name] != changed_template[name] for name in tables)


def test_packaged_templates_have_each_placeholder_once() -> None:
    for kind in ("table", "card", "list"):
        text = (PACKAGED / f"{kind}.html").read_text(encoding="utf-8")
        assert text.count(RUNTIME_PLACEHOLDER) == 1 and text.count(CONFIG_PLACEHOLDER) == 1, kind
    assert "</script" not in (PACKAGED / "runtime.js").read_text(encoding="utf-8").lower()


def test_uris_are_stable_and_change_with_the_widget(tmp_path: Path, library: Path) -> None:
    first = WidgetRegistry.build(gateway_for(SPEC, MAPPING).tools, WidgetOptions(), library)
    again = WidgetRegistry.build(gateway_for(SPEC, MAPPING).tools, WidgetOptions(), library)  # another replica
    uris = {name: widget.uri for name, widget in first.widgets.items()}
    assert uris == {name: widget.uri for name, widget in again.widgets.items()}
    assert len(set(uris.values())) == len(uris)  # one document per tool: configs differ

    (library / "table.html").write_text((library / "table.html").read_text() + "<!-- changed -->")
    changed = WidgetRegistry.build(gateway_for(SPEC, MAPPING).tools, WidgetOptions(), library)
    assert changed.widgets["list_pets"].uri != uris["list_pets"]  # the only table
    assert changed.widgets["get_pet"].uri == uris["get_pet"]

    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING.read_text().replace("title: Pets", "title: All the pets"))
    retitled = WidgetRegistry.build(gateway_for(SPEC, mapping).tools, WidgetOptions(), library)
    assert retitled.widgets["list_pets"].uri not in (uris["list_pets"], changed.widgets["list_pets"].uri)
    assert retitled.widgets["get_inventory"].uri == uris["get_inventory"]

    (library / "runtime.js").write_text("window.GatewayWidget = {start: function () {}}; // new runtime\n")
    new_runtime = WidgetRegistry.build(gateway_for(SPEC, MAPPING).tools, WidgetOptions(), library)
    assert all(new_runtime.widgets[name].uri != changed.widgets[name].uri for name in uris)


def test_config_cannot_break_out_of_its_script_element(tmp_path: Path, library: Path) -> None:
    hostile = "</script><script>alert(1)</script><!--"
    mapping = write_mapping(tmp_path, f"""\
  listPets:
    name: list_pets
    widget:
      title: {json.dumps(hostile)}
      actions:
        - label: "Ask & tell \\u2028 <b>"
          prompt: "<!--<script>alert(2)</script>-->"
""")
    gw = gateway_for(SPEC, mapping)
    widget = WidgetRegistry.build(gw.tools, WidgetOptions(), library).widgets["list_pets"]
    scripts = Scripts(widget.html)
    assert scripts.config()["title"] == hostile
    assert scripts.config()["actions"] == [{"label": "Ask & tell \u2028 <b>",
                                            "prompt": "<!--<script>alert(2)</script>-->"}]
    # Exactly the template's scripts: the config, the runtime and the template's own start call.
    assert len(scripts.scripts) == 3
    assert not any("alert" in text for attrs, text in scripts.scripts if attrs.get("id") != "gateway-widget-config")
    config_text = next(text for attrs, text in scripts.scripts if attrs.get("id") == "gateway-widget-config")
    assert not set("<>&\u2028\u2029") & set(config_text)


# -- custom templates ----------------------------------------------------------------------------------------


def test_custom_template_is_read_relative_to_the_mapping(tmp_path: Path) -> None:
    (tmp_path / "views").mkdir()
    (tmp_path / "views" / "pets.html").write_text(
        f"<!doctype html><html><body><h1>My pets</h1>{RUNTIME_PLACEHOLDER}{CONFIG_PLACEHOLDER}</body></html>")
    mapping = write_mapping(tmp_path, "  listPets: {name: list_pets, widget: {template: views/pets.html}}\n")
    gw = gateway_for(SPEC, mapping)
    widget = WidgetRegistry.build(gw.tools, WidgetOptions()).widgets["list_pets"]
    assert "<h1>My pets</h1>" in widget.html
    assert (PACKAGED / "runtime.js").read_text(encoding="utf-8") in widget.html
    assert Scripts(widget.html).config()["kind"] == "custom"


def test_missing_template_is_an_error_at_its_line(tmp_path: Path) -> None:
    mapping = write_mapping(tmp_path, "  listPets:\n    widget:\n      template: nowhere/pets.html\n")
    with pytest.raises(ConfigError) as caught:
        load_mapping(mapping)
    assert caught.value.where == f"{mapping}:{line_of(mapping, 'template:')}"
    assert "no such file" in caught.value.message and str(tmp_path / "nowhere" / "pets.html") in caught.value.message


@pytest.mark.parametrize("body, problem", [
    ("<html><body>" + CONFIG_PLACEHOLDER + "</body></html>", f"{RUNTIME_PLACEHOLDER} exactly once, not 0 times"),
    ("<html>" + RUNTIME_PLACEHOLDER + CONFIG_PLACEHOLDER * 2 + "</html>", f"{CONFIG_PLACEHOLDER} exactly once, not 2"),
])
def test_template_without_its_placeholders_is_an_error(tmp_path: Path, body: str, problem: str) -> None:
    (tmp_path / "view.html").write_text(body)
    mapping = write_mapping(tmp_path, "  listPets:\n    name: list_pets\n    widget: {template: view.html}\n")
    with pytest.raises(ConfigError) as caught:
        gateway_for(SPEC, mapping)  # widgets are checked once, when the gateway loads
    assert caught.value.where.startswith(f"{mapping}:{line_of(mapping, 'widget:')}")
    assert str(tmp_path / "view.html") in caught.value.where
    assert problem in caught.value.message


# -- mapping checks ------------------------------------------------------------------------------------------


def test_actions_are_checked_against_the_served_tools(tmp_path: Path) -> None:
    mapping = write_mapping(tmp_path, """\
  listPets:
    name: list_pets
    widget:
      actions:
        - label: Open
          tool: get_pets
        - label: Typo
          tool: get_pet
          arguments: {petid: "{id}"}
        - label: Hidden
          tool: get_inventory
  getPet: {name: get_pet}
  getInventory: {name: get_inventory, visibility: [model]}
""")
    with pytest.raises(ConfigError) as caught:
        gateway_for(SPEC, mapping)  # widgets are checked once, when the gateway loads
    lines = str(caught.value).splitlines()
    assert lines[0] == (f"{mapping}:{line_of(mapping, 'label: Open')}: tool 'list_pets': widget action 'Open' calls "
                        "'get_pets', which is not a served tool (did you mean 'get_pet'?)")
    typo = f"{mapping}:{line_of(mapping, 'label: Typo')}: tool 'list_pets': widget action 'Typo'"
    assert f"{typo}: 'get_pet' takes no argument 'petid' (did you mean 'petId'?); its arguments: petId" in lines
    assert f"{typo} leaves out 'petId', which 'get_pet' requires" in lines
    assert (f"{mapping}:{line_of(mapping, 'label: Hidden')}: tool 'list_pets': widget action 'Hidden' calls "
            "'get_inventory', whose visibility ['model'] does not include \"app\"") in lines
    assert len(lines) == 4


@pytest.mark.parametrize("entry, field, problem", [
    ("widget: true", "widget", "must be false (no widget)"),
    ("widget: grid", "widget", "must be table, card or list"),
    ("widget: {kind: table, template: x.html}", "widget", "give `kind` (a built-in widget) or `template`"),
    ("widget: {colums: [a]}", "widget", "unknown key 'colums' (did you mean 'columns'?)"),
    ("widget: {actions: [{label: A, tool: get_pet, prompt: Hi}]}", "widget", "give exactly one of them"),
    ("widget: {actions: [{label: A, prompt: Hi, arguments: {a: 1}}]}", "widget", "`arguments` are for an action"),
    ("widget: {actions: [{label: A, prompt: Hi}], row_action: B}", "widget",
     "no action is labelled 'B'; labels: 'A'"),
    ("widget: {actions: [{label: A, prompt: Hi}], row_action: 1}", "widget", "there is no action 1"),
    ("invoking: " + "x" * 65, "invoking", "must be at most 64 characters long"),
    ("visibility: [agent]", "visibility", "must be one of: \"model\", \"app\""),
])
def test_widget_keys_are_checked_when_the_mapping_loads(tmp_path: Path, entry: str, field: str, problem: str) -> None:
    mapping = write_mapping(tmp_path, f"  listPets:\n    {entry}\n")
    with pytest.raises(ConfigError) as caught:
        load_mapping(mapping)
    assert str(caught.value).startswith(f"{mapping}:{line_of(mapping, field + ':')}: tools.listPets.{field}")
    assert problem in str(caught.value)


def test_widget_settings_in_the_gateway_config(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(f"""version: 1
server:
  widgets: {{skybridge: true, domain: widgets.example.com, connect_domains: [https://api.example.com]}}
backends:
  - {{name: pets, spec: {SPEC}}}
""")
    assert load_config(config).server.widgets == WidgetOptions(skybridge=True, domain="widgets.example.com",
                                                               connect_domains=("https://api.example.com",))
    config.write_text(config.read_text().replace("https://api.example.com", "api.example.com/x"))
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert str(caught.value).startswith(f"{config}:3: server.widgets.connect_domains[0]: must be an origin")


def test_status_texts_from_titles() -> None:
    assert status_texts("List pets") == ("Listing pets…", "Listed pets")
    assert status_texts("Get a pet") == ("Getting a pet…", "Got a pet")
    assert status_texts("Returns pet inventories by status") == ("Returning pet inventories by status…",
                                                                  "Returned pet inventories by status")
    assert status_texts("Queries the index") == ("Querying the index…", "Queried the index")
    assert status_texts("Pet inventory") == ("Pet inventory…", "Pet inventory: done")
    invoking, invoked = status_texts("Update " + "the very long name of a thing " * 5)
    assert len(invoking) <= 64 and len(invoked) <= 64 and invoking.startswith("Updating the very long")


# -- descriptors ---------------------------------------------------------------------------------------------


def test_widget_meta_joins_the_other_tool_meta() -> None:
    gw = gateway_for(SPEC, MAPPING)
    registry = WidgetRegistry.build(gw.tools, gw.config.server.widgets)
    tool = gw.tools["list_pets"]
    meta = descriptor(tool, legacy=False, security=ScopePolicy.of(("pets",), gw.tools), widgets=registry).meta
    assert meta["securitySchemes"] == [{"type": "oauth2", "scopes": ["pets", "pets:read"]}]
    assert meta["ui"] == {"resourceUri": registry.widgets["list_pets"].uri}
    plain = descriptor(replace(tool, meta={"x-own": 1}), legacy=False, widgets=registry).meta
    assert plain["x-own"] == 1 and plain["openai/outputTemplate"] == registry.widgets["list_pets"].uri


DESCRIPTIONS = {
    "table": "a sortable, paged table of the result, shown to the user (no need to repeat its rows).",
    "card": "a card with the result's fields, shown to the user (no need to repeat them).",
    "list": "a list of the result's items, shown to the user (no need to repeat them).",
}


@pytest.mark.anyio
@pytest.mark.parametrize("legacy", ERAS)
async def test_resources_and_descriptors_over_mcp(petstore_upstream: str, legacy: bool) -> None:
    with running_gateway(str(SPEC), petstore_upstream, str(MAPPING)) as (gw, url):
        async with apps_client(url, legacy=legacy) as client:
            listed = (await client.list_resources()).resources
            metas = {tool.name: tool.meta or {} for tool in (await client.list_tools()).tools}
            reads = {resource.uri: await client.read_resource(resource.uri) for resource in listed}
            capabilities = client.server_capabilities
    assert capabilities is not None and capabilities.resources is not None
    if not legacy:
        assert capabilities.extensions == {UI_EXTENSION: {"mimeTypes": [MCP_APP_MIME]}}
    specs = {name: tool.widget for name, tool in gw.tools.items() if tool.widget is not None}
    assert "delete_pet" not in specs and {"list_pets", "get_pet", "get_inventory"} <= set(specs)
    matches = {resource.uri: URI.match(resource.uri) for resource in listed}
    assert all(matches.values()) and len(listed) == len(specs)
    by_tool = {match["tool"]: resource for resource, match in zip(listed, matches.values(), strict=True) if match}
    assert set(by_tool) == set(specs)
    for name, resource in by_tool.items():
        assert resource.mime_type == MCP_APP_MIME
        meta = metas[name]
        assert meta["ui"] == {"resourceUri": resource.uri} and meta["openai/outputTemplate"] == resource.uri
        assert 0 < len(meta["openai/toolInvocation/invoking"]) <= 64
        assert 0 < len(meta["openai/toolInvocation/invoked"]) <= 64
        read = reads[resource.uri]
        (content,) = read.contents
        assert isinstance(content, types.TextResourceContents)
        assert content.uri == resource.uri and content.mime_type == MCP_APP_MIME
        assert URI.match(resource.uri)
        assert Scripts(content.text).config()["tool"] == name
        modes = {DISPLAY_MODES_META: ["inline", "fullscreen"]} if specs[name].kind == "table" else {}
        assert content.meta == resource.meta == {
            "ui": {"prefersBorder": True},
            "openai/widgetCSP": {"connect_domains": [], "resource_domains": []},
            "openai/widgetDescription": f"{specs[name].title}: {DESCRIPTIONS[specs[name].kind]}",
            "openai/widgetPrefersBorder": True,
            **modes,
        }
        if not legacy:
            assert (read.ttl_ms, read.cache_scope) == (86_400_000, "public")
    assert metas["list_pets"]["openai/toolInvocation/invoking"] == "Listing pets…"
    assert metas["list_pets"]["openai/toolInvocation/invoked"] == "Listed pets"
    assert metas["list_pets"]["openai/widgetAccessible"] is True  # its widget calls get_pet
    assert metas["get_pet"]["openai/widgetAccessible"] is True  # a widget calls it
    assert "openai/widgetAccessible" not in metas["get_inventory"]
    assert "ui" not in metas["delete_pet"] and "openai/outputTemplate" not in metas["delete_pet"]


@pytest.mark.anyio
async def test_reading_an_unknown_resource_is_an_error(petstore_upstream: str) -> None:
    with running_gateway(str(SPEC), petstore_upstream, str(MAPPING)) as (_, url):
        async with apps_client(url) as client:
            with pytest.raises(MCPError, match="Unknown resource"):
                await client.read_resource("ui://widget/list_pets-000000000000.html")


@pytest.mark.anyio
async def test_visibility_and_status_texts_from_the_mapping(tmp_path: Path, library: Path) -> None:
    mapping = write_mapping(tmp_path, """\
  listPets: {name: list_pets, invoking: Fetching the pets…, invoked: Here are the pets}
  getPet: {name: get_pet, visibility: [app], widget: false}
  getInventory: {name: get_inventory, visibility: [model, app], invoked: Counted}
""")
    gw = gateway_for(SPEC, mapping)
    with serving(gw, WidgetRegistry.build(gw.tools, WidgetOptions(), library)) as url:
        async with apps_client(url) as client:
            tools = {tool.name: tool.meta or {} for tool in (await client.list_tools()).tools}
    assert tools["list_pets"]["openai/toolInvocation/invoking"] == "Fetching the pets…"
    assert tools["list_pets"]["openai/toolInvocation/invoked"] == "Here are the pets"
    assert tools["get_pet"] == {"ui": {"visibility": ["app"]}, "openai/visibility": "private"}
    inventory = tools["get_inventory"]
    assert inventory["ui"]["visibility"] == ["model", "app"] and "openai/visibility" not in inventory
    assert inventory["openai/toolInvocation/invoking"] == "Counting pets by status…"  # generated: a widget tool
    assert inventory["openai/toolInvocation/invoked"] == "Counted"


# -- options -------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_skybridge_serves_a_second_copy(petstore_upstream: str) -> None:
    configure = with_widgets(skybridge=True)
    with running_gateway(str(SPEC), petstore_upstream, str(MAPPING), configure=configure) as (gw, url):
        async with apps_client(url) as client:
            listed = (await client.list_resources()).resources
            meta = next(t.meta or {} for t in (await client.list_tools()).tools if t.name == "list_pets")
            standard, skybridge = [(await client.read_resource(uri)).contents[0]
                                   for uri in (meta["ui"]["resourceUri"], meta["openai/outputTemplate"])]
    assert len(listed) == 2 * sum(1 for tool in gw.tools.values() if tool.widget is not None)
    assert {r.mime_type for r in listed} == {MCP_APP_MIME, SKYBRIDGE_MIME}
    assert meta["openai/outputTemplate"] == meta["ui"]["resourceUri"].removesuffix(".html") + ".skybridge.html"
    assert (standard.mime_type, skybridge.mime_type) == (MCP_APP_MIME, SKYBRIDGE_MIME)
    assert isinstance(standard, types.TextResourceContents) and isinstance(skybridge, types.TextResourceContents)
    assert standard.text == skybridge.text and standard.meta == skybridge.meta


@pytest.mark.anyio
async def test_domains_go_into_the_resource_meta(tmp_path: Path, library: Path) -> None:
    options = WidgetOptions(domain="https://widgets.example.com", resource_domains=("https://*.cdn.example.com",))
    gw = gateway_for(SPEC, MAPPING)
    with serving(gw, WidgetRegistry.build(gw.tools, options, library)) as url:
        async with apps_client(url) as client:
            resource = (await client.list_resources()).resources[0]
    assert resource.meta is not None
    assert resource.meta["ui"] == {"prefersBorder": True, "csp": {"resourceDomains": ["https://*.cdn.example.com"]},
                                   "domain": "https://widgets.example.com"}
    assert resource.meta["openai/widgetCSP"] == {"connect_domains": [], "resource_domains": ["https://*.cdn.example.com"]}
    assert resource.meta["openai/widgetDomain"] == "https://widgets.example.com"


@pytest.mark.anyio
async def test_widgets_can_be_turned_off(petstore_upstream: str) -> None:
    with running_gateway(str(SPEC), petstore_upstream, str(MAPPING), configure=with_widgets(enabled=False)) as (
            _, url):
        async with apps_client(url) as client:
            capabilities = client.server_capabilities
            tools = (await client.list_tools()).tools
            result = await client.call_tool("list_pets", {})
    assert capabilities is not None and capabilities.resources is None and not capabilities.extensions
    assert all(not tool.meta or "ui" not in tool.meta for tool in tools)
    assert not result.is_error and WIDGET_DATA not in (result.meta or {})


# -- results -------------------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("legacy", ERAS)
async def test_results_carry_the_whole_answer_for_the_widget_only_when_the_model_sees_less(
        tmp_path: Path, petstore_upstream: str, legacy: bool) -> None:
    mapping = tmp_path / "mapping.yaml"
    head, _, tail = MAPPING.read_text().replace("max_items: 50", "max_items: 2").rpartition(
        "    widget: card\n")
    mapping.write_text(head + "    widget: false\n" + tail)  # get_inventory: no widget
    with running_gateway(str(SPEC), petstore_upstream, str(mapping)) as (_, url):
        async with apps_client(url, legacy=legacy) as client:
            listed = await client.call_tool("list_pets", {"limit": 100})
            pet = await client.call_tool("get_pet", {"petId": 1})
            missing = await client.call_tool("get_pet", {"petId": 999999})
            inventory = await client.call_tool("get_inventory", {})
    assert not listed.is_error and listed.meta is not None
    whole = listed.meta[WIDGET_DATA]
    assert isinstance(whole, list) and len(whole) > 2 and all("name" in item for item in whole)
    structured = listed.structured_content
    assert (structured == {"result": whole[:2]}) if legacy else (structured == whole[:2])  # the model: 2 of them
    assert text_of(listed).startswith("2 pets\n") and f"(first 2 of {len(whole)} items)" in text_of(listed)
    assert WIDGET_DATA not in (pet.meta or {})  # the same data as structuredContent: sent once
    assert pet.structured_content["id"] == 1
    assert missing.is_error and WIDGET_DATA not in (missing.meta or {})
    assert not inventory.is_error and WIDGET_DATA not in (inventory.meta or {})


# -- links, display modes, embedding -------------------------------------------------------------------------


def test_link_fields_come_from_uri_formats_in_the_output_schema() -> None:
    pet = {"type": "object", "properties": {
        "name": {"type": "string"}, "homepage": {"type": "string", "format": "uri"},
        "photoUrls": {"type": "array", "items": {"type": "string", "format": "uri"}},
        "owner": {"$ref": "#/$defs/Owner"},
        "either": {"anyOf": [{"type": "null"}, {"type": "string", "format": "url"}]},
        "email": {"type": "string", "format": "email"}}}
    defs = {"Owner": {"type": "object", "properties": {"profile": {"type": "string", "format": "iri"},
                                                       "friend": {"$ref": "#/$defs/Owner"}}}}
    assert link_fields({"type": "array", "items": pet, "$defs": defs}) == [
        "homepage", "photoUrls", "owner.profile", "either"]  # a recursive $ref is followed once
    assert link_fields({"type": "array", "items": {"type": "string", "format": "uri"}}) == [""]
    assert link_fields({"type": "object", "properties": {"id": {"type": "integer"}}}) == []
    assert link_fields(None) == []


def test_link_domains_and_display_modes_go_into_the_config_and_the_meta(tmp_path: Path) -> None:
    gw = gateway_for(SPEC, MAPPING)
    options = WidgetOptions(link_domains=("https://docs.example.com", "https://*.pets.example"))
    registry = WidgetRegistry.build(gw.tools, options)
    table, card = registry.widgets["list_pets"], registry.widgets["get_pet"]
    assert table.meta["openai/widgetCSP"] == {"connect_domains": [], "resource_domains": [],
                                              "redirect_domains": ["https://docs.example.com", "https://*.pets.example"]}
    assert "csp" not in table.meta["ui"]  # MCP Apps has no list for links: ui/open-link goes through the host
    assert Scripts(table.html).config()["linkDomains"] == ["https://docs.example.com", "https://*.pets.example"]
    assert table.meta[DISPLAY_MODES_META] == ["inline", "fullscreen"]
    assert DISPLAY_MODES_META not in card.meta and Scripts(card.html).config()["displayModes"] == ["inline"]
    quiet = WidgetRegistry.build(gw.tools, WidgetOptions(fullscreen=False)).widgets["list_pets"]
    assert DISPLAY_MODES_META not in quiet.meta and Scripts(quiet.html).config()["displayModes"] == ["inline"]
    assert quiet.uri != table.uri


def test_widget_link_settings_in_the_gateway_config(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(f"""version: 1
server:
  widgets: {{link_domains: [https://docs.example.com], fullscreen: false, embed_in_results: true}}
backends:
  - {{name: pets, spec: {SPEC}}}
""")
    assert load_config(config).server.widgets == WidgetOptions(link_domains=("https://docs.example.com",),
                                                               fullscreen=False, embed_in_results=True)
    config.write_text(config.read_text().replace("https://docs.example.com", "javascript:alert(1)"))
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert str(caught.value).startswith(f"{config}:3: server.widgets.link_domains[0]: must be an origin")


def test_embedded_widget_meta_only_with_the_option() -> None:
    gw = gateway_for(SPEC, MAPPING)
    assert WidgetRegistry.build(gw.tools).embedded_widget_meta("list_pets") is None  # off by default
    registry = WidgetRegistry.build(gw.tools, WidgetOptions(embed_in_results=True))
    widget = registry.widgets["list_pets"]
    embedded = registry.embedded_widget_meta("list_pets")
    assert embedded is not None and list(embedded) == [EMBEDDED_WIDGET_META]
    assert embedded[EMBEDDED_WIDGET_META] == {
        "type": "resource",
        "resource": {"uri": widget.uri, "mimeType": SKYBRIDGE_MIME, "text": widget.html, "_meta": dict(widget.meta)}}
    json.dumps(embedded)  # plain JSON, ready for a result's _meta
    assert registry.embedded_widget_meta("delete_pet") is None  # no widget
    assert registry.embedded_widget_meta("no_such_tool") is None
    assert registry.only(["list_pets"]).embedded_widget_meta("list_pets") == embedded  # a toolset keeps the option
    assert registry.only(["get_pet"]).embedded_widget_meta("list_pets") is None

    skybridge = WidgetRegistry.build(gw.tools, WidgetOptions(embed_in_results=True, skybridge=True))
    resource = skybridge.embedded_widget_meta("list_pets")[EMBEDDED_WIDGET_META]["resource"]
    assert resource["uri"] == skybridge.widgets["list_pets"].skybridge_uri  # the copy served as skybridge

    result = types.CallToolResult(content=[types.TextContent(type="text", text="[]")], _meta={WIDGET_DATA: []})
    merged = registry.with_embedded_widget(result, "list_pets")
    assert merged.meta == {WIDGET_DATA: [], **embedded} and result.meta == {WIDGET_DATA: []}
    assert registry.with_embedded_widget(result, "delete_pet") is result


@pytest.mark.anyio
async def test_embed_in_results_puts_the_widget_in_each_served_result(petstore_upstream: str) -> None:
    with running_gateway(str(SPEC), petstore_upstream, str(MAPPING), configure=with_widgets(embed_in_results=True)
                         ) as (_, url):
        async with apps_client(url) as client:
            listed = await client.call_tool("list_pets", {})
            deleted = await client.call_tool("delete_pet", {"petId": 999999})
    embedded = listed.meta["openai.com/widget"]
    assert embedded["type"] == "resource" and embedded["resource"]["mimeType"] == "text/html+skybridge"
    assert "<html" in embedded["resource"]["text"].lower()
    assert "openai.com/widget" not in (deleted.meta or {})  # a tool without a widget gets none


def test_a_mapping_adds_link_domains_for_its_own_widget(tmp_path: Path) -> None:
    mapping = write_mapping(tmp_path, "  listPets:\n    name: list_pets\n    widget:\n"
                                      "      link_domains: [https://vets.example, https://docs.example.com]\n")
    gw = gateway_for(SPEC, mapping)
    registry = WidgetRegistry.build(gw.tools, WidgetOptions(link_domains=("https://docs.example.com",)))
    table, card = registry.widgets["list_pets"], registry.widgets["getPet"]
    assert table.meta["openai/widgetCSP"]["redirect_domains"] == ["https://docs.example.com", "https://vets.example"]
    assert Scripts(table.html).config()["linkDomains"] == ["https://docs.example.com", "https://vets.example"]
    assert card.meta["openai/widgetCSP"]["redirect_domains"] == ["https://docs.example.com"]
    bad = write_mapping(tmp_path, "  listPets:\n    widget: {link_domains: [vets.example/path]}\n", "bad.yaml")
    with pytest.raises(ConfigError, match=rf"{bad}:4: tools.listPets.widget.link_domains\[0\]: must be an origin"):
        gateway_for(SPEC, bad)
