"""Auth settings as the configuration states them, checked and with every secret already resolved.

Secrets never appear in the configuration files: a secret field holds a reference, `${ENV_VAR}` or
`file:/path/to/secret`, resolved once at start (`Secret`). A `Secret` never prints its value, so it
cannot leak through a log line, an error message or a repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


class Secret:
    """A secret value with a harmless repr; `.reveal()` is the only way to read it."""

    __slots__ = ("_source", "_value")

    def __init__(self, value: str, source: str = "secret") -> None:
        self._value = value
        self._source = source  # e.g. "${API_KEY}" or "file:/run/secrets/key": safe to show

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self._source})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class InboundAuth:
    """The gateway as an OAuth 2.1 resource server (`server.auth`).

    mode "oauth": every MCP request needs a bearer token issued by `issuer` for `resource_url` (the
    public URL of the MCP endpoint, RFC 8707 audience). JWTs are verified with the issuer's JWKS
    (discovered from its metadata unless `jwks_url` is given); opaque tokens, when
    `introspection_url` is set, through RFC 7662 introspection. mode "none": no token checks at all
    (only with an explicit setting; the gateway warns at start).
    """

    mode: Literal["oauth", "none"] = "none"
    issuer: str | None = None
    resource_url: str | None = None
    audiences: tuple[str, ...] = ()  # accepted `aud` values; default: (resource_url,)
    required_scopes: tuple[str, ...] = ()  # needed for any request, on top of each tool's scopes
    jwks_url: str | None = None
    algorithms: tuple[str, ...] = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                                   "ES512", "EdDSA")
    leeway_seconds: int = 60
    introspection_url: str | None = None
    introspection_client_id: str | None = None
    introspection_client_secret: Secret | None = None
    introspection_cache_seconds: int = 30
    jwks_min_refresh_seconds: int = 30  # an unknown `kid` refreshes the JWKS at most this often


CredentialType = Literal[
    "none", "api_key", "basic", "bearer", "oauth_client_credentials", "token_exchange", "aws_sigv4",
    "azure_entra", "passthrough",
]


@dataclass(frozen=True, slots=True)
class UpstreamCredential:
    """How the gateway authenticates to one backend (`backends[].auth`). Only the fields of `type` are set.

    - api_key: `value` sent in header/query/cookie `name` (`location`).
    - basic: `username` + `password`.
    - bearer: a static token in `value`.
    - oauth_client_credentials: `token_url`, `client_id`, `client_secret` (or `private_key` + `key_id` for
      private_key_jwt), optional `scopes`, `audience`, `resource`; token cached until shortly before expiry.
    - token_exchange (RFC 8693): the caller's token exchanged at `token_url` (client authenticated with
      `client_id`/`client_secret`) for one scoped to the backend (`audience`, `resource`, `scopes`),
      cached per subject until expiry.
    - aws_sigv4: requests signed for `region`/`service` with the standard AWS credential chain
      (environment, profile `profile`, container or instance role).
    - azure_entra: an Entra ID token for `scopes` (e.g. "https://management.azure.com/.default"), by
      client secret or certificate (`tenant_id`, `client_id`, `client_secret` | `certificate_path`) or
      managed identity (`managed_identity: true`, optional `client_id` of a user-assigned identity).
    - passthrough: the caller's own token is forwarded (explicit opt-in; logged as a warning at start).
    """

    type: CredentialType = "none"
    name: str | None = None
    location: Literal["header", "query", "cookie"] = "header"
    value: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: Secret | None = None
    private_key: Secret | None = None  # PEM, for private_key_jwt client authentication
    key_id: str | None = None
    scopes: tuple[str, ...] = ()
    audience: str | None = None
    resource: str | None = None
    region: str | None = None
    service: str | None = None
    profile: str | None = None
    tenant_id: str | None = None
    certificate_path: str | None = None
    managed_identity: bool = False
    authority: str = "https://login.microsoftonline.com"


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """TLS to one backend: a custom CA bundle and/or a client certificate (mutual TLS)."""

    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    client_key_password: Secret | None = None


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Token-bucket limits in `limits` notation ("60/minute"); None: unlimited.

    `per_caller` applies to each caller (token subject, else client address) across all tools;
    `per_tool` to each caller and tool. `storage` is "memory://" (one replica) or a Redis URL shared by
    several replicas.
    """

    per_caller: str | None = None
    per_tool: str | None = None
    storage: str = "memory://"
    on_storage_error: Literal["fail_open", "fail_closed"] = "fail_open"  # the store down or slower than the timeout
    storage_timeout_seconds: float = 0.5


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """The audit line per call; arguments are logged only when asked, and then with secrets redacted."""

    log_arguments: bool = False


@dataclass(frozen=True, slots=True)
class Identity:
    """The validated caller, as the call path sees it."""

    subject: str | None
    client_id: str | None
    scopes: frozenset[str]
    token: Secret | None = None  # the caller's raw token: only for token exchange or explicit passthrough
    claims: dict = field(default_factory=dict, compare=False)

    @property
    def who(self) -> str:
        return self.subject or self.client_id or "anonymous"


ANONYMOUS = Identity(subject=None, client_id=None, scopes=frozenset())


class AuthError(Exception):
    """A token was refused. `error` is the RFC 6750 code; `description` is short and never echoes the token;
    `reason` is a fixed word for metrics (`expired`, `bad_audience`, `unknown_key`, ...)."""

    def __init__(self, error: str, description: str, reason: str = "invalid") -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.reason = reason
