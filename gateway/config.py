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

from gateway.auth.settings import AuditSettings, InboundAuth, RateLimits, TlsSettings, UpstreamCredential
from gateway.errors import Diagnostic
from gateway.yamlfile import FieldPath, Locator, config_error, load_yaml, validate

_BACKEND_OPTIONS = ("upstream", "timeout_connect", "timeout_read", "max_connections", "tool_prefix")
"""Backend keys taken as written (the schema has checked them); their names are `BackendConfig` fields."""


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
    auth: InboundAuth = InboundAuth()
    rate_limits: RateLimits = RateLimits()
    audit: AuditSettings = AuditSettings()


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
    auth: UpstreamCredential = UpstreamCredential()
    tls: TlsSettings = TlsSettings()
    max_concurrency: int = 50  # upstream calls in flight at once; more wait (up to the call's timeout)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    server: ServerSettings
    backends: tuple[BackendConfig, ...]


def load_config(path: str | Path) -> GatewayConfig:
    """Load and check a gateway config file; raises `ConfigError` listing every problem at file:line."""
    data, locate = load_yaml(path)
    validate(data, locate, "gateway")
    return _build(data, locate, Path(path).absolute().parent)


def config_from_args(
    spec: str,
    mapping: str | None = None,
    upstream: str | None = None,
    host: str | None = None,
    port: int | None = None,
) -> GatewayConfig:
    """The config for a single backend named "default" given on the command line (paths relative to cwd)."""
    backend: dict[str, Any] = {"name": "default", "spec": spec}
    if mapping is not None:
        backend["mapping"] = mapping
    if upstream is not None:
        backend["upstream"] = upstream
    server = {key: value for key, value in (("host", host), ("port", port)) if value is not None}
    data = {"version": 1, "server": server, "backends": [backend]}
    locate = _FlagLocator()
    validate(data, locate, "gateway")
    return _build(data, locate, Path.cwd())


class _FlagLocator(Locator):
    """Reports problems of command-line values by flag (`--upstream: ...`) rather than by file line."""

    def __init__(self) -> None:
        super().__init__("command line", {})

    def __call__(self, path: FieldPath) -> str:
        return "--" + str(path[-1]) if path and isinstance(path[-1], str) else self.file

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
    if problems:
        raise config_error(problems)
    server = dict(data.get("server", {}))
    for key in ("allowed_hosts", "allowed_origins"):
        server[key] = tuple(server.get(key, ()))
    return GatewayConfig(server=ServerSettings(**server), backends=tuple(backends))


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
