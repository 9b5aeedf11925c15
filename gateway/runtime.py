"""Start-up pipeline: config -> for each backend (load spec -> apply mapping -> tool specs) -> `Gateway`.

Everything a call needs is built here once; a `Gateway` is immutable after start-up, so replicas
built from the same files serve the same tools.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx2

from gateway.auth.oauth import token_http_client
from gateway.auth.settings import TlsSettings
from gateway.auth.tls import ssl_context
from gateway.auth.upstream import build_provider
from gateway.calls.forward import Backend, Timeouts
from gateway.config import BackendConfig, GatewayConfig
from gateway.discovery.catalog import Catalog, build_catalogs
from gateway.discovery.toolsets import Toolset, resolve_toolsets
from gateway.errors import ConfigError, Diagnostic
from gateway.mapping import ToolMapping, default_mapping, load_mapping, select_operations
from gateway.spec import ApiModel, load_spec
from gateway.tools.generate import ToolGenerator
from gateway.tools.model import ToolSpec
from gateway.widgets import WidgetRegistry
from gateway.yamlfile import config_error

log = logging.getLogger("gateway.runtime")


@dataclass(frozen=True, slots=True)
class LoadedBackend:
    config: BackendConfig
    api: ApiModel
    mapping: ToolMapping
    tools: tuple[ToolSpec, ...]
    warnings: tuple[Diagnostic, ...]


@dataclass(frozen=True, slots=True)
class Gateway:
    """The loaded gateway: tools by name (in listing order) and the backends they call."""

    config: GatewayConfig
    backends: tuple[LoadedBackend, ...]
    tools: Mapping[str, ToolSpec]
    widgets: WidgetRegistry
    catalogs: tuple[Catalog, ...] = ()
    """The endpoints served: every tool at `server.path` first, then one per toolset."""

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(w for b in self.backends for w in b.warnings)

    @property
    def name(self) -> str:
        """The MCP server name: the config's, else the single mapping's, else the single API's title."""
        if self.config.server.name:
            return self.config.server.name
        if len(self.backends) == 1:
            only = self.backends[0]
            return only.mapping.server.name or only.api.title or "gateway"
        return "gateway"

    @property
    def instructions(self) -> str | None:
        if self.config.server.instructions:
            return self.config.server.instructions
        parts = [b.mapping.server.instructions for b in self.backends if b.mapping.server.instructions]
        return "\n\n".join(parts) or None


def load_backend(config: BackendConfig, taken: set[str], *, lint: bool = True) -> LoadedBackend:
    api = load_spec(config.spec, lint=lint)
    mapping = load_mapping(config.mapping) if config.mapping else default_mapping()
    selected, diagnostics = select_operations(api, mapping)
    generator = ToolGenerator(api, backend=config.name, prefix=config.tool_prefix)
    tools = generator.generate(selected, taken)
    # The tools hold what calls need; the bundled document (tens of MB for a large API) is not kept.
    api = dataclasses.replace(api, document={})
    return LoadedBackend(config, api, mapping, tuple(tools), (*api.warnings, *diagnostics, *generator.warnings))


def load_gateway(config: GatewayConfig, *, lint: bool = True) -> Gateway:
    """Every backend's spec, mapping and tools, the widgets and the discovery catalogs; `lint` as `load_spec`'s."""
    taken: set[str] = set()
    loaded = []
    for backend in config.backends:
        item = load_backend(backend, taken, lint=lint)
        taken.update(t.name for t in item.tools)
        loaded.append(item)
    tools = {t.name: t for b in loaded for t in b.tools}
    gw = Gateway(config, tuple(loaded), tools, WidgetRegistry.build(tools, config.server.widgets))
    server = config.server
    catalogs = build_catalogs(tools, _toolsets(gw.backends), path=server.path, name=gw.name,
                              instructions=gw.instructions, settings=server.discovery)
    return dataclasses.replace(gw, catalogs=catalogs)


def _toolsets(backends: tuple[LoadedBackend, ...]) -> list[Toolset]:
    """Every backend's toolsets; two backends may not serve toolsets of the same name."""
    found: dict[str, Toolset] = {}
    problems = []
    for backend in backends:
        for toolset in resolve_toolsets(backend.mapping, backend.tools):
            earlier = found.setdefault(toolset.key, toolset)
            if earlier is not toolset:
                problems.append(Diagnostic(toolset.where, f"toolsets.{toolset.key}: another backend's mapping already "
                                           f"serves a toolset of this name (at {earlier.where})"))
    if problems:
        raise config_error(problems)
    return list(found.values())


def upstream_url(backend: LoadedBackend) -> str:
    """The backend's base URL: the configured upstream, else the spec's first server with its defaults."""
    if backend.config.upstream:
        return backend.config.upstream
    for server in backend.api.servers:
        url = server.resolved_url()
        if "{" in url:
            continue
        if not url.startswith(("http://", "https://")) and backend.api.source.startswith(("http://", "https://")):
            url = str(httpx2.URL(backend.api.source).join(url))
        if url.startswith(("http://", "https://")):
            return url
    raise ConfigError(
        backend.config.where or backend.config.name,
        f"backend {backend.config.name!r}: the spec names no absolute server URL the gateway can use "
        "(relative, templated without defaults, or missing); set `upstream` (or pass --upstream)",
    )


_TOKEN_ENDPOINT_TYPES = ("oauth_client_credentials", "token_exchange", "azure_entra")


def _token_client(config: BackendConfig, on_answer: Callable[[str, int], None] | None) -> httpx2.AsyncClient | None:
    """The token-endpoint client of a backend whose answers are counted; None: the provider's own default."""
    if on_answer is None or config.auth.type not in _TOKEN_ENDPOINT_TYPES:
        return None
    return token_http_client(on_answer=lambda status: on_answer(config.name, status))


def open_backends(gateway: Gateway, on_token_answer: Callable[[str, int], None] | None = None
                  ) -> dict[str, Backend]:
    """One pooled HTTP client per backend, with its TLS settings and credentials (each opens its connection
    pool on its first call, in the serving event loop, so this may run before that loop does). Raises
    `ConfigError` for credentials or TLS files that cannot work. `on_token_answer(backend, status)` is told
    every answer of a backend's token or identity endpoint."""
    out = {}
    for loaded in gateway.backends:
        c = loaded.config
        where = c.where or f"backend {c.name!r}"
        url = upstream_url(loaded)
        if c.tls != TlsSettings() and not url.startswith("https://"):
            raise ConfigError(where, f"backend {c.name!r}: `tls` settings need an https upstream, not {url}")
        verify = ssl_context(c.tls, where)
        if c.auth.type == "passthrough":
            log.warning("backend %r receives each caller's own access token (auth type passthrough): the backend "
                        "must accept tokens issued for the gateway, and can act as the caller elsewhere", c.name)
        out[c.name] = Backend(
            c.name, url,
            timeouts=Timeouts(c.timeout_connect, c.timeout_read),
            max_connections=c.max_connections,
            headers=dict(c.headers),
            credentials=build_provider(c.auth, backend=c.name, where=where, http=_token_client(c, on_token_answer)),
            verify=verify,
        )
    return out
