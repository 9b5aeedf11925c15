"""Inbound token checks: the gateway as an OAuth 2.1 resource server.

A JWT access token is verified against the issuer's JWKS: the algorithm must be on the configured
allow-list (asymmetric only, so neither `none` nor an HMAC keyed with a public key can pass), the
signature must verify with a published key, and `iss`, `aud`, `exp`, `nbf`, `iat` must hold. Tokens
the gateway obtains for its backends carry the backend as audience, so replaying one inbound fails
the audience check. Anything that is not a JWS compact token goes to RFC 7662 introspection when it
is configured. Every failure is an `AuthError` (answered with 401): an unreachable authorization
server means "could not verify", never a server error.

Signature checks and claim rules come from joserfc; this module only decides which keys to trust and
when to ask the authorization server again. Keys are fetched on first use and refreshed when a token
names an unknown `kid`, at most once per `jwks_min_refresh_seconds`, so random `kid`s sent by an
attacker cannot turn the gateway into a load generator against the authorization server.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote_plus, urlsplit, urlunsplit

import anyio
import httpx2
from joserfc import jws, jwt
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError, MissingClaimError
from joserfc.jwk import JWKRegistry, Key, KeySet
from joserfc.jwt import JWTClaimsRegistry

from gateway.auth.settings import AuthError, Identity, InboundAuth, Secret

log = logging.getLogger("gateway.auth")

JWKS_MAX_AGE_SECONDS = 3600
"""Keys are fetched again after this long even without an unknown `kid`, so a key the issuer withdrew stops working."""
VERIFIED_CACHE_ENTRIES = 10_000
AS_TIMEOUT = httpx2.Timeout(5.0, connect=3.0)
UNREACHABLE = "could not verify the token: the authorization server did not answer"
_SYMMETRIC_OR_NONE = ("none", "HS256", "HS384", "HS512")
_CLAIM_PROBLEMS = {
    "iss": "the token was issued by another authorization server",
    "aud": "the token is not meant for this resource",
    "exp": "the token has expired",
    "nbf": "the token is not valid yet",
    "iat": "the token was issued in the future",
}
_CLAIM_REASONS = {"iss": "bad_issuer", "aud": "bad_audience", "exp": "expired", "nbf": "not_yet_valid",
                  "iat": "issued_in_future"}


def _invalid(description: str, reason: str) -> AuthError:
    return AuthError("invalid_token", description, reason)


def metadata_urls(issuer: str) -> list[str]:
    """Where the issuer's metadata may live, in the order MCP clients try them (RFC 8414 §3.1, OIDC Discovery).

    For an issuer with a path the well-known segment goes between host and path; OpenID providers also
    serve it appended to the path (Entra ID, Keycloak).
    """
    scheme, netloc, path, _, _ = urlsplit(issuer)
    path = path.rstrip("/")
    inserted = [urlunsplit((scheme, netloc, f"/.well-known/{name}{path}", "", ""))
                for name in ("oauth-authorization-server", "openid-configuration")]
    if not path:
        return inserted
    return [*inserted, urlunsplit((scheme, netloc, f"{path}/.well-known/openid-configuration", "", ""))]


def _signing_keys(jwks: Any) -> KeySet:
    """The usable signature keys of a JWKS document; keys of unknown types or meant for encryption are skipped."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys = []
    for entry in jwks["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            keys.append(JWKRegistry.import_key(entry))
        except (JoseError, ValueError, TypeError) as exc:
            log.warning("JWKS: skipping key %r: %s", entry.get("kid"), exc)
    if not keys:  # garbage, not a withdrawal of every key: the keys already known stay in use
        raise ValueError("the JWKS document holds no usable signing key")
    return KeySet(keys)


class KeyCache:
    """The issuer's signing keys, fetched lazily and refreshed under a rate limit.

    Every fetch attempt, failed or not, starts the `min_refresh` window: an unknown `kid`, or an
    authorization server that is down, causes at most one request per window. A concurrent burst of
    requests shares one fetch. A failed fetch (down, slow past `AS_TIMEOUT`, an answer that is not a
    JWKS or holds no usable key) keeps the keys already known, so tokens they signed keep verifying and
    tokens signed by any other key fail closed.
    """

    def __init__(self, http: httpx2.AsyncClient, *, issuer: str, jwks_url: str | None, min_refresh: float,
                 clock: Callable[[], float], on_fetch: Callable[[str], None] | None = None) -> None:
        self._on_fetch = on_fetch or (lambda result: None)
        self._http = http
        self._issuer = issuer
        self._jwks_url = jwks_url
        self._min_refresh = min_refresh
        self._clock = clock
        self._keys = KeySet([])
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = anyio.Lock()
        self.generation = 0  # counts the key sets fetched: a token verified with an older set is checked again

    @property
    def loaded(self) -> bool:
        """Whether keys were ever fetched (else a missing key means the issuer could not be reached)."""
        return self._fetched_at is not None

    async def keys_for(self, kid: str | None, alg: str) -> list[Key]:
        """The keys that may have signed a token with this header; refreshed first when none match."""
        found = self._match(kid, alg)
        if self._should_fetch(found):
            async with self._lock:
                found = self._match(kid, alg)
                if self._should_fetch(found):
                    await self._fetch()
                    found = self._match(kid, alg)
        elif not found and self._lock.locked():
            # A fetch under way opened the window (the first one, at start-up, when a burst arrives): its
            # keys may be this token's, so wait for it rather than fail. A known key never waits.
            async with self._lock:
                found = self._match(kid, alg)
        return found

    def _should_fetch(self, found: list[Key]) -> bool:
        now = self._clock()
        if self._attempted_at is not None and now - self._attempted_at < self._min_refresh:
            return False
        return not found or self._fetched_at is None or now - self._fetched_at > JWKS_MAX_AGE_SECONDS

    def _match(self, kid: str | None, alg: str) -> list[Key]:
        return [key for key in self._keys
                if (kid is None or key.kid == kid) and key.get("alg") in (None, alg)]

    async def _fetch(self) -> None:
        self._attempted_at = self._clock()
        try:
            url = self._jwks_url or await self._discover()
            response = await self._http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            self._keys = _signing_keys(response.json())
        except (httpx2.HTTPError, ValueError) as exc:
            log.warning("could not fetch the signing keys of %s: %s", self._issuer, exc)
            self._on_fetch("failed")
            return
        self._on_fetch("ok")
        self._fetched_at = self._attempted_at
        self.generation += 1
        log.info("fetched %d signing keys of %s", len(self._keys.keys), self._issuer)

    async def _discover(self) -> str:
        """The `jwks_uri` from the issuer's metadata; the metadata must name this very issuer (RFC 8414 §3.3)."""
        for url in metadata_urls(self._issuer):
            response = await self._http.get(url, headers={"Accept": "application/json"})
            if response.status_code != 200:
                continue
            metadata = response.json()
            if not isinstance(metadata, dict) or metadata.get("issuer") != self._issuer:
                raise ValueError(f"{url} describes issuer {metadata.get('issuer')!r}, not {self._issuer!r}"
                                 if isinstance(metadata, dict) else f"{url} is not a metadata document")
            if isinstance(metadata.get("jwks_uri"), str):
                self._jwks_url = metadata["jwks_uri"]
                return self._jwks_url
            raise ValueError(f"{url} names no jwks_uri")
        raise ValueError(f"no authorization server metadata at {', '.join(metadata_urls(self._issuer))}")


class TokenVerifier:
    """Verifies bearer tokens for one resource; one instance per gateway, closed with `aclose()`."""

    def __init__(self, settings: InboundAuth, *, clock: Callable[[], float] = time.time,
                 on_fetch: Callable[[str], None] | None = None) -> None:
        """`on_fetch` is told each JWKS fetch's result (`ok`, `failed`)."""
        if settings.issuer is None or settings.resource_url is None:
            raise ValueError("server.auth: mode oauth needs issuer and resource_url")
        refused = sorted(set(settings.algorithms) & set(_SYMMETRIC_OR_NONE))
        if refused:
            raise ValueError(f"server.auth.algorithms: {', '.join(refused)} cannot be accepted (only asymmetric)")
        self.settings = settings
        self.audiences = settings.audiences or (settings.resource_url,)
        self._clock = clock
        self._http = httpx2.AsyncClient(timeout=AS_TIMEOUT, follow_redirects=False, trust_env=False)
        self._keys = KeyCache(self._http, issuer=settings.issuer, jwks_url=settings.jwks_url,
                              min_refresh=settings.jwks_min_refresh_seconds, clock=clock, on_fetch=on_fetch)
        # SHA-256 of a token -> (identity, valid until, the JWKS generation it was verified with; None: introspected)
        self._verified: dict[str, tuple[Identity, float, int | None]] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def verify(self, token: str) -> Identity:
        """The identity `token` proves; `AuthError` when it proves nothing.

        A token once verified is remembered (keyed by its SHA-256, never the token itself) until it
        expires: a JWT at most for `JWKS_MAX_AGE_SECONDS` and only while the key set it was verified with
        is current (after a JWKS fetch it is checked again, so a withdrawn key stops working at once), an
        introspected token for `introspection_cache_seconds`. A signature check on every call cost a third
        of the throughput.
        """
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        cached = self._verified.get(digest)
        if cached is not None and cached[1] > now and cached[2] in (None, self._keys.generation):
            return cached[0]
        generation = None
        if token.count(".") == 2:
            identity = await self._verify_jwt(token)
            generation = self._keys.generation  # the key set it was verified with (a fetch may have happened)
            until = now + JWKS_MAX_AGE_SECONDS
        elif self.settings.introspection_url:
            identity = await self._introspect(token)
            until = now + self.settings.introspection_cache_seconds
        else:
            raise _invalid("the token is not a JWT", "malformed")
        expires = identity.claims.get("exp")
        if isinstance(expires, int | float):
            until = min(until, expires)
        self._remember(digest, (identity, until, generation), now)
        return identity

    async def _verify_jwt(self, token: str) -> Identity:
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeError):
            raise _invalid("the token is malformed", "malformed") from None
        alg = header.get("alg")
        if alg not in self.settings.algorithms:
            # never echo what the caller sent
            raise _invalid("the token's signing algorithm is not accepted", "bad_algorithm")
        kid = header.get("kid")
        keys = await self._keys.keys_for(kid if isinstance(kid, str) else None, alg)
        if not keys:
            raise (_invalid("the token's signing key is unknown", "unknown_key") if self._keys.loaded
                   else _invalid(UNREACHABLE, "unreachable"))
        claims = self._signed_claims(token, keys)
        self._check_claims(claims, essential=("iss", "aud", "exp"))
        return self._identity(token, claims)

    def _signed_claims(self, token: str, keys: list[Key]) -> dict[str, Any]:
        for key in keys:
            try:
                return jwt.decode(token, key, algorithms=list(self.settings.algorithms)).claims
            except (JoseError, ValueError):
                continue
        raise _invalid("the token's signature is invalid", "bad_signature")

    def _check_claims(self, claims: Mapping[str, Any], *, essential: tuple[str, ...]) -> None:
        """iss, aud and the time claims; `essential` ones must be present (introspection answers may omit some)."""
        rules: dict[str, Any] = {name: {"essential": True} for name in essential}
        rules["iss"] = {**rules.get("iss", {}), "value": self.settings.issuer}
        rules["aud"] = {**rules.get("aud", {}), "values": list(self.audiences)}
        registry = JWTClaimsRegistry(now=int(self._clock()), leeway=self.settings.leeway_seconds, **rules)
        try:
            registry.validate(dict(claims))
        except MissingClaimError as exc:
            raise _invalid(f"the token lacks the {exc.claim} claim", "missing_claim") from None
        except ExpiredTokenError:
            raise _invalid(_CLAIM_PROBLEMS["exp"], "expired") from None
        except ClaimError as exc:
            raise _invalid(_CLAIM_PROBLEMS.get(exc.claim, f"the token's {exc.claim} claim is invalid"),
                           _CLAIM_REASONS.get(exc.claim, "bad_claim")) from None

    def _identity(self, token: str, claims: dict[str, Any]) -> Identity:
        subject = claims.get("sub")
        client_id = claims.get("client_id") or claims.get("azp")
        return Identity(
            subject=subject if isinstance(subject, str) else None,
            client_id=client_id if isinstance(client_id, str) else None,
            scopes=_scopes(claims),
            token=Secret(token, "bearer token"),
            claims=claims,
        )

    async def _introspect(self, token: str) -> Identity:
        """RFC 7662: the authorization server says whether the token is active, and its claims."""
        answer = await self._ask_introspection(token)
        if answer.get("active") is not True:
            raise _invalid("the token is not active", "inactive")
        self._check_claims(answer, essential=())
        return self._identity(token, answer)

    async def _ask_introspection(self, token: str) -> dict[str, Any]:
        settings = self.settings
        assert settings.introspection_url is not None
        auth = None
        if settings.introspection_client_id is not None:
            secret = settings.introspection_client_secret.reveal() if settings.introspection_client_secret else ""
            # RFC 6749 §2.3.1: both parts are form-encoded before they are joined
            auth = httpx2.BasicAuth(quote_plus(settings.introspection_client_id), quote_plus(secret))
        try:
            response = await self._http.post(settings.introspection_url, auth=auth,
                                             data={"token": token, "token_type_hint": "access_token"},
                                             headers={"Accept": "application/json"})
            response.raise_for_status()
            answer = response.json()
        except (httpx2.HTTPError, ValueError) as exc:
            log.warning("token introspection at %s failed: %s", settings.introspection_url, exc)
            raise _invalid(UNREACHABLE, "unreachable") from None
        if not isinstance(answer, dict):
            raise _invalid(UNREACHABLE, "unreachable")
        return answer

    def _remember(self, digest: str, entry: tuple[Identity, float, int | None], now: float) -> None:
        if len(self._verified) >= VERIFIED_CACHE_ENTRIES:
            self._verified = {k: v for k, v in self._verified.items() if v[1] > now}
            if len(self._verified) >= VERIFIED_CACHE_ENTRIES:
                self._verified.pop(next(iter(self._verified)))
        if entry[1] > now:
            self._verified[digest] = entry


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """`scope` (RFC 9068: space-separated) or `scp` (a list, or a space-separated string as Entra ID sends it)."""
    value = claims.get("scope", claims.get("scp"))
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()
