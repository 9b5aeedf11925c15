"""The gateway configuration: MCP server settings plus the REST backends it serves.

Two sources, one result: `load_config` reads a YAML file (docs/config.md), `config_from_args` builds the
same `GatewayConfig` from `--spec/--mapping/--upstream/--host/--port`. Both run the same schema check and
the same construction, so everything downstream has one code path. Relative paths are resolved here,
against the config file's folder or the working directory, so later stages never guess.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.auth.secrets import resolve_secret
from gateway.auth.settings import AuditSettings, InboundAuth, RateLimits, TlsSettings, UpstreamCredential
from gateway.errors import ConfigError, Diagnostic
from gateway.mapping.model import DiscoveryMode
from gateway.yamlfile import FieldPath, Locator, config_error, load_yaml, validate

_BACKEND_OPTIONS = ("upstream", "timeout_connect", "timeout_read", "max_connections", "tool_prefix", "max_concurrency")
"""Backend keys taken as written (the schema has checked them); their names are `BackendConfig` fields."""


@dataclass(frozen=True, slots=True)
class WidgetOptions:
    """`server.widgets`: how tool results' widgets are served (docs/config.md).

    The domain lists go into the widgets' Content Security Policy; empty lists mean no network access.
    `skybridge` also serves every widget under the Apps SDK's original MIME type `text/html+skybridge`.
    `link_domains` are the origins the widgets' links go to (`openai/widgetCSP.redirect_domains`).
    `fullscreen` lets big tables ask the host for full screen. `embed_in_results` also puts the widget
    into each result's `_meta["openai.com/widget"]`, for hosts that still read it there.
    """

    enabled: bool = True
    skybridge: bool = False
    domain: str | None = None
    connect_domains: tuple[str, ...] = ()
    resource_domains: tuple[str, ...] = ()
    link_domains: tuple[str, ...] = ()
    fullscreen: bool = True
    embed_in_results: bool = False


@dataclass(frozen=True, slots=True)
class DiscoverySettings:
    """`server.discovery`: how each endpoint's tools are found (docs/config.md).

    `auto` lists the tools (flat) while an endpoint serves at most `max_flat_tools`, and serves the
    search meta-tools above that: past a few dozen tools, models pick worse and the listing floods
    their context.
    """

    mode: DiscoveryMode = "auto"
    max_flat_tools: int = 40


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """`server.metrics`: Prometheus metrics at `path`, on the main port or, with `port`, on one of their own
    (bound to the same host), which keeps them off the port that callers reach."""

    enabled: bool = False
    port: int | None = None
    path: str = "/metrics"


@dataclass(frozen=True, slots=True)
class FilesSettings:
    """`server.files`: downloading the files a host hands a tool by URL (ChatGPT's `openai/fileParams`).

    Off until `allowed_hosts` names the hosts files may come from: a download is a new way out of the
    gateway. https only; `allow_loopback` lets loopback addresses through (local trials and tests), never
    private or link-local ones; `ca_file` trusts a private CA.
    """

    allowed_hosts: tuple[str, ...] = ()
    allow_loopback: bool = False
    max_bytes: int = 20_000_000
    timeout_seconds: float = 30.0
    ca_file: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.allowed_hosts)


@dataclass(frozen=True, slots=True)
class TracingSettings:
    """`server.tracing`: OpenTelemetry traces, exported over OTLP/HTTP as the `OTEL_*` variables say."""

    enabled: bool = False


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The MCP endpoint. Empty `allowed_hosts`/`allowed_origins` leave the server's own default in force.

    `name`/`instructions` are what MCP clients are told; None lets the gateway derive them (from the
    mapping's `server:` or the spec's title).
    """

    host: str = "127.0.0.1"
    port: int = 8080
    path: str = "/mcp"
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    log_level: str = "info"
    max_request_bytes: int = 1_048_576
    name: str | None = None
    instructions: str | None = None
    auth: InboundAuth = field(default_factory=InboundAuth)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    audit: AuditSettings = field(default_factory=AuditSettings)
    widgets: WidgetOptions = field(default_factory=WidgetOptions)
    discovery: DiscoverySettings = field(default_factory=DiscoverySettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    tracing: TracingSettings = field(default_factory=TracingSettings)
    files: FilesSettings = field(default_factory=FilesSettings)
    fast_path: bool = True  # stateless JSON tools/call, tools/list and ping served without the SDK's dispatcher
    reload: str = "off"  # "watch": reload when the config, a spec or a mapping changes (SIGHUP always reloads)
    drain_seconds: float = 5.0  # after SIGTERM: /readyz is 503 but calls are still served, for load balancers
    shutdown_grace_seconds: float = 20.0  # then: how long calls in flight may take to finish
    log_format: str = "text"  # "json": one JSON object per log line


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """One REST API. `spec` is an absolute file path or an http(s) URL; `upstream` overrides its servers.

    `where` locates the backend's entry (`file:line`, or the command-line flag) for later messages.
    """

    name: str
    spec: str
    mapping: Path | None = None
    upstream: str | None = None
    timeout_connect: float = 5.0
    timeout_read: float = 30.0
    max_connections: int = 100
    tool_prefix: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    where: str = ""
    auth: UpstreamCredential = field(default_factory=UpstreamCredential)
    tls: TlsSettings = field(default_factory=TlsSettings)
    max_concurrency: int = 50  # upstream calls in flight at once; more wait (up to the call's timeout)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    server: ServerSettings
    backends: tuple[BackendConfig, ...]


def load_config(path: str | Path, *, host: str | None = None, port: int | None = None,
                discovery: str | None = None) -> GatewayConfig:
    """Load and check a gateway config file; raises `ConfigError` listing every problem at file:line.

    `host`, `port` and `discovery` (command-line flags) replace the file's `server` values before anything
    is checked, so a flag cannot bypass a check (`--host 0.0.0.0` still needs `server.auth`).
    """
    data, locate = load_yaml(path)
    validate(data, locate, "gateway")
    if host is not None or port is not None or discovery is not None:
        server = dict(data.get("server", {}))
        server.update({key: value for key, value in (("host", host), ("port", port)) if value is not None})
        if discovery is not None:
            server["discovery"] = {**server.get("discovery", {}), "mode": discovery}
        data = {**data, "server": server}
        validate(data, locate, "gateway")
    return _build(data, locate, Path(path).absolute().parent)


def config_from_args(
    spec: str,
    mapping: str | None = None,
    upstream: str | None = None,
    host: str | None = None,
    port: int | None = None,
    auth_issuer: str | None = None,
    resource_url: str | None = None,
    required_scopes: tuple[str, ...] = (),
    no_auth: bool = False,
    discovery: str | None = None,
) -> GatewayConfig:
    """The config for a single backend named "default" given on the command line (paths relative to cwd).

    `--auth-issuer ISSUER --resource-url URL [--required-scopes a,b]` turns on token checks (JWKS discovered
    from the issuer); `--no-auth` states that none are wanted.
    """
    backend: dict[str, Any] = {"name": "default", "spec": spec}
    if mapping is not None:
        backend["mapping"] = mapping
    if upstream is not None:
        backend["upstream"] = upstream
    server: dict[str, Any] = {key: value for key, value in (("host", host), ("port", port)) if value is not None}
    if auth_issuer or resource_url or required_scopes:
        server["auth"] = {"mode": "oauth", **({"issuer": auth_issuer} if auth_issuer else {}),
                          **({"resource_url": resource_url} if resource_url else {}),
                          **({"required_scopes": list(required_scopes)} if required_scopes else {})}
    elif no_auth:
        server["auth"] = {"mode": "none"}
    if discovery is not None:
        server["discovery"] = {"mode": discovery}
    data = {"version": 1, "server": server, "backends": [backend]}
    locate = _FlagLocator()
    validate(data, locate, "gateway")
    return _build(data, locate, Path.cwd())


class _FlagLocator(Locator):
    """Reports problems of command-line values by flag (`--upstream: ...`) rather than by file line."""

    def __init__(self) -> None:
        super().__init__("command line", {})

    _FLAGS = {"issuer": "auth-issuer", "resource_url": "resource-url", "required_scopes": "required-scopes",
              "auth": "auth-issuer"}

    def __call__(self, path: FieldPath) -> str:
        if path and isinstance(path[-1], str):
            return "--" + self._FLAGS.get(path[-1], path[-1])
        return self.file

    def problem(self, path: FieldPath, text: str) -> Diagnostic:
        return Diagnostic(self(path), text, severity="error")


def _build(data: Mapping[str, Any], locate: Locator, base: Path) -> GatewayConfig:
    problems: list[Diagnostic] = []
    backends = []
    first_use: dict[str, int] = {}
    for index, entry in enumerate(data["backends"]):
        path: FieldPath = ("backends", index)
        name = entry["name"]
        first = first_use.setdefault(name, index)
        if first != index:
            problems.append(locate.problem((*path, "name"), f"backend name {name!r} is already used by "
                                           f"backends[{first}] at {locate(('backends', first, 'name'))}"))
        spec = _resolve_source(entry["spec"], base, locate, (*path, "spec"), problems)
        mapping = _resolve_source(entry["mapping"], base, locate, (*path, "mapping"), problems, urls=False) \
            if "mapping" in entry else None
        options = {key: entry[key] for key in _BACKEND_OPTIONS if key in entry}
        if "auth" in entry:
            options["auth"] = _credential(entry["auth"], base, (*path, "auth"), locate, problems)
        if "tls" in entry:
            options["tls"] = _tls(entry["tls"], base, (*path, "tls"), locate, problems)
        backends.append(
            BackendConfig(
                name=name,
                spec=spec,
                mapping=Path(mapping) if mapping is not None else None,
                headers=dict(entry.get("headers", {})),
                where=locate(path),
                **options,
            )
        )
    server = dict(data.get("server", {}))
    for key in ("allowed_hosts", "allowed_origins"):
        server[key] = tuple(server.get(key, ()))
    server["auth"] = _inbound_auth(server.get("auth"), server.get("host", "127.0.0.1"), base, locate, problems)
    server["rate_limits"] = RateLimits(**server.get("rate_limits", {}))
    server["audit"] = AuditSettings(**server.get("audit", {}))
    widgets = dict(server.get("widgets", {}))
    for key in ("connect_domains", "resource_domains", "link_domains"):
        widgets[key] = tuple(widgets.get(key, ()))
    server["widgets"] = WidgetOptions(**widgets)
    server["discovery"] = DiscoverySettings(**server.get("discovery", {}))
    server["metrics"] = MetricsSettings(**server.get("metrics", {}))
    server["tracing"] = TracingSettings(**server.get("tracing", {}))
    files = dict(server.get("files", {}))
    files["allowed_hosts"] = tuple(files.get("allowed_hosts", ()))
    if "ca_file" in files:
        files["ca_file"] = _resolve_source(files["ca_file"], base, locate, ("server", "files", "ca_file"), problems,
                                           urls=False)
    server["files"] = FilesSettings(**files)
    if problems:
        raise config_error(problems)
    return GatewayConfig(server=ServerSettings(**server), backends=tuple(backends))


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _secrets(entry: Mapping[str, Any], keys: tuple[str, ...], base: Path, path: FieldPath, locate: Locator,
             problems: list[Diagnostic]) -> dict[str, Any]:
    """`entry` with the secret references among `keys` resolved (`${ENV}` / `file:`, relative to `base`)."""
    out = dict(entry)
    for key in keys:
        if key in out:
            reference = out[key]
            if reference.startswith("file:") and not Path(reference[5:]).expanduser().is_absolute():
                reference = "file:" + os.path.normpath(base / Path(reference[5:]).expanduser())
            try:
                out[key] = resolve_secret(reference, locate((*path, key)))
            except ConfigError as exc:
                problems.append(locate.problem((*path, key), exc.message))
                out[key] = None
    return out


def _inbound_auth(entry: Mapping[str, Any] | None, host: str, base: Path, locate: Locator,
                  problems: list[Diagnostic]) -> InboundAuth:
    """`server.auth`, which must be stated whenever the gateway listens beyond loopback."""
    path: FieldPath = ("server", "auth")
    if entry is None:
        if host not in _LOOPBACK:
            problems.append(locate.problem(path, f"the gateway listens on {host}, so say how callers are "
                                           "authorized: `auth: {mode: oauth, issuer: ..., resource_url: ...}` "
                                           "(flags --auth-issuer/--resource-url), or `auth: {mode: none}` "
                                           "(--no-auth) to serve without any check"))
        return InboundAuth()
    fields = _secrets(entry, ("introspection_client_secret",), base, path, locate, problems)
    for key in ("audiences", "required_scopes", "algorithms"):
        if key in fields:
            fields[key] = tuple(fields[key])
    return InboundAuth(**fields)


def _credential(entry: Mapping[str, Any], base: Path, path: FieldPath, locate: Locator,
                problems: list[Diagnostic]) -> UpstreamCredential:
    fields = _secrets(entry, ("value", "password", "client_secret", "private_key"), base, path, locate, problems)
    if "certificate_path" in fields:
        fields["certificate_path"] = _resolve_source(fields["certificate_path"], base, locate,
                                                     (*path, "certificate_path"), problems, urls=False)
    if "scopes" in fields:
        fields["scopes"] = tuple(fields["scopes"])
    return UpstreamCredential(**fields)


def _tls(entry: Mapping[str, Any], base: Path, path: FieldPath, locate: Locator,
         problems: list[Diagnostic]) -> TlsSettings:
    fields = _secrets(entry, ("client_key_password",), base, path, locate, problems)
    for key in ("ca_bundle", "client_cert", "client_key"):
        if key in fields:
            fields[key] = _resolve_source(fields[key], base, locate, (*path, key), problems, urls=False)
    return TlsSettings(**fields)


def _resolve_source(
    value: str, base: Path, locate: Locator, path: FieldPath, problems: list[Diagnostic], *, urls: bool = True
) -> str:
    """An http(s) URL as it is, or a file path made absolute against `base`, which must exist."""
    if urlsplit(value).scheme.lower() in ("http", "https"):
        if not urls:
            problems.append(locate.problem(path, f"must be a file path, not a URL ({value})"))
        return value
    resolved = os.path.normpath(base / Path(value).expanduser())
    if not Path(resolved).is_file():
        problems.append(locate.problem(path, f"no such file: {resolved}"))
    return resolved
