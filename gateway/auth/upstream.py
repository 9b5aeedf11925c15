"""Outbound credentials: the provider a backend's `auth` settings make (`build_provider`), and the static ones.

Static credentials (API key, basic, bearer) are set on every request as configured. Token-based ones
live in `gateway.auth.oauth` (client credentials, token exchange), `gateway.auth.entra` (Entra ID app
registrations and managed identities) and `gateway.auth.sigv4` (AWS).

The caller's own token goes upstream in exactly two cases: exchanged for another one (token_exchange),
or as it is with `passthrough`, which must be chosen explicitly and is warned about at start. Every
other provider sends only the gateway's own credential.

Settings are checked here, at start: a missing field, a secret that cannot go in a header or cookie, or a
token endpoint that would receive a client secret over plain HTTP stops the gateway with a message that
names the backend and the field.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from urllib.parse import quote, unquote, urlsplit

import httpx2

from gateway.auth.entra import ManagedIdentity, app_registration, managed_identity_resource
from gateway.auth.oauth import (
    ClientAuth,
    ClientCredentials,
    PrivateKeyJwt,
    TokenEndpoint,
    TokenExchange,
    token_http_client,
)
from gateway.auth.provider import CredentialError, CredentialProvider, OutboundRequest, set_bearer
from gateway.auth.settings import Identity, Secret, UpstreamCredential
from gateway.errors import ConfigError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_COOKIE_UNSAFE = re.compile(r"[\x00-\x20\x7f\";,\\]")  # RFC 6265 cookie-octet excludes these
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_REQUIRED: dict[str, tuple[str, ...]] = {
    "api_key": ("name", "value"),
    "basic": ("username", "password"),
    "bearer": ("value",),
    "oauth_client_credentials": ("token_url", "client_id"),
    "token_exchange": ("token_url", "client_id"),
    "aws_sigv4": ("region", "service"),
    "azure_entra": ("scopes",),
}


class NoCredentials:
    """The backend needs no credential (or takes it from the configured static headers)."""

    async def apply(self, request: OutboundRequest, identity: Identity) -> OutboundRequest:
        return request

    async def aclose(self) -> None:
        pass

    def secrets(self) -> tuple[str, ...]:
        return ()


class ApiKey(NoCredentials):
    """A static key in a header, a query parameter or a cookie; it replaces any value of the same name."""

    def __init__(self, name: str, value: Secret, location: str) -> None:
        self.name = name
        self.location = location
        self._value = value

    async def apply(self, request: OutboundRequest, identity: Identity) -> OutboundRequest:
        value = self._value.reveal()
        if self.location == "query":
            kept = [pair for pair in request.query.split("&")
                    if pair and unquote(pair.partition("=")[0]) != self.name]
            kept.append(f"{quote(self.name, safe='')}={quote(value, safe='')}")
            request.set_query("&".join(kept))
        elif self.location == "cookie":
            kept = [c.strip() for c in (request.header("Cookie") or "").split(";")
                    if c.strip() and c.strip().partition("=")[0] != self.name]
            request.set_header("Cookie", "; ".join([*kept, f"{self.name}={value}"]))
        else:
            request.set_header(self.name, value)
        return request

    def secrets(self) -> tuple[str, ...]:
        return (self._value.reveal(),)


class Basic(NoCredentials):
    """HTTP basic authentication (RFC 7617) with a configured user name and password."""

    def __init__(self, username: str, password: Secret) -> None:
        pair = f"{username}:{password.reveal()}".encode()
        self._encoded = base64.b64encode(pair).decode("ascii")
        self._password = password

    async def apply(self, request: OutboundRequest, identity: Identity) -> OutboundRequest:
        request.set_header("Authorization", f"Basic {self._encoded}")
        return request

    def secrets(self) -> tuple[str, ...]:
        return (self._password.reveal(), self._encoded)


class StaticBearer(NoCredentials):
    def __init__(self, token: Secret) -> None:
        self._token = token

    async def apply(self, request: OutboundRequest, identity: Identity) -> OutboundRequest:
        return set_bearer(request, self._token.reveal())

    def secrets(self) -> tuple[str, ...]:
        return (self._token.reveal(),)


class Passthrough(NoCredentials):
    """The caller's own token, as it is (explicit opt-in: the backend must accept the gateway's callers' tokens)."""

    async def apply(self, request: OutboundRequest, identity: Identity) -> OutboundRequest:
        if identity.token is None:
            raise CredentialError("this backend needs the caller's sign-in, and the call carries no token")
        return set_bearer(request, identity.token.reveal())


def build_provider(cred: UpstreamCredential, *, backend: str, where: str = "",
                   http: httpx2.AsyncClient | None = None) -> CredentialProvider:
    """The provider for one backend's `auth` settings; `ConfigError` (at `where`) if they cannot work.

    `http` is the client for token and identity endpoints (default: a new one); the provider owns it and
    closes it in `aclose`.
    """
    where = where or "backends"

    def problem(text: str) -> ConfigError:
        return ConfigError(where, f"backend {backend!r}: auth ({cred.type}): {text}")

    missing = [f"`{name}`" for name in _REQUIRED.get(cred.type, ()) if not getattr(cred, name)]
    if missing:
        raise problem(f"needs {' and '.join(missing)}")
    match cred.type:
        case "none":
            return NoCredentials()
        case "api_key":
            assert cred.name is not None and cred.value is not None
            cookie = cred.location == "cookie"
            if (_COOKIE_UNSAFE if cookie else _CONTROL).search(cred.value.reveal()):
                banned = "spaces, quotes, commas, semicolons, backslashes or " if cookie else ""
                raise problem(f"the key cannot be sent in a {cred.location}: it holds {banned}control characters")
            return ApiKey(cred.name, cred.value, cred.location)
        case "basic":
            assert cred.username is not None and cred.password is not None
            if ":" in cred.username or _CONTROL.search(cred.username + cred.password.reveal()):
                raise problem("the user name cannot contain ':' and neither it nor the password control characters")
            return Basic(cred.username, cred.password)
        case "bearer":
            assert cred.value is not None
            if _CONTROL.search(cred.value.reveal()):
                raise problem("the token holds control characters")
            return StaticBearer(cred.value)
        case "passthrough":
            return Passthrough()
        case "oauth_client_credentials" | "token_exchange":
            assert cred.token_url is not None and cred.client_id is not None
            if cred.type == "oauth_client_credentials" and cred.client_secret is None and cred.private_key is None:
                raise problem("needs `client_secret` or `private_key` (private_key_jwt) to authenticate the gateway")
            _check_endpoint(cred.token_url, problem)
            signer = None
            if cred.private_key is not None:
                try:
                    signer = PrivateKeyJwt(cred.private_key.reveal(), key_id=cred.key_id)
                except ValueError as exc:
                    raise problem(f"`private_key` {exc}") from None
            client = ClientAuth(cred.client_id, secret=cred.client_secret, signer=signer)
            endpoint = TokenEndpoint(cred.token_url, client, http or token_http_client())
            kind = ClientCredentials if cred.type == "oauth_client_credentials" else TokenExchange
            return kind(endpoint, scopes=cred.scopes, audience=cred.audience, resource=cred.resource)
        case "azure_entra":
            if cred.managed_identity:
                try:
                    resource = managed_identity_resource(cred.scopes)
                except ValueError as exc:
                    raise problem(str(exc)) from None
                return ManagedIdentity(resource, client_id=cred.client_id, http=http or token_http_client())
            if not (cred.tenant_id and cred.client_id and (cred.client_secret or cred.certificate_path)):
                raise problem("needs `tenant_id`, `client_id` and `client_secret` or `certificate_path` (or "
                              "`managed_identity: true`)")
            _check_endpoint(cred.authority, problem)
            try:
                return app_registration(cred, http or token_http_client())
            except ValueError as exc:
                raise problem(f"`certificate_path`: {exc}") from None
        case "aws_sigv4":
            assert cred.region is not None and cred.service is not None
            try:
                from gateway.auth.sigv4 import AwsSigV4  # botocore is the optional extra `aws`
            except ImportError:
                raise problem("needs botocore: install semantic-adapter-gateway[aws]") from None
            return AwsSigV4(region=cred.region, service=cred.service, profile=cred.profile)
    raise problem("unknown credential type")


def _check_endpoint(url: str, problem: Callable[[str], ConfigError]) -> None:
    """Client secrets travel only over TLS, except to a token endpoint on this machine (tests, sidecars)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in _LOOPBACK:
        return
    raise problem(f"the token endpoint must be an https URL (http only on loopback), got {url!r}")
