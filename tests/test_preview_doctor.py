"""`gateway doctor` against real gateways (with and without sign-in) and planted problems, and `gateway preview`
driven in headless Chromium: the page lists the tools, calls one, renders its widget and hosts it over both
bridges (MCP Apps postMessage, window.openai)."""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import pytest
import yaml
from mcp.server import Server
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapters.devauth import AuthServer
from adapters.petstore import MAPPING, SPEC
from gateway.auth.settings import InboundAuth
from gateway.cli import main
from gateway.config import GatewayConfig, WidgetOptions, config_from_args
from gateway.doctor import MCP_APP_MIME, url_advice
from gateway.preview import create_preview_app, page_csp, preview_config
from gateway.runtime import load_gateway
from gateway.server import create_app
from tests.conftest import ROOT, ServerThread
from tests.gateway_harness import running_gateway

RESOURCE = "https://gw.example/mcp"  # the public URL the signed-in gateways claim (tokens' audience)
ARTIFACTS = ROOT / "tests" / "artifacts" / "preview"


@pytest.fixture(scope="module")
def widget_mapping(tmp_path_factory) -> Path:
    """The petstore mapping with a table widget on list_pets: a row opens the pet (tools/call get_pet), a
    second button asks about it (a follow-up prompt)."""
    mapping = yaml.safe_load(MAPPING.read_text(encoding="utf-8"))
    mapping["tools"]["listPets"]["widget"] = {
        "columns": ["id", "name", "status"],
        "actions": [{"label": "Details", "tool": "get_pet", "arguments": {"petId": "{id}"}},
                    {"label": "Ask about {name}", "prompt": "Tell me more about the pet {name} (id {id})."}],
        "row_action": 0,
    }
    path = tmp_path_factory.mktemp("mapping") / "mapping.yaml"
    path.write_text(yaml.safe_dump(mapping), encoding="utf-8")
    return path


def doctor(capsys, *argv: str) -> tuple[int, list[str]]:
    """`gateway doctor ARGV`: (exit code, the printed lines)."""
    code = main(["doctor", *argv])
    return code, capsys.readouterr().out.splitlines()


def lines(output: list[str], status: str, subject: str) -> list[str]:
    return [line for line in output if re.match(rf"{re.escape(status)}\s+{re.escape(subject)}", line)]


def signed_in(issuer: str) -> Callable[[GatewayConfig], GatewayConfig]:
    def configure(config: GatewayConfig) -> GatewayConfig:
        auth = InboundAuth(mode="oauth", issuer=issuer, resource_url=RESOURCE)
        return replace(config, server=replace(config.server, auth=auth))
    return configure


# --- doctor against real gateways ------------------------------------------------------------------------------

def test_doctor_passes_a_petstore_with_widgets(capsys, petstore_backend, widget_mapping):
    with running_gateway(str(SPEC), f"{petstore_backend.url}/api", str(widget_mapping)) as (_, url):
        code, out = doctor(capsys, "--url", url)
    assert code == 0, "\n".join(out)
    assert not [line for line in out if line.startswith("FAIL")]
    assert lines(out, "warn", "public URL")  # http on loopback: not what ChatGPT can reach
    assert lines(out, "ok", "initialize") and lines(out, "ok", "tools: 9 listed")
    table = lines(out, "ok", "widget ui://widget/list_pets-")
    assert len(table) == 1 and MCP_APP_MIME in table[0]
    assert lines(out, "ok", "tool list_pets: shows ui://widget/list_pets-")
    assert lines(out, "warn", "sign-in")  # no token checks
    assert out[-1].endswith("0 FAIL")


def test_doctor_accepts_the_skybridge_copy_as_output_template(capsys, petstore_backend, widget_mapping):
    def skybridge(config: GatewayConfig) -> GatewayConfig:
        return replace(config, server=replace(config.server, widgets=WidgetOptions(skybridge=True)))

    with running_gateway(str(SPEC), f"{petstore_backend.url}/api", str(widget_mapping),
                         configure=skybridge) as (_, url):
        code, out = doctor(capsys, "--url", url)
    assert code == 0, "\n".join(out)
    copies = [line for line in lines(out, "ok", "widget ui://widget/list_pets-") if ".skybridge.html" in line]
    assert len(copies) == 1 and "text/html+skybridge" in copies[0]
    assert lines(out, "ok", "tool list_pets: shows")


def test_doctor_checks_sign_in_on_a_call_when_discovery_is_open(capsys, petstore_backend):
    """The petstore mapping has a public tool, so anyone may list the tools: the 401 is checked on a call."""
    with AuthServer(audience=RESOURCE) as auth, \
            running_gateway(str(SPEC), f"{petstore_backend.url}/api", str(MAPPING),
                            configure=signed_in(auth.url)) as (_, url):
        code, out = doctor(capsys, "--url", url)
    assert code == 0, "\n".join(out)
    assert lines(out, "ok", "securitySchemes: on every tool")
    assert lines(out, "ok", "401 challenge: calling list_pets without a token")  # the read-only one
    assert lines(out, "ok", f"resource metadata: authorization_servers {auth.url}")
    assert lines(out, "warn", "resource metadata: resource is 'https://gw.example/mcp'")  # checked on loopback
    # the test authorization server only issues tokens to machines: ChatGPT could not sign users in
    [server] = lines(out, "warn", "authorization server")
    assert "authorization_endpoint" in server and "S256" in server


def test_doctor_with_and_without_a_token_when_everything_needs_one(capsys, petstore_backend):
    with AuthServer(audience=RESOURCE) as auth, \
            running_gateway(str(SPEC), f"{petstore_backend.url}/api", configure=signed_in(auth.url)) as (_, url):
        code, out = doctor(capsys, "--url", url)
        assert code == 0, "\n".join(out)
        assert lines(out, "ok", "401 challenge: initialize without a token")
        assert lines(out, "warn", "tools: not checked")
        assert not lines(out, "ok", "tools")

        code, out = doctor(capsys, "--url", url, "--token", auth.issue(audience="https://other.example/mcp"))
        assert code == 1
        assert "is the token valid for this server?" in lines(out, "FAIL", "initialize")[0]

        code, out = doctor(capsys, "--url", url, "--token", auth.issue(scopes=["pets:read"]))
    assert code == 0, "\n".join(out)
    assert lines(out, "ok", "initialize") and lines(out, "ok", "securitySchemes")
    assert lines(out, "ok", "tool listPets: shows ui://")  # the default mapping: widgets from output schemas


def test_doctor_serves_a_config_in_process(capsys, petstore_backend, widget_mapping):
    code, out = doctor(capsys, "--spec", str(SPEC), "--mapping", str(widget_mapping),
                       "--upstream", f"{petstore_backend.url}/api")
    assert code == 0, "\n".join(out)
    assert lines(out, "warn", "public URL: checked in-process")
    assert lines(out, "ok", "endpoint: http://127.0.0.1:")
    assert lines(out, "ok", "widget ui://widget/list_pets-")


def test_doctor_judges_the_public_url_from_the_configured_resource(capsys, petstore_backend):
    with AuthServer(audience=RESOURCE) as auth:
        code, out = doctor(capsys, "--spec", str(SPEC), "--mapping", str(MAPPING),
                           "--upstream", f"{petstore_backend.url}/api", "--auth-issuer", auth.url,
                           "--resource-url", RESOURCE)
    assert code == 0, "\n".join(out)
    assert lines(out, "ok", f"public URL: {RESOURCE} is https")
    assert not lines(out, "warn", "resource metadata")  # the metadata names the configured public URL


def test_url_advice():
    assert url_advice("https://api.example.com/mcp").status == "ok"
    for url in ("http://api.example.com/mcp", "https://localhost/mcp", "https://10.1.2.3/mcp",
                "https://gateway/mcp", "http://[::1]:8080/mcp"):
        assert url_advice(url).status == "warn", url


# --- doctor against planted problems ---------------------------------------------------------------------------

WIDGET_HTML = "<!doctype html><html><head><title>w</title></head><body><p>hello</p></body></html>"
GOOD_META = {"ui": {"prefersBorder": True}, "openai/widgetCSP": {"connect_domains": [], "resource_domains": []},
             "openai/widgetPrefersBorder": True}


def broken_server() -> Starlette:
    """An MCP server (low-level SDK Server) whose tools point at widgets that are missing or misconfigured."""
    tools = {
        "missing_widget": {"ui": {"resourceUri": "ui://widget/missing.html"},
                           "openai/outputTemplate": "ui://widget/missing.html"},
        "wrong_mime": {"ui": {"resourceUri": "ui://widget/plain.html"}, "openai/outputTemplate": "ui://widget/plain.html"},
        "mismatched": {"ui": {"resourceUri": "ui://widget/good.html"}, "openai/outputTemplate": "ui://widget/cdn.html"},
        "chatty": {"ui": {"resourceUri": "ui://widget/good.html"}, "openai/outputTemplate": "ui://widget/good.html",
                   "openai/toolInvocation/invoking": "Looking at every pet in the store " * 2},  # 68 characters
        "fine": {"ui": {"resourceUri": "ui://widget/good.html"}, "openai/outputTemplate": "ui://widget/good.html"},
    }
    resources = {
        "ui://widget/plain.html": ("text/html", WIDGET_HTML, GOOD_META),
        "ui://widget/good.html": (MCP_APP_MIME, WIDGET_HTML, GOOD_META),
        "ui://widget/cdn.html": (MCP_APP_MIME, WIDGET_HTML.replace(
            "</head>", '<script src="https://cdn.example.com/chart.js"></script></head>'),
            {**GOOD_META, "openai/widgetCSP": {"connect_domains": "none", "resource_domains": []}}),
    }

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[types.Tool(name=name, input_schema={"type": "object"}, _meta=meta)
                                            for name, meta in tools.items()])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text="called")])

    async def list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[types.Resource(uri=uri, name=uri, mime_type=mime)
                                                    for uri, (mime, _, _) in resources.items()])

    async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        if params.uri not in resources:
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown resource: {params.uri}")
        mime, html, meta = resources[params.uri]
        return types.ReadResourceResult(contents=[types.TextResourceContents(uri=params.uri, mime_type=mime,
                                                                             text=html, _meta=meta)])

    server = Server("broken", on_list_tools=list_tools, on_call_tool=call_tool, on_list_resources=list_resources,
                    on_read_resource=read_resource)
    return server.streamable_http_app(stateless_http=True, json_response=True)


def test_doctor_fails_widgets_that_are_missing_or_misconfigured(capsys):
    with ServerThread(broken_server()) as server:
        code, out = doctor(capsys, "--url", f"{server.url}/mcp")
    assert code == 1
    assert "resources/read failed" in lines(out, "FAIL", "widget ui://widget/missing.html")[0]
    assert "MIME type 'text/html'" in lines(out, "FAIL", "widget ui://widget/plain.html")[0]
    [cdn] = lines(out, "FAIL", "widget ui://widget/cdn.html")
    assert "openai/widgetCSP must map" in cdn and "loads https://cdn.example.com/chart.js" in cdn
    assert "differs from ui.resourceUri" in lines(out, "FAIL", "tool mismatched")[0]
    assert "openai/toolInvocation/invoking must be a text of 1-64" in lines(out, "FAIL", "tool chatty")[0]
    assert lines(out, "ok", "widget ui://widget/good.html") and lines(out, "ok", "tool fine")
    assert out[-1].endswith("5 FAIL")


ASKING_HTML = WIDGET_HTML.replace("<p>hello</p>", '<p><a href="https://help.example.org/pets">Help</a></p>'
                                  '<script type="application/json" id="gateway-widget-config">'
                                  '{"displayModes":["inline","fullscreen"],"linkDomains":["https://docs.example.com"]}'
                                  "</script>")


def asking_server(meta: dict[str, Any]) -> Starlette:
    """An MCP server with one widget that asks for full screen and links to two origins, with `meta` as its _meta."""
    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        link = {"ui": {"resourceUri": "ui://widget/asks.html"}, "openai/outputTemplate": "ui://widget/asks.html"}
        return types.ListToolsResult(tools=[types.Tool(name="asks", input_schema={"type": "object"}, _meta=link)])

    async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        return types.ReadResourceResult(contents=[types.TextResourceContents(
            uri=params.uri, mime_type=MCP_APP_MIME, text=ASKING_HTML, _meta=meta)])

    server = Server("asking", on_list_tools=list_tools, on_read_resource=read_resource)
    return server.streamable_http_app(stateless_http=True, json_response=True)


def test_doctor_warns_of_display_modes_and_link_domains_the_meta_does_not_declare(capsys):
    with ServerThread(asking_server(GOOD_META)) as server:
        code, out = doctor(capsys, "--url", f"{server.url}/mcp")
    assert code == 0, "\n".join(out)  # the widget works: ChatGPT asks before opening, hosts refuse the mode
    [warning] = lines(out, "warn", "widget ui://widget/asks.html")
    assert "asks the host for display mode fullscreen, which its _meta does not declare" in warning
    assert "links to https://docs.example.com, https://help.example.org/pets, not in " \
           "openai/widgetCSP.redirect_domains" in warning

    declared = {**GOOD_META, "io.semantic-adapter-gateway/displayModes": ["inline", "fullscreen"],
                "openai/widgetCSP": {"connect_domains": [], "resource_domains": [],
                                     "redirect_domains": ["https://docs.example.com", "https://*.example.org"]}}
    with ServerThread(asking_server(declared)) as server:
        code, out = doctor(capsys, "--url", f"{server.url}/mcp")
    assert code == 0 and lines(out, "ok", "widget ui://widget/asks.html"), "\n".join(out)
    assert not lines(out, "warn", "widget ui://widget/asks.html")


def test_doctor_passes_the_gateways_own_declarations(capsys, petstore_backend, widget_mapping):
    def linked(config: GatewayConfig) -> GatewayConfig:
        widgets = WidgetOptions(link_domains=("https://docs.example.com",))
        return replace(config, server=replace(config.server, widgets=widgets))

    with running_gateway(str(SPEC), f"{petstore_backend.url}/api", str(widget_mapping), configure=linked) as (_, url):
        code, out = doctor(capsys, "--url", url)
    assert code == 0, "\n".join(out)
    assert lines(out, "ok", "widget ui://widget/list_pets-")  # asks for full screen and declares it
    assert not [line for line in out if "does not declare" in line or "redirect_domains" in line]


def test_doctor_fails_a_401_without_resource_metadata(capsys):
    async def refuse(request: Request) -> JSONResponse:
        return JSONResponse({"error": "unauthorized"}, status_code=401,
                            headers={"WWW-Authenticate": 'Bearer realm="gateway"'})

    with ServerThread(Starlette(routes=[Route("/mcp", refuse, methods=["POST"])])) as server:
        code, out = doctor(capsys, "--url", f"{server.url}/mcp")
    assert code == 1
    assert "no resource_metadata" in lines(out, "FAIL", "401 challenge")[0]


def test_doctor_fails_what_it_cannot_reach(capsys, petstore_backend):
    code, out = doctor(capsys, "--url", f"{petstore_backend.url}/nothing-here")
    assert code == 1 and "no MCP endpoint" in lines(out, "FAIL", "endpoint")[0]
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    code, out = doctor(capsys, "--url", f"http://127.0.0.1:{port}/mcp")
    assert code == 1 and "cannot reach" in lines(out, "FAIL", "endpoint")[0]


# --- preview, without a browser --------------------------------------------------------------------------------

def test_preview_page_is_served_only_in_preview_mode(petstore_backend):
    config = config_from_args(spec=str(SPEC), mapping=str(MAPPING), upstream=f"{petstore_backend.url}/api")
    gw = load_gateway(preview_config(config, 0))
    with ServerThread(create_app(gw)) as served:
        assert httpx2.get(f"{served.url}/preview").status_code == 404
    with ServerThread(create_preview_app(gw)) as preview:
        page = httpx2.get(f"{preview.url}/preview")
        assert httpx2.get(f"{preview.url}/healthz").status_code == 200  # still the whole gateway
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = dict(d.split(" ", 1) for d in page.headers["content-security-policy"].split("; "))
    assert policy["default-src"] == "'none'" and policy["connect-src"] == "'self'"
    assert policy["script-src"] == "'unsafe-inline'" and policy["img-src"] == "'self' data:"
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page.text)  # nothing loaded from elsewhere
    assert 'sandbox", "allow-scripts"' in page.text and "allow-same-origin" not in page.text


def test_preview_policy_allows_the_declared_widget_origins():
    options = WidgetOptions(connect_domains=("https://api.example.com",),
                            resource_domains=("https://*.cdn.example", "https://x.example; script-src *"))
    policy = dict(d.split(" ", 1) for d in page_csp(options).split("; "))
    assert policy["connect-src"] == "'self' https://api.example.com"
    assert policy["script-src"] == "'unsafe-inline' https://*.cdn.example"  # the injection attempt is dropped
    assert policy["img-src"] == "'self' data: https://*.cdn.example"
    assert policy["default-src"] == "'none'" and len(policy) == 9


def test_preview_listens_on_loopback_without_token_checks():
    config = config_from_args(spec=str(SPEC), host="0.0.0.0", auth_issuer="https://issuer.example",
                              resource_url=RESOURCE)
    config = replace(config, server=replace(config.server, allowed_hosts=("gw.example",)))
    local = preview_config(config, 8123)
    assert (local.server.host, local.server.port, local.server.allowed_hosts) == ("127.0.0.1", 8123, ())
    assert local.server.auth.mode == "none"
    assert config.server.auth.mode == "oauth"  # the loaded config itself is untouched


def test_preview_reports_a_port_in_use(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["preview", "--spec", str(SPEC), "--port", str(port)]) == 2
    assert f"127.0.0.1:{port}: cannot listen there" in capsys.readouterr().err


# --- preview in headless Chromium ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def preview_url(petstore_backend, widget_mapping) -> Iterator[str]:
    config = config_from_args(spec=str(SPEC), mapping=str(widget_mapping), upstream=f"{petstore_backend.url}/api")
    with ServerThread(create_preview_app(load_gateway(preview_config(config, 0)))) as server:
        yield f"{server.url}/preview"


class Preview:
    """The preview page in a fresh browser page, with every page error and console error recorded."""

    def __init__(self, page: Any, url: str) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("console", lambda m: self.problems.append(f"console: {m.text}") if m.type == "error" else None)
        page.goto(url)
        page.locator("#tools button").first.wait_for()

    @property
    def widget(self) -> Any:
        return self.page.frame_locator("#widget")

    def call(self, tool: str, mode: str = "mcp-apps", theme: str = "light", **fields: str) -> None:
        self.page.select_option("#mode", mode)
        self.page.select_option("#theme", theme)
        self.page.click(f"#tools button[data-tool={tool}]")
        for name, value in fields.items():
            field = self.page.locator(f"#arg-{name}")
            if field.evaluate("e => e.tagName") == "SELECT":
                field.select_option(label=value)
            else:
                field.fill(value)
        self.page.click("#call")

    def log(self, kind: str) -> list[str]:
        """The texts of the event log's entries of one kind, once at least one is there."""
        entries = self.page.locator(f"#log li[data-kind='{kind}']")
        entries.first.wait_for()
        return [text.removeprefix(kind).strip() for text in entries.all_inner_texts()]

    def kinds(self) -> list[str]:
        return self.page.locator("#log li").evaluate_all("items => items.map(i => i.dataset.kind)")

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path


@contextlib.contextmanager
def preview_page(browser: Any, url: str) -> Iterator[Preview]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield Preview(context.new_page(), url)
    finally:
        context.close()


@pytest.mark.parametrize("mode", ["mcp-apps", "openai"])
def test_preview_hosts_the_table_widget(browser, preview_url, mode):
    with preview_page(browser, preview_url) as preview:
        preview.call("list_pets", mode=mode)
        rows = preview.widget.locator("table tbody tr")
        rows.first.wait_for()
        assert rows.count() == 4
        assert preview.page.locator("#widget").get_attribute("sandbox") == "allow-scripts"
        assert '"name": "Rex"' in preview.page.locator("#result").inner_text()  # the raw result

        rows.nth(1).get_by_role("cell", name="Tom", exact=True).click()  # the row action: get_pet, the id an integer
        assert preview.log("tools/call") == ['get_pet {"petId":2}']
        assert preview.log("result")[0].startswith("get_pet:")
        detail = preview.widget.get_by_role("region", name="Details")
        detail.get_by_text("cat", exact=True).wait_for()  # the pet's tag: only get_pet's answer has it
        assert "Tom" in detail.inner_text()

        preview.widget.get_by_role("button", name="Ask about Polly").click()
        assert preview.log("follow-up") == ["Tell me more about the pet Polly (id 4)."]

        bridge = preview.page.frames[1].evaluate("typeof window.openai")
        if mode == "openai":
            assert bridge == "object" and "initialize" not in preview.kinds()  # only window.openai was spoken
        else:
            assert bridge == "undefined" and preview.kinds().count("initialize") == 1
        height = preview.page.locator("#widget").evaluate("e => e.getBoundingClientRect().height")
        assert height > 250  # sized to the content (the default is 120px)
        path = preview.screenshot(f"table-{mode}.png")
        assert path.stat().st_size > 10_000
        assert preview.problems == []


@pytest.mark.parametrize("mode", ["mcp-apps", "openai"])
def test_preview_hosts_the_card_and_list_widgets(browser, preview_url, mode):
    with preview_page(browser, preview_url) as preview:
        preview.call("get_inventory", mode=mode)
        preview.widget.get_by_text("available").wait_for()  # a card of the inventory object
        preview.screenshot(f"card-{mode}.png")
        preview.call("list_tags", mode=mode)
        items = preview.widget.locator("li")
        items.first.wait_for()
        assert items.all_inner_texts() == ["bird", "cat", "dog", "fish"]  # the backend's tags, as a list
        preview.screenshot(f"list-{mode}.png")
        assert preview.problems == []


@pytest.mark.parametrize("mode", ["mcp-apps", "openai"])
def test_preview_switches_the_widget_theme(browser, preview_url, mode):
    with preview_page(browser, preview_url) as preview:
        preview.call("get_pet", mode=mode, petId="3")
        preview.widget.get_by_text("Nemo").wait_for()
        root = preview.widget.locator("html")
        assert root.get_attribute("data-theme") == "light"
        preview.page.select_option("#theme", "dark")
        assert preview.page.locator("#widget").evaluate("e => e.contentDocument") is None  # sandboxed, opaque origin
        frame = preview.page.frames[1]
        frame.wait_for_function("() => document.documentElement.dataset.theme === 'dark'")
        preview.screenshot(f"card-{mode}-dark.png")
        assert preview.problems == []


def test_preview_form_sends_typed_arguments(browser, preview_url):
    with preview_page(browser, preview_url) as preview:
        preview.call("list_pets", limit="5", status="available", tags="dog")
        preview.widget.locator("table tbody tr").first.wait_for()
        assert preview.log("call") == ['list_pets {"limit":5,"status":"available","tags":["dog"]}']
        names = preview.widget.locator("table tbody tr td:nth-child(2)").all_inner_texts()
        assert names == ["Rex"]
        preview.call("get_pet", petId="1.5")
        assert preview.page.locator("#form-error").inner_text() == "petId: 1.5 is not an integer"
        assert preview.problems == []


@pytest.fixture(scope="module")
def paged_preview_url(petstore_backend, tmp_path_factory) -> Iterator[str]:
    """The preview of a petstore whose list_pets table shows 2 rows a page: a big table, which offers full screen."""
    mapping = yaml.safe_load(MAPPING.read_text(encoding="utf-8"))
    mapping["tools"]["listPets"]["widget"] = {"columns": ["id", "name", "status"], "page_size": 2}
    path = tmp_path_factory.mktemp("paged") / "mapping.yaml"
    path.write_text(yaml.safe_dump(mapping), encoding="utf-8")
    config = config_from_args(spec=str(SPEC), mapping=str(path), upstream=f"{petstore_backend.url}/api")
    with ServerThread(create_preview_app(load_gateway(preview_config(config, 0)))) as server:
        yield f"{server.url}/preview"


@pytest.mark.parametrize("mode", ["mcp-apps", "openai"])
def test_preview_shows_the_widget_state_and_display_mode_requests(browser, paged_preview_url, mode):
    with preview_page(browser, paged_preview_url) as preview:
        preview.call("list_pets", mode=mode)
        widget = preview.widget
        widget.locator("table tbody tr").first.wait_for()
        assert preview.page.locator("#widget-state").inner_text() != ""
        widget.get_by_role("button", name="name").click()
        widget.get_by_role("button", name="Next").click()
        names = widget.locator("table tbody tr td:nth-child(2)")
        second_page = names.all_inner_texts()
        kind = "widget-state" if mode == "openai" else "model-context"
        preview.page.wait_for_function(f"() => document.querySelectorAll(\"#log li[data-kind='{kind}']\").length >= 2")
        line = preview.log(kind)[-1]
        assert line == "List pets: rows 3\u20134 of 4 (page 2 of 2), sorted by name (ascending).", line
        held = preview.page.locator("#widget-state").inner_text()
        if mode == "openai":
            assert held.startswith("window.openai.widgetState = {") and '"modelContent": "List pets: rows 3' in held
        else:
            assert held.startswith("ui/update-model-context: {") and '"text": "List pets: rows 3' in held

        widget.get_by_role("button", name="Full screen").click()
        assert preview.log("display-mode") == ["fullscreen requested: granted"]
        widget.get_by_role("button", name="Exit full screen").wait_for()  # the widget heard the new mode
        assert preview.page.locator("#widget-box").get_attribute("class") == "fullscreen"
        box = preview.page.locator("#widget").bounding_box()
        assert box is not None and box["height"] > 800  # the frame fills the window
        preview.screenshot(f"table-{mode}-fullscreen.png")
        widget.get_by_role("button", name="Exit full screen").click()
        assert preview.log("display-mode") == ["fullscreen requested: granted", "inline requested: granted"]
        widget.get_by_role("button", name="Full screen").wait_for()
        assert preview.page.locator("#widget-box").get_attribute("class") == ""

        preview.page.click("#rerender")
        widget.locator("table tbody tr").first.wait_for()
        if mode == "openai":  # the host gave the state back: the sorted second page again
            assert preview.log("re-render")[0].startswith("widgetState given back: {")
            widget.get_by_text("3\u20134 of 4").wait_for()
            assert names.all_inner_texts() == second_page
        else:  # no storage in the preview's opaque frame: a fresh view
            widget.get_by_text("1\u20132 of 4").wait_for()
        assert preview.problems == []


def test_preview_uploads_a_file_and_hands_it_to_the_tool_by_url(browser, tmp_path):
    from tests.test_files import IMAGE, UPLOAD_SPEC, Recorder

    recorder = Recorder()
    spec = tmp_path / "uploads.yaml"
    spec.write_text(UPLOAD_SPEC, encoding="utf-8")
    image = tmp_path / "cat.png"
    image.write_bytes(IMAGE)
    with ServerThread(recorder.app()) as upstream:
        config = config_from_args(spec=str(spec), upstream=upstream.url)
        with ServerThread(create_preview_app(load_gateway(preview_config(config, 0)))) as server, \
                preview_page(browser, f"{server.url}/preview") as preview:
            preview.page.click("#tools button[data-tool=upload_photo]")
            preview.page.set_input_files("#arg-image", str(image))
            preview.page.click("#call")
            [uploaded] = preview.log("file")
            preview.page.locator("#result").filter(has_text="stored").wait_for()
            assert preview.problems == []
    assert uploaded.startswith("cat.png (") and f"{server.url}/preview/files/" in uploaded
    content_type, body = recorder.bodies[0]
    assert IMAGE in body and content_type.startswith("multipart/form-data")
