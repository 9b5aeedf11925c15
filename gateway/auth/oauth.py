"""OAuth 2 tokens for backends: client credentials (RFC 6749 4.4) and token exchange (RFC 8693).

The token endpoint is called with httpx2 directly rather than through authlib's client integration
(built on httpx, another stack again). Token requests are rare (tokens are cached), so they are not on
the call path, which uses aiohttp (`gateway.calls.forward`); both clients follow the same rules: no
redirects, no proxy variables. What a token request needs is small: a form POST, client authentication
(client_secret_basic, client_secret_post or an RFC 7523 private_key_jwt assertion signed with joserfc)
and a JSON answer.

Tokens are cached until shortly before they expire (10% of their lifetime, at most 60 s), and only one
refresh runs at a time however many calls need it. A refresh that fails for a reason that may pass is
retried with backoff; one that still fails is remembered for a growing cool-down, so an endpoint that is
down is not stampeded by every call. A failed refresh while the old token is still valid keeps the old
token in use. Errors say which endpoint answered what (`the token endpoint answered 401
invalid_client`) and never carry a secret, a token or the endpoint's free-text description.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import random
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from secrets import token_urlsafe
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

import httpx2

from gateway.auth.provider import CredentialError, OutboundRequest, set_bearer
from gateway.auth.settings import Identity, Secret

if TYPE_CHECKING:
    from cryptography import x509

log = logging.getLogger("gateway.auth")

GRANT_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEFAULT_LIFETIME = 300.0
"""Seconds a token without `expires_in` is kept: RFC 6749 only recommends the field, and a guess that is
too long costs a failed call, one that is short only an extra token request."""

_ERROR_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def token_http_client(timeout: float = 10.0, on_answer: Callable[[int], None] | None = None) -> httpx2.AsyncClient:
    """The client for token and identity endpoints: default trust store, no redirects, no proxy variables.

    `on_answer` is told the status of every answer such an endpoint gives (the token-fetch metrics)."""

    async def told(response: httpx2.Response) -> None:
        if on_answer is not None:
            on_answer(response.status_code)

    return httpx2.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False,
                              headers={"User-Agent": "semantic-adapter-gateway"},
                              event_hooks={"response": [told]} if on_answer is not None else None)


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str
    expires_at: float  # time.monotonic()
    refresh_at: float

    @classmethod
    def lasting(cls, value: str, seconds: float) -> AccessToken:
        now = time.monotonic()
        return cls(value, now + seconds, now + seconds - min(60.0, seconds / 10))


def parse_token_response(response: httpx2.Response, what: str) -> AccessToken:
    """The bearer token in a token endpoint's JSON answer (`expires_in`, or Azure's epoch `expires_on`)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200:
        code = body.get("error") if isinstance(body, dict) else None
        detail = f" {code}" if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else ""
        raise CredentialError(f"{what} answered {response.status_code}{detail}")
    if not isinstance(body, dict):
        raise CredentialError(f"{what} answered 200 without a JSON object")
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise CredentialError(f"{what} answered 200 without an access_token")
    token_type = body.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        kind = token_type if isinstance(token_type, str) and _ERROR_CODE.fullmatch(token_type) else "another type"
        raise CredentialError(f"{what} issued a token of type {kind}; only Bearer tokens are supported")
    return AccessToken.lasting(token, _lifetime(body))


def _lifetime(body: Mapping[str, object]) -> float:
    for key, relative in (("expires_in", True), ("expires_on", False)):
        value = body.get(key)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value) if relative else float(value) - time.time()
            return max(seconds, 1.0)
    return DEFAULT_LIFETIME


class PrivateKeyJwt:
    """Signs RFC 7523 client assertions (`private_key_jwt`) with a PEM private key.

    The algorithm follows the key: RS256 for RSA, ES256/384/512 for the matching EC curve, EdDSA for
    Ed25519. `key_id` becomes the `kid` header; with a certificate, its SHA-1 thumbprint becomes `x5t`,
    which is how Microsoft Entra ID finds the certificate registered for the application.
    """

    def __init__(self, private_key_pem: str, *, key_id: str | None = None,
                 certificate: x509.Certificate | None = None) -> None:
        # Loaded with the first signer: most gateways never sign an assertion.
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
        from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key
        from joserfc.jwk import import_key

        data = private_key_pem.encode("utf-8")
        try:
            key = load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise ValueError("is not an unencrypted PEM private key") from None
        if isinstance(key, rsa.RSAPrivateKey):
            key_type, self._algorithm = "RSA", "RS256"
        elif isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _EC_ALGORITHMS:
            key_type, self._algorithm = "EC", _EC_ALGORITHMS[key.curve.name]
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            key_type, self._algorithm = "OKP", "EdDSA"
        else:
            raise ValueError("holds a key type that cannot sign client assertions (use RSA, EC P-256/384/521 "
                             "or Ed25519)")
        self._key = import_key(data, key_type)
        self._header: dict[str, str] = {"alg": self._algorithm}
        if key_id:
            self._header["kid"] = key_id
        if certificate is not None:
            # x5t is a SHA-1 thumbprint by definition (RFC 7515 4.1.7)
            digest = hashlib.sha1(certificate.public_bytes(Encoding.DER)).digest()
            self._header["x5t"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def assertion(self, client_id: str, audience: str) -> str:
        now = int(time.time())
        claims = {"iss": client_id, "sub": client_id, "aud": audience, "jti": token_urlsafe(16),
                  "iat": now, "nbf": now, "exp": now + 300}
        from joserfc import jwt

        return jwt.encode(self._header, claims, self._key, algorithms=[self._algorithm])


@dataclass(frozen=True, slots=True)
class ClientAuth:
    """How the gateway authenticates itself at a token endpoint.

    With `signer`: private_key_jwt. With a `secret`: client_secret_basic (the default, RFC 6749 2.3.1:
    id and secret form-encoded, then base64) or client_secret_post. Neither: a public client that only
    names itself.
    """

    client_id: str
    secret: Secret | None = None
    method: Literal["basic", "post"] = "basic"
    signer: PrivateKeyJwt | None = None

    def apply(self, form: dict[str, str], headers: dict[str, str], token_url: str) -> None:
        if self.signer is not None:
            form.update(client_id=self.client_id, client_assertion_type=JWT_BEARER_ASSERTION,
                        client_assertion=self.signer.assertion(self.client_id, token_url))
        elif self.secret is not None and self.method == "basic":
            pair = f"{quote(self.client_id, safe='')}:{quote(self.secret.reveal(), safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
        elif self.secret is not None:
            form.update(client_id=self.client_id, client_secret=self.secret.reveal())
        else:
            form["client_id"] = self.client_id

    def secrets(self) -> tuple[str, ...]:
        return (self.secret.reveal(),) if self.secret is not None else ()


def _retry_after(response: httpx2.Response) -> float | None:
    """The seconds an RFC 9110 `Retry-After` asks for, when given as a number."""
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


class TokenEndpoint:
    """An OAuth token endpoint and the client credentials the gateway presents to it.

    A failure that may pass (no connection, a timeout, 429 or 5xx) is retried `attempts - 1` times with
    jittered exponential backoff (`backoff`, doubled each time; a `Retry-After` is honoured up to
    `MAX_RETRY_DELAY`), so a token endpoint restarting or shedding load costs a call a fraction of a second
    rather than an error. A refusal (400, 401: wrong client, wrong grant) is final and not retried.
    """

    MAX_RETRY_DELAY = 2.0

    def __init__(self, url: str, client: ClientAuth, http: httpx2.AsyncClient, *, attempts: int = 3,
                 backoff: float = 0.1) -> None:
        self.url = url
        self.client = client
        self._http = http
        self._attempts = attempts
        self._backoff = backoff

    async def fetch(self, form: Mapping[str, str]) -> AccessToken:
        for attempt in range(1, self._attempts + 1):
            data = dict(form)  # a fresh private_key_jwt assertion (new jti) per attempt
            headers = {"Accept": "application/json"}
            self.client.apply(data, headers, self.url)
            wait = self._backoff * 2 ** (attempt - 1) * (0.5 + random.random() / 2)
            try:
                response = await self._http.post(self.url, data=data, headers=headers)
            except httpx2.HTTPError as exc:
                failure = CredentialError(f"could not reach the token endpoint ({type(exc).__name__})")
            else:
                try:
                    return parse_token_response(response, "the token endpoint")
                except CredentialError as exc:
                    if response.status_code != 429 and response.status_code < 500:
                        raise  # a refusal (wrong client, wrong grant, a malformed answer) is final
                    failure = exc
                wait = max(wait, min(_retry_after(response) or 0.0, self.MAX_RETRY_DELAY))
            if attempt == self._attempts:
                break
            log.info("token endpoint attempt %d of %d failed, retrying in %.2f s: %s", attempt, self._attempts,
                     wait, failure)
            await asyncio.sleep(wait)
        if self._attempts > 1:
            raise CredentialError(f"{failure} (after {self._attempts} attempts)")
        raise failure

    async def aclose(self) -> None:
        await self._http.aclose()


class CachedToken:
    """One token: fetched when missing or due for refresh, by one task at a time (no thundering herd).

    After a failed fetch the failure is kept for a cool-down (`cooldown` seconds, doubled after each
    further failure up to `max_cooldown`, reset by a success): the calls queued behind the failed fetch,
    and those arriving during the cool-down, get the same error at once instead of each asking the token
    endpoint again, so an endpoint that is down sees one request per cool-down, not one per call.
    """

    def __init__(self, *, cooldown: float = 1.0, max_cooldown: float = 30.0) -> None:
        self.current: AccessToken | None = None
        self._lock = asyncio.Lock()
        self._cooldown = cooldown
        self._max_cooldown = max_cooldown
        self._failures = 0
        self._failure: CredentialError | None = None
        self._retry_at = 0.0

    def fresh(self) -> str | None:
        token = self.current
        return token.value if token is not None and time.monotonic() < token.refresh_at else None

    async def get(self, fetch: Callable[[], Awaitable[AccessToken]]) -> str:
        if (value := self.fresh()) is not None:
            return value
        async with self._lock:
            if (value := self.fresh()) is not None:  # another task refreshed it while this one waited
                return value
            old = self.current
            still_valid = old is not None and time.monotonic() < old.expires_at
            if self._failure is not None and time.monotonic() < self._retry_at:
                if still_valid:
                    return old.value
                raise CredentialError(f"{self._failure}; next attempt in "
                                      f"{max(self._retry_at - time.monotonic(), 0.1):.1f} s")
            try:
                self.current = await fetch()
            except CredentialError as exc:
                self._failure = exc
                self._retry_at = time.monotonic() + min(self._cooldown * 2 ** self._failures, self._max_cooldown)
                self._failures += 1
                if still_valid:
                    log.warning("token refresh failed, the current token stays in use until it expires: %s", exc)
                    return old.value
                raise
            self._failure, self._failures = None, 0
            return self.current.value


def _target(scopes: tuple[str, ...], audience: str | None, resource: str | None) -> dict[str, str]:
    """The token request parameters naming what the token is for (RFC 6749 scope, RFC 8693 audience, RFC 8707
    resource)."""
    form = {}
    if scopes:
        form["scope"] = " ".join(scopes)
    if audience:
        form["audience"] = audience
    if resource:
        form["resource"] = resource
    return form


class ClientCredentials:
    """The gateway's own token (client credentials grant), shared by every call to the backend."""

    def __init__(self, endpoint: TokenEndpoint, *, scopes: tuple[str, ...] = (), audience: str | None = None,
                 resource: str | None = None) -> None:
        self._endpoint = endpoint
        self._form = {"grant_type": "client_credentials", **_target(scopes, audience, resource)}
        self._token = CachedToken()

    async def apply(self, request: OutboundRequest, identity: Identity) -> OutboundRequest:
        return set_bearer(request, await self._token.get(lambda: self._endpoint.fetch(self._form)))

    async def aclose(self) -> None:
        await self._endpoint.aclose()

    def secrets(self) -> tuple[str, ...]:
        token = self._token.current
        return (*self._endpoint.client.secrets(), *((token.value,) if token is not None else ()))


class TokenExchange:
    """RFC 8693: the caller's token exchanged for one meant for the backend, cached per caller and token.

    The cache key is the caller's subject plus a hash of their token, so a new sign-in gets a new exchange
    and a token is never handed to another caller. At most `max_cached` callers are kept (least recently
    used dropped first), so the cache cannot grow without bound.
    """

    def __init__(self, endpoint: TokenEndpoint, *, scopes: tuple[str, ...] = (), audience: str | None = None,
                 resource: str | None = None, max_cached: int = 1024) -> None:
        self._endpoint = endpoint
        self._form = {"grant_type": GRANT_TOKEN_EXCHANGE, "subject_token_type": ACCESS_TOKEN_TYPE,
                      "requested_token_type": ACCESS_TOKEN_TYPE, **_target(scopes, audience, resource)}
        self._cache: OrderedDict[tuple[str | None, str], CachedToken] = OrderedDict()
        self._max_cached = max_cached

    async def apply(self, request: OutboundRequest, identity: Identity) -> OutboundRequest:
        if identity.token is None:
            raise CredentialError("this backend needs the caller's sign-in, and the call carries no token to "
                                  "exchange")
        subject_token = identity.token.reveal()
        entry = self._entry((identity.subject, hashlib.sha256(subject_token.encode("utf-8")).hexdigest()))
        form = {**self._form, "subject_token": subject_token}
        return set_bearer(request, await entry.get(lambda: self._endpoint.fetch(form)))

    def _entry(self, key: tuple[str | None, str]) -> CachedToken:
        entry = self._cache.get(key)
        if entry is not None:
            self._cache.move_to_end(key)
            return entry
        now = time.monotonic()
        for stale in [k for k, v in self._cache.items() if v.current is not None and v.current.expires_at <= now]:
            del self._cache[stale]
        while len(self._cache) >= self._max_cached:
            self._cache.popitem(last=False)
        entry = self._cache[key] = CachedToken()
        return entry

    async def aclose(self) -> None:
        await self._endpoint.aclose()

    def secrets(self) -> tuple[str, ...]:
        tokens = tuple(e.current.value for e in self._cache.values() if e.current is not None)
        return (*self._endpoint.client.secrets(), *tokens)
