"""`gateway doctor`: does a gateway give ChatGPT what it needs to show the app and its widgets?

ChatGPT reaches an MCP server at an https URL from the internet, initializes over Streamable HTTP, lists the
tools, reads each widget's `ui://` resource and renders it under the CSP the resource declares; with sign-in
it follows the 401's `resource_metadata` to the authorization server. The doctor walks the same path with
the MCP SDK's `Client`, and with raw HTTP where the SDK hides what matters (status codes, challenges), and
reports one `Check` per finding: ok, warn (works, but worth a look) or FAIL (ChatGPT will not show it).

The expectations are written here from the specifications (MCP Apps SEP-1865, the Apps SDK keys, RFC 9728),
not imported from the code that serves widgets, so the doctor also catches that code's mistakes.
"""

from __future__ import annotations

import contextlib
import fnmatch
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

import gateway
from gateway.auth.inbound import metadata_urls
from gateway.config import GatewayConfig
from gateway.local import loopback, serve_local
from gateway.runtime import load_gateway
from gateway.server import create_app

Status = Literal["ok", "warn", "FAIL"]
MCP_APP_MIME = "text/html;profile=mcp-app"
SKYBRIDGE_MIME = "text/html+skybridge"
STATUS_TEXT_MAX = 64  # ChatGPT's limit for openai/toolInvocation/invoking and /invoked
LEGACY_VERSION = "2025-11-25"  # the handshake-era protocol ChatGPT speaks
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what ChatGPT's model accepts as a function name
_EXTERNAL_LOAD = re.compile(
    r"<(?:script|img|link|source|video|audio)\b[^>]*?\b(?:src|href)\s*=\s*[\"']?((?:https?:)?//[^\"'\s>]+)",
    re.IGNORECASE)
_CHALLENGE_PARAM = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_WIDGET_CONFIG = re.compile(r'<script\b[^>]*\bid\s*=\s*["\']gateway-widget-config["\'][^>]*>(.*?)</script', re.I | re.S)
_STATIC_LINK = re.compile(r"<a\b[^>]*?\bhref\s*=\s*[\"']?(https?://[^\"'\s>]+)", re.IGNORECASE)
DISPLAY_MODES_META = "io.semantic-adapter-gateway/displayModes"  # the gateway's declaration (MCP Apps has none)
_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": LEGACY_VERSION}


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: `subject` is what was checked, `detail` what was found and, unless ok, what to change."""

    status: Status
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.status:<4}  {self.subject}: {self.detail}"


def exit_code(checks: Iterable[Check]) -> int:
    """1 when any check failed, else 0 (warnings do not fail: the app works, with caveats)."""
    return 1 if any(c.status == "FAIL" for c in checks) else 0


def url_advice(url: str) -> Check:
    """ChatGPT connects from OpenAI's servers: the URL must be https and its host reachable from the internet."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    problems = []
    if parts.scheme != "https":
        problems.append("ChatGPT connects only to https URLs: serve the gateway behind TLS (a reverse proxy or a "
                        "tunnel) and run the doctor against that URL")
    if _local_host(host):
        problems.append(f"{host} is not reachable from the internet, where ChatGPT connects from")
    if problems:
        return Check("warn", "public URL", f"{url}: " + "; ".join(problems))
    return Check("ok", "public URL", f"{url} is https on a public host name")


def _local_host(host: str) -> bool:
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host  # a bare machine name
    return not address.is_global


async def diagnose(url: str, *, token: str | None = None, public_url: str | None = None) -> list[Check]:
    """Check the MCP endpoint at `url` (a running server). `token` is sent as the bearer token where one is
    needed; `public_url` is the URL ChatGPT is given, when the check runs elsewhere (the metadata's `resource`
    must name it)."""
    doctor = _Doctor(url, token, public_url or url)
    async with httpx2.AsyncClient(timeout=30, follow_redirects=False) as http:
        await doctor.run(http)
    return doctor.checks


async def diagnose_config(config: GatewayConfig, *, token: str | None = None) -> list[Check]:
    """Load `config`, serve it in-process on a free loopback port and check that, before it is deployed.

    The https advice is judged against the configured public URL (`server.auth.resource_url`) when there is one.
    """
    public = config.server.auth.resource_url
    gw = load_gateway(loopback(config))
    async with serve_local(create_app(gw)) as local:
        found = await diagnose(f"{local.url}{config.server.path}", token=token, public_url=public)
    found = [*found, *_file_checks(config, gw)]
    if public is not None:
        return [url_advice(public), *found]
    advice = Check("warn", "public URL", "checked in-process on loopback; once deployed, run `gateway doctor --url "
                   "https://<public host>/mcp` to check what ChatGPT will reach")
    return [advice, *found]


def _file_checks(config: GatewayConfig, gw: Any) -> list[Check]:
    """The file downloads' allow-list (`server.files`), judged against the tools that take files."""
    files = config.server.files
    takers = [t.name for t in gw.tools.values() if t.file_params]
    if not files.enabled:
        if takers:
            return [Check("warn", "files", f"{len(takers)} tools take files, but server.files.allowed_hosts is empty: "
                          "ChatGPT cannot hand them files from the chat (clients can still send base64)")]
        return []
    checks = [Check("ok", "files", f"downloads from {', '.join(files.allowed_hosts)} for {len(takers)} tools")]
    if files.allow_loopback:
        checks.append(Check("warn", "files", "allow_loopback is on: meant for local trials, not a deployment"))
    if any(host.strip("*.") in ("", "com", "net", "org") for host in files.allowed_hosts):
        checks.append(Check("warn", "files", "an allowed host matches far too much; list the file host itself"))
    return checks


def _takes_file_reference(schema: Any) -> bool:
    branches = schema.get("anyOf", []) if isinstance(schema, Mapping) else []
    return any(isinstance(b, Mapping) and "download_url" in b.get("properties", {}) for b in branches)


@dataclass(frozen=True, slots=True)
class _Widget:
    """What `resources/read` gave for one widget URI (`error` set when the read failed)."""

    uri: str
    mime: str | None = None
    html: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None


class _Doctor:
    """One run of the checks against one endpoint; collects the findings in order."""

    def __init__(self, url: str, token: str | None, public_url: str) -> None:
        self.url = url
        self.token = token
        self.public_url = public_url
        self.checks: list[Check] = []
        self.challenged = False

    def _add(self, status: Status, subject: str, detail: str) -> None:
        self.checks.append(Check(status, subject, detail))

    async def run(self, http: httpx2.AsyncClient) -> None:
        initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                      "params": {"protocolVersion": LEGACY_VERSION, "capabilities": {},
                                 "clientInfo": {"name": "gateway-doctor", "version": gateway.__version__}}}
        try:
            response = await http.post(self.url, json=initialize, headers=_HEADERS)
        except httpx2.HTTPError as exc:
            self._add("FAIL", "endpoint", f"cannot reach {self.url}: {exc!r}; is the gateway running there?")
            return
        if response.status_code == 401:
            await self._check_challenge(http, response, "initialize")
            if not self.token:
                self._add("warn", "tools", "not checked: the server asks for a token; pass --token with one it "
                          "accepts to check the tools and widgets")
                return
        elif not self._reachable(response):
            return
        auth = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with httpx2.AsyncClient(headers=auth, timeout=30) as session_http:
            await self._discover(session_http)
            async with contextlib.AsyncExitStack() as stack:
                try:
                    client = await stack.enter_async_context(
                        Client(streamable_http_client(self.url, http_client=session_http), mode="legacy"))
                except Exception as exc:  # the SDK raises transport, protocol and validation errors alike
                    hint = " (is the token valid for this server?)" if self.challenged else ""
                    self._add("FAIL", "initialize", f"the MCP handshake failed{hint}: {_reason(exc)}")
                    return
                info = client.server_info
                name = f"{info.name} {info.version}" if info else "(unnamed server)"
                self._add("ok", "initialize", f"{name}, protocol {client.protocol_version}")
                tools = await self._tools(client)
                if not tools:
                    return
                await self._check_auth(http, tools)
                await self._check_widgets(client, tools)

    def _reachable(self, response: httpx2.Response) -> bool:
        status = response.status_code
        if status == 200:
            self._add("ok", "endpoint", f"{self.url} answers MCP requests")
            return True
        if status == 421:
            host = urlsplit(self.url).netloc
            fix = f"the server refuses the Host {host!r}: add it to server.allowed_hosts"
        elif status in (404, 405):
            fix = (f"no MCP endpoint at {self.url} (HTTP {status}): check the path (the gateway serves "
                   "server.path, default /mcp)")
        else:
            fix = f"initialize answered HTTP {status}: {response.text[:200]!r}"
        self._add("FAIL", "endpoint", fix)
        return False

    async def _discover(self, http: httpx2.AsyncClient) -> None:
        """The 2026 protocol's `server/discover` is optional for ChatGPT (it initializes): reported, never failed."""
        try:
            async with Client(streamable_http_client(self.url, http_client=http), mode="auto") as client:
                version = client.protocol_version
        except Exception as exc:  # the SDK raises transport, protocol and validation errors alike
            self._add("warn", "discover", f"connecting as a 2026-era client failed: {_reason(exc)}")
            return
        if version in MODERN_PROTOCOL_VERSIONS:
            self._add("ok", "discover", f"protocol {version}")
        else:
            self._add("ok", "discover", f"not offered; clients use initialize ({version})")

    async def _tools(self, client: Client) -> list[types.Tool]:
        tools: list[types.Tool] = []
        cursor = None
        try:
            while True:
                page = await client.list_tools(cursor=cursor)
                tools.extend(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    break
        except Exception as exc:  # an MCP error answer, or a listing the SDK refused
            self._add("FAIL", "tools", f"tools/list failed: {_reason(exc)}")
            return []
        if not tools:
            self._add("FAIL", "tools", "none listed: ChatGPT has nothing to call (check the mapping's `select`)")
            return tools
        self._add("ok", "tools", f"{len(tools)} listed")
        odd = [t.name for t in tools if not _TOOL_NAME.fullmatch(t.name)]
        if odd:
            self._add("warn", "tool names", f"{', '.join(odd)}: ChatGPT's model takes names of 1-64 letters, digits, "
                      "'_' and '-'; rename them in the mapping")
        self._check_file_params(tools)
        return tools

    def _check_file_params(self, tools: list[types.Tool]) -> None:
        """`openai/fileParams` must name top-level arguments that take ChatGPT's `{download_url, file_id}`."""
        for tool in tools:
            names = (tool.meta or {}).get("openai/fileParams")
            if names is None:
                continue
            properties = tool.input_schema.get("properties", {})
            wrong = [n for n in names if not _takes_file_reference(properties.get(n))] \
                if isinstance(names, list) else names
            if wrong:
                self._add("FAIL", f"{tool.name} fileParams", f"{wrong} are not top-level arguments that take "
                          "{download_url, file_id}: ChatGPT could not hand the tool a file")
            else:
                self._add("ok", f"{tool.name} fileParams", f"files from the chat go to {', '.join(names)}")

    # -- sign-in ----------------------------------------------------------------------------------------------

    async def _check_auth(self, http: httpx2.AsyncClient, tools: list[types.Tool]) -> None:
        schemes = {t.name: (t.meta or {}).get("securitySchemes") for t in tools}
        signed = [name for name, s in schemes.items() if isinstance(s, list)
                  and any(isinstance(x, dict) and x.get("type") == "oauth2" for x in s)]
        if not (self.challenged or signed):
            self._add("warn", "sign-in", "off: anyone who reaches the URL can call every tool; a public deployment "
                      "should check tokens (server.auth, see the README)")
            return
        missing = [name for name, s in schemes.items() if not isinstance(s, list)]
        if missing:
            self._add("warn", "securitySchemes", f"missing on {', '.join(missing)}: ChatGPT reads them to know "
                      "which tools need the user signed in")
        else:
            self._add("ok", "securitySchemes", f"on every tool ({len(signed)} need sign-in)")
        if not self.challenged and signed:
            await self._probe_tool_call(http, tools, signed)

    async def _probe_tool_call(self, http: httpx2.AsyncClient, tools: list[types.Tool], signed: list[str]) -> None:
        """Discovery is open (some tools are public), so the 401 is checked on a call that needs sign-in. The guard
        answers before the tool runs; a read-only tool is chosen all the same, in case it does not."""
        read_only = [t.name for t in tools if t.name in signed and t.annotations and t.annotations.read_only_hint]
        name = (read_only or signed)[0]
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": {}}}
        try:
            response = await http.post(self.url, json=call, headers=_HEADERS)
        except httpx2.HTTPError as exc:
            self._add("FAIL", "401 challenge", f"calling {name} without a token: {exc!r}")
            return
        if response.status_code == 401:
            await self._check_challenge(http, response, f"calling {name}")
        else:
            self._add("FAIL", "401 challenge", f"{name} declares oauth2 but a call without a token got HTTP "
                      f"{response.status_code}, not 401: ChatGPT never offers sign-in for it")

    async def _check_challenge(self, http: httpx2.AsyncClient, response: httpx2.Response, what: str) -> None:
        self.challenged = True
        header = response.headers.get("www-authenticate", "")
        if not header.lower().startswith("bearer"):
            self._add("FAIL", "401 challenge", f"{what} without a token: 401 without `WWW-Authenticate: Bearer "
                      "...`: ChatGPT cannot start sign-in")
            return
        params = {k.lower(): re.sub(r"\\(.)", r"\1", v) for k, v in _CHALLENGE_PARAM.findall(header)}
        metadata = params.get("resource_metadata")
        if not metadata:
            self._add("FAIL", "401 challenge", f"{what} without a token: the challenge has no resource_metadata, so "
                      "ChatGPT cannot find the authorization server (RFC 9728 §5.1)")
            return
        self._add("ok", "401 challenge", f"{what} without a token: 401 with resource_metadata {metadata}")
        document = await self._resource_metadata(http, metadata)
        if document is None:
            return
        servers = document.get("authorization_servers")
        if not (isinstance(servers, list) and servers and all(isinstance(s, str) for s in servers)):
            self._add("FAIL", "resource metadata", f"{metadata} lists no authorization_servers: ChatGPT cannot "
                      "sign users in (set server.auth.issuer)")
            return
        self._add("ok", "resource metadata", f"authorization_servers {', '.join(servers)}")
        resource = document.get("resource")
        if resource != self.public_url:
            self._add("warn", "resource metadata", f"resource is {resource!r}, not {self.public_url}: tokens are "
                      "issued for the resource, so give ChatGPT exactly that URL (server.auth.resource_url)")
        await self._check_authorization_server(http, servers[0])

    async def _resource_metadata(self, http: httpx2.AsyncClient, url: str) -> dict[str, Any] | None:
        """The RFC 9728 document. It names the public URL, which a check of an internal URL (behind the proxy, or
        in-process) may not reach: then the same path is read from the checked server, with a warning."""
        document, error = await _get_json(http, url)
        if document is not None:
            return document
        here = urlsplit(self.url)
        local = urlsplit(url)._replace(scheme=here.scheme, netloc=here.netloc).geturl()
        if local != url and (found := (await _get_json(http, local))[0]) is not None:
            if self.public_url == self.url:  # else the check runs off the public URL on purpose (in-process)
                self._add("warn", "resource metadata", f"{url} is not reachable from here ({error}), read {local} "
                          "instead: check that the public one answers")
            return found
        self._add("FAIL", "resource metadata", f"{url}: {error}; ChatGPT reads it to find the authorization server")
        return None

    async def _check_authorization_server(self, http: httpx2.AsyncClient, issuer: str) -> None:
        """What ChatGPT's sign-in needs from the authorization server; not the gateway's doing, so only warned."""
        for url in metadata_urls(issuer):
            document, _ = await _get_json(http, url)
            if document is not None:
                break
        else:
            self._add("warn", "authorization server", f"no metadata found for {issuer} (RFC 8414 / OpenID "
                      "discovery): ChatGPT finds the sign-in endpoints there")
            return
        missing = []
        if not document.get("authorization_endpoint"):
            missing.append("no authorization_endpoint (ChatGPT signs users in with the authorization code flow)")
        if "S256" not in (document.get("code_challenge_methods_supported") or []):
            missing.append("PKCE S256 not in code_challenge_methods_supported")
        if not (document.get("registration_endpoint") or document.get("client_id_metadata_document_supported")):
            missing.append("neither dynamic client registration nor client ID metadata documents, so ChatGPT's "
                           "client must be registered by hand")
        if missing:
            self._add("warn", "authorization server", f"{issuer}: " + "; ".join(missing))
        else:
            self._add("ok", "authorization server", f"{issuer} supports ChatGPT's sign-in")

    # -- widgets ----------------------------------------------------------------------------------------------

    async def _check_widgets(self, client: Client, tools: list[types.Tool]) -> None:
        links = {t.name: _links(t.meta or {}) for t in tools}
        uris = list(dict.fromkeys(uri for pair in links.values() for uri in pair if isinstance(uri, str)))
        if not uris:
            self._add("warn", "widgets", "no tool names a widget (_meta.ui.resourceUri): ChatGPT shows text only")
            return
        listed = await self._listed_resources(client)
        widgets = {uri: await _read(client, uri) for uri in uris}
        for widget in widgets.values():
            self._judge_widget(widget, listed)
        shared = [w.uri for w in widgets.values() if w.error is None and not _domains(w.meta)]
        if shared:  # one setting for all widgets, so one line
            self._add("warn", "widget domain", f"none on {len(shared)} of {len(widgets)} widgets: ChatGPT renders "
                      "them on a shared sandbox origin; set server.widgets.domain before submitting the app")
        for tool in tools:
            if any(links[tool.name]):
                self._judge_tool(tool, links[tool.name], widgets)

    async def _listed_resources(self, client: Client) -> set[str] | None:
        with contextlib.suppress(Exception):  # resources/list is optional for widgets (SEP-1865)
            listed: set[str] = set()
            cursor = None
            while True:
                page = await client.list_resources(cursor=cursor)
                listed.update(str(r.uri) for r in page.resources)
                cursor = page.next_cursor
                if not cursor:
                    return listed
        return None

    def _judge_widget(self, widget: _Widget, listed: set[str] | None) -> None:
        subject = f"widget {widget.uri}"
        if widget.error is not None:
            self._add("FAIL", subject, f"resources/read failed ({widget.error}): a tool points at a widget the "
                      "server does not serve")
            return
        fails, warns = _widget_problems(widget)
        if listed is not None and widget.uri not in listed:
            warns.append("not in resources/list (hosts that prefetch widgets will not find it)")
        if fails:
            self._add("FAIL", subject, "; ".join(fails))
        if warns:
            self._add("warn", subject, "; ".join(warns))
        if not (fails or warns):
            self._add("ok", subject, f"{widget.mime}, {len(widget.html.encode()) / 1024:.1f} kB, CSP declared")

    def _judge_tool(self, tool: types.Tool, link: tuple[Any, Any], widgets: Mapping[str, _Widget]) -> None:
        subject = f"tool {tool.name}"
        uri, template = link
        meta = tool.meta or {}
        fails: list[str] = []
        warns: list[str] = []
        for key, value in (("_meta.ui.resourceUri", uri), ("openai/outputTemplate", template)):
            if value is not None and not (isinstance(value, str) and value.startswith("ui://")):
                fails.append(f"{key} is {value!r}, not a ui:// URI")
        if uri is None:
            warns.append("only openai/outputTemplate is set; MCP Apps hosts need _meta.ui.resourceUri")
        elif template is None:
            warns.append("no openai/outputTemplate; older ChatGPT clients read it (same URI as ui.resourceUri)")
        elif uri != template and isinstance(template, str) and widgets[template].mime != SKYBRIDGE_MIME:
            fails.append(f"openai/outputTemplate {template} differs from ui.resourceUri {uri}; give both the same "
                         "URI (or the skybridge copy of the same widget)")
        for key in ("openai/toolInvocation/invoking", "openai/toolInvocation/invoked"):
            text = meta.get(key)
            if text is not None and not (isinstance(text, str) and 0 < len(text) <= STATUS_TEXT_MAX):
                fails.append(f"{key} must be a text of 1-{STATUS_TEXT_MAX} characters, got {len(str(text))}: "
                             "shorten it in the mapping (`invoking` / `invoked`)")
        if fails:
            self._add("FAIL", subject, "; ".join(fails))
        if warns:
            self._add("warn", subject, "; ".join(warns))
        if not (fails or warns):
            self._add("ok", subject, f"shows {uri}")


async def _get_json(http: httpx2.AsyncClient, url: str) -> tuple[dict[str, Any] | None, str]:
    """(the JSON object at `url`, "") or (None, what went wrong)."""
    try:
        response = await http.get(url)
    except httpx2.HTTPError as exc:
        return None, repr(exc)
    try:
        document = response.json() if response.status_code == 200 else None
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return None, f"HTTP {response.status_code} without a JSON object"
    return document, ""


def _links(meta: Mapping[str, Any]) -> tuple[Any, Any]:
    """(the MCP Apps resource URI, the Apps SDK output template) a tool's `_meta` names; None where absent."""
    ui = meta.get("ui")
    uri = ui.get("resourceUri") if isinstance(ui, dict) else None
    return uri if uri is not None else meta.get("ui/resourceUri"), meta.get("openai/outputTemplate")


async def _read(client: Client, uri: str) -> _Widget:
    try:
        result = await client.read_resource(uri)
    except Exception as exc:  # an MCP error answer, or a result the SDK refused
        return _Widget(uri, error=_reason(exc))
    match = [c for c in result.contents if str(c.uri) == uri] or list(result.contents)
    if not match:
        return _Widget(uri, error="no contents")
    content = match[0]
    text = content.text if isinstance(content, types.TextResourceContents) else ""
    return _Widget(uri, mime=content.mime_type, html=text, meta=content.meta or {})


def _widget_problems(widget: _Widget) -> tuple[list[str], list[str]]:
    """(what breaks the widget in ChatGPT, what is worth a look) for one read widget resource."""
    fails: list[str] = []
    warns: list[str] = []
    if widget.mime not in (MCP_APP_MIME, SKYBRIDGE_MIME):
        fails.append(f"MIME type {widget.mime!r}: hosts render only {MCP_APP_MIME} (or ChatGPT's {SKYBRIDGE_MIME})")
    if not widget.html.strip():
        fails.append("no HTML text")
    elif "<html" not in widget.html.lower():
        warns.append("not a full HTML document (<html> missing)")
    meta = widget.meta
    ui = meta.get("ui", {})
    if not isinstance(ui, dict):
        return [*fails, f"_meta.ui is {type(ui).__name__}, not an object"], warns
    csp, openai_csp = ui.get("csp"), meta.get("openai/widgetCSP")
    if csp is not None and not _domain_lists(csp, ("connectDomains", "resourceDomains", "frameDomains",
                                                   "baseUriDomains")):
        fails.append("_meta.ui.csp must map connectDomains/resourceDomains/... to lists of origins")
        csp = None
    if openai_csp is not None and not _domain_lists(openai_csp, ("connect_domains", "resource_domains",
                                                                 "frame_domains", "redirect_domains")):
        fails.append("openai/widgetCSP must map connect_domains/resource_domains to lists of origins")
        openai_csp = None
    if openai_csp is None:
        warns.append("no openai/widgetCSP: ChatGPT wants a declared CSP before an app is published "
                      '({"connect_domains": [], "resource_domains": []} declares no network)')
    allowed = [*(csp or {}).get("resourceDomains", []), *(openai_csp or {}).get("resource_domains", [])]
    blocked = sorted({src for src in _EXTERNAL_LOAD.findall(widget.html) if not _allowed(src, allowed)})
    if blocked:
        fails.append(f"loads {', '.join(blocked)}, which its CSP does not allow (resourceDomains): hosts block it")
    for key, value in (("ui.prefersBorder", ui.get("prefersBorder")),
                       ("openai/widgetPrefersBorder", meta.get("openai/widgetPrefersBorder"))):
        if value is not None and not isinstance(value, bool):
            fails.append(f"{key} must be true or false, not {value!r}")
    if ui.get("prefersBorder") is None and meta.get("openai/widgetPrefersBorder") is None:
        warns.append("no prefersBorder: hosts' defaults differ, say true or false")
    warns.extend(_undeclared_asks(widget, openai_csp))
    domains = _domains(meta)
    if any(not isinstance(value, str) or not value for value in domains.values()):
        fails.append("ui.domain / openai/widgetDomain must be a non-empty text")
    elif len(set(domains.values())) > 1:
        warns.append(f"ui.domain and openai/widgetDomain differ ({', '.join(map(str, domains.values()))})")
    return fails, warns


def _undeclared_asks(widget: _Widget, openai_csp: Mapping[str, Any] | None) -> list[str]:
    """Display modes and link domains the widget asks for that its `_meta` does not declare.

    What a gateway widget asks for is in its config (`#gateway-widget-config`: `displayModes`,
    `linkDomains`); links written into the HTML (`<a href="https://...">`) count too. Link domains are
    declared in `openai/widgetCSP.redirect_domains` (else ChatGPT asks the user before opening each link),
    display modes beyond inline in `io.semantic-adapter-gateway/displayModes`."""
    found: list[str] = []
    config: Any = {}
    if match := _WIDGET_CONFIG.search(widget.html):
        with contextlib.suppress(ValueError):
            config = json.loads(match.group(1))
    config = config if isinstance(config, dict) else {}
    asked_modes = [m for m in config.get("displayModes") or [] if isinstance(m, str) and m != "inline"]
    declared_modes = widget.meta.get(DISPLAY_MODES_META)
    declared_modes = declared_modes if isinstance(declared_modes, list) else []
    missing_modes = [mode for mode in asked_modes if mode not in declared_modes]
    if missing_modes:
        found.append(f"asks the host for display mode {', '.join(missing_modes)}, which its _meta does not declare "
                     f"({DISPLAY_MODES_META}); rebuild it with the gateway or drop the request")
    redirects = list((openai_csp or {}).get("redirect_domains", []))
    asked_links = [d for d in config.get("linkDomains") or [] if isinstance(d, str)]
    asked_links += _STATIC_LINK.findall(widget.html)
    undeclared = sorted({link for link in asked_links if not _allowed(link, redirects)})
    if undeclared:
        found.append(f"links to {', '.join(undeclared)}, not in openai/widgetCSP.redirect_domains: ChatGPT asks the "
                     "user before opening them (list them in server.widgets.link_domains)")
    return found


def _domains(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The dedicated origin a widget asks for, by key (MCP Apps and Apps SDK); empty when it asks for none."""
    ui = meta.get("ui")
    pairs = (("ui.domain", ui.get("domain") if isinstance(ui, dict) else None),
             ("openai/widgetDomain", meta.get("openai/widgetDomain")))
    return {key: value for key, value in pairs if value is not None}


def _domain_lists(csp: Any, keys: tuple[str, ...]) -> bool:
    return isinstance(csp, dict) and all(
        isinstance(csp.get(key, []), list) and all(isinstance(d, str) for d in csp.get(key, [])) for key in keys)


def _allowed(src: str, domains: Iterable[str]) -> bool:
    """Whether a CSP source list (origins, `*.` wildcards allowed) lets the page load `src`."""
    host = urlsplit("https:" + src if src.startswith("//") else src).hostname or ""
    for domain in domains:
        pattern = urlsplit(domain if "//" in domain else "https://" + domain).hostname or ""
        if fnmatch.fnmatch(host, pattern):
            return True
    return False


def _reason(exc: BaseException) -> str:
    """The innermost cause of an error the SDK may have wrapped in exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
