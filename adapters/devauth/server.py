"""A small, real OAuth 2.0 authorization server for local trials and the test suite (not for production).

It publishes RFC 8414 / OpenID metadata and a JWKS, issues JWT access tokens at its token endpoint
(client credentials, RFC 8693 token exchange) with client_secret_basic, client_secret_post or
private_key_jwt (RFC 7523) client authentication, and answers RFC 7662 introspection for its JWTs and
for opaque tokens. Keys and signatures come from joserfc. Tests also mint tokens directly with
`issue()`, including the forgeries of the attack matrix (`alg="none"`, `alg="HS256"` keyed with the
public key), and inspect what the server saw: `requests` (token and introspection calls), `hits`
(every path), `tokens_issued` (per grant type).

    with AuthServer(audience="http://127.0.0.1:8080/mcp") as auth:   # served on a free port
        token = auth.issue(scopes=["pets:read"])

`gateway demo --auth` runs it beside the petstore example (`AuthServer(port=9100).app` under uvicorn).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import uvicorn
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, Key, KeySet, OKPKey, RSAKey
from joserfc.jwt import JWTClaimsRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CLIENT_CREDENTIALS = "client_credentials"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
SUBJECT_TOKEN_TYPES = (ACCESS_TOKEN_TYPE, "urn:ietf:params:oauth:token-type:jwt")
SIGNING_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "EdDSA")
ASSERTION_ALGS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
_FAMILY = {"ES256": "EC", "EdDSA": "OKP"}  # every other signing alg uses the RSA key


@dataclass
class RegisteredClient:
    client_id: str
    secret: str | None
    public_jwk: dict[str, Any] | None
    token_lifetime: int
    audience: str | None


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _generate_keys() -> dict[str, Key]:
    suffix = secrets.token_hex(4)
    return {
        "RSA": RSAKey.generate_key(2048, parameters={"kid": f"rsa-{suffix}", "use": "sig"}),
        "EC": ECKey.generate_key("P-256", parameters={"kid": f"ec-{suffix}", "use": "sig"}),
        "OKP": OKPKey.generate_key("Ed25519", parameters={"kid": f"okp-{suffix}", "use": "sig"}),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """An ASGI app served by a real uvicorn on 127.0.0.1, in its own thread and event loop."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False, lifespan="auto"))
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class AuthServer:
    """Context manager: starts the server on enter, stops it on exit. `url` is the issuer.

    `issuer_path` gives the issuer a path (`http://127.0.0.1:PORT/tenant`), to exercise RFC 8414 path
    insertion; `discovery` chooses which metadata documents are served ("oauth-authorization-server"
    path-inserted, "openid-configuration" appended to the issuer as OpenID providers do).
    """

    def __init__(self, *, audience: str | None = None, issuer_path: str = "",
                 discovery: Iterable[str] = ("oauth-authorization-server", "openid-configuration"),
                 port: int | None = None) -> None:
        self.default_audience = audience
        self.requests: list[dict[str, Any]] = []
        self.hits: Counter[str] = Counter()
        self.tokens_issued: Counter[str] = Counter()
        self._clients: dict[str, RegisteredClient] = {}
        self._opaque: dict[str, dict[str, Any]] = {}
        self._seen_assertions: set[str] = set()
        self._keys = _generate_keys()
        self.app = self._app(issuer_path.rstrip("/"), tuple(discovery))
        self.port = port or free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self._thread: ServerThread | None = None
        self.url = self.origin + issuer_path.rstrip("/")
        self.token_endpoint = f"{self.origin}/token"
        self.introspection_endpoint = f"{self.origin}/introspect"
        self.jwks_uri = f"{self.origin}/jwks"

    def __enter__(self) -> AuthServer:
        self._thread = ServerThread(self.app, self.port).__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._thread is not None:
            self._thread.__exit__(*exc)

    # -- what tests call --------------------------------------------------------------------------------

    def issue(self, *, subject: str = "alice", audience: str | list[str] | None = None, scopes: Iterable[str] = (),
              expires_in: int = 300, not_before: int | None = None, issued_at: int | None = None,
              client_id: str = "mcp-client", kid: str | None = None, alg: str = "RS256",
              extra_claims: Mapping[str, Any] | None = None, headers: Mapping[str, Any] | None = None) -> str:
        """A signed JWT access token. `audience` defaults to the server's `audience`; `kid` overrides the
        header's key id (the signature still uses the current key); an `extra_claims` value of None removes
        that claim. `alg="none"` gives an unsigned token, `alg="HS256"` the key-confusion forgery: an HMAC
        keyed with the RSA public key's PEM."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url, "sub": subject, "client_id": client_id, "jti": secrets.token_hex(8),
            "iat": now if issued_at is None else issued_at, "exp": now + expires_in,
        }
        audience = audience if audience is not None else self.default_audience
        if audience is not None:
            claims["aud"] = audience
        if scopes:
            claims["scope"] = " ".join(scopes)
        if not_before is not None:
            claims["nbf"] = not_before
        for name, value in (extra_claims or {}).items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return self._sign(claims, alg=alg, kid=kid, headers=headers)

    def issue_opaque(self, *, subject: str = "alice", audience: str | None = None, scopes: Iterable[str] = (),
                     active: bool = True, client_id: str = "mcp-client", expires_in: int = 300) -> str:
        """An opaque token only introspection can tell anything about."""
        token = secrets.token_urlsafe(32)
        now = int(time.time())
        audience = audience if audience is not None else self.default_audience
        self._opaque[token] = {
            "active": active, "iss": self.url, "sub": subject, "client_id": client_id, "scope": " ".join(scopes),
            "iat": now, "exp": now + expires_in, "token_type": "Bearer",
            **({"aud": audience} if audience is not None else {}),
        }
        return token

    def revoke(self, token: str) -> None:
        """An opaque token becomes inactive."""
        self._opaque[token]["active"] = False

    def register_client(self, client_id: str, secret: str | None = None, public_jwk: dict[str, Any] | None = None,
                        token_lifetime: int = 300, audience: str | None = None) -> None:
        """A client that authenticates with `secret` (basic or post) or with assertions signed by `public_jwk`'s key.
        `audience` is the `aud` of its client-credentials tokens when the request names no audience/resource."""
        self._clients[client_id] = RegisteredClient(client_id, secret, public_jwk, token_lifetime, audience)

    def rotate_keys(self) -> None:
        """New signing keys (new kids); the old ones leave the JWKS and no longer verify anything here."""
        self._keys = _generate_keys()

    @property
    def public_pem(self) -> bytes:
        return self._keys["RSA"].as_pem(private=False)

    # -- signing and checking ---------------------------------------------------------------------------

    def _sign(self, claims: dict[str, Any], *, alg: str, kid: str | None, headers: Mapping[str, Any] | None) -> str:
        header: dict[str, Any] = {"typ": "at+jwt", "alg": alg}
        if alg == "none" or alg.startswith("HS"):
            header.update(headers or {})
            signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
            if alg == "none":
                return signing_input + "."
            digest = getattr(hashlib, "sha" + alg[2:])
            mac = hmac.new(self.public_pem, signing_input.encode("ascii"), digest).digest()
            return f"{signing_input}.{_b64(mac)}"
        key = self._keys[_FAMILY.get(alg, "RSA")]
        header["kid"] = kid or key.kid
        header.update(headers or {})
        return jwt.encode(header, claims, key, algorithms=[alg])

    def _live(self, token: str) -> dict[str, Any] | None:
        """The claims of a live token this server issued (opaque, or a JWT under a current key), else None."""
        record = self._opaque.get(token)
        if record is not None:
            return record if record["active"] and record["exp"] > time.time() else None
        try:
            claims = jwt.decode(token, KeySet(list(self._keys.values())), algorithms=SIGNING_ALGS).claims
            JWTClaimsRegistry(iss={"essential": True, "value": self.url}, exp={"essential": True}).validate(claims)
        except (JoseError, ValueError):
            return None
        return claims

    def _authenticate(self, request: Request, form: Mapping[str, str]) -> RegisteredClient:
        """RFC 6749 §2.3: client_secret_basic, client_secret_post, or private_key_jwt (RFC 7523)."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                raise OAuthError("invalid_client", "malformed basic credentials", 401) from None
            return self._check_secret(unquote_plus(client_id), unquote_plus(secret))
        if form.get("client_assertion_type") == JWT_BEARER_ASSERTION:
            return self._check_assertion(form.get("client_assertion", ""), form.get("client_id"))
        if "client_id" in form and "client_secret" in form:
            return self._check_secret(form["client_id"], form["client_secret"])
        raise OAuthError("invalid_client", "client authentication is required", 401)

    def _check_secret(self, client_id: str, secret: str) -> RegisteredClient:
        client = self._clients.get(client_id)
        if client is None or client.secret is None or not hmac.compare_digest(client.secret, secret):
            raise OAuthError("invalid_client", "unknown client or wrong secret", 401)
        return client

    def _check_assertion(self, assertion: str, claimed_id: str | None) -> RegisteredClient:
        try:
            unverified = json.loads(base64.urlsafe_b64decode(assertion.split(".")[1] + "=="))
        except (ValueError, IndexError):
            raise OAuthError("invalid_client", "malformed client assertion", 401) from None
        client = self._clients.get(unverified.get("iss")) if isinstance(unverified, dict) else None
        if client is None or client.public_jwk is None or (claimed_id and claimed_id != client.client_id):
            raise OAuthError("invalid_client", "unknown client", 401)
        try:
            claims = jwt.decode(assertion, JWKRegistry.import_key(client.public_jwk), algorithms=ASSERTION_ALGS).claims
            JWTClaimsRegistry(
                iss={"essential": True, "value": client.client_id}, sub={"essential": True, "value": client.client_id},
                aud={"essential": True, "values": [self.token_endpoint, self.url]}, exp={"essential": True},
                jti={"essential": True},
            ).validate(claims)
        except (JoseError, ValueError) as exc:
            raise OAuthError("invalid_client", f"client assertion rejected: {exc}", 401) from None
        if claims["jti"] in self._seen_assertions:
            raise OAuthError("invalid_client", "client assertion replayed", 401)
        self._seen_assertions.add(claims["jti"])
        return client

    # -- endpoints --------------------------------------------------------------------------------------

    def _app(self, issuer_path: str, discovery: tuple[str, ...]) -> Starlette:
        async def metadata(request: Request) -> JSONResponse:
            self.hits[request.url.path] += 1
            return JSONResponse({
                "issuer": self.url,
                "jwks_uri": self.jwks_uri,
                "token_endpoint": self.token_endpoint,
                "introspection_endpoint": self.introspection_endpoint,
                "grant_types_supported": [CLIENT_CREDENTIALS, TOKEN_EXCHANGE],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post",
                                                          "private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGS),
                "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post",
                                                                  "private_key_jwt"],
                "response_types_supported": [],
            })

        async def jwks(request: Request) -> JSONResponse:
            self.hits[request.url.path] += 1
            return JSONResponse(KeySet(list(self._keys.values())).as_dict(private=False))

        async def token(request: Request) -> JSONResponse:
            return await self._endpoint(request, self._token)

        async def introspect(request: Request) -> JSONResponse:
            return await self._endpoint(request, self._introspect)

        paths = {"oauth-authorization-server": f"/.well-known/oauth-authorization-server{issuer_path}",
                 "openid-configuration": f"{issuer_path}/.well-known/openid-configuration"}
        routes = [Route(paths[name], metadata) for name in discovery]
        routes += [Route("/jwks", jwks), Route("/token", token, methods=["POST"]),
                   Route("/introspect", introspect, methods=["POST"])]
        return Starlette(routes=routes)

    async def _endpoint(self, request: Request, handler: Any) -> JSONResponse:
        self.hits[request.url.path] += 1
        form = {key: value for key, value in (await request.form()).multi_items()}
        self.requests.append({"path": request.url.path, "form": form,
                              "auth_header": request.headers.get("authorization")})
        try:
            client = self._authenticate(request, form)
            return JSONResponse(handler(client, form), headers={"Cache-Control": "no-store"})
        except OAuthError as exc:
            return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=exc.status)

    def _token(self, client: RegisteredClient, form: Mapping[str, str]) -> dict[str, Any]:
        grant = form.get("grant_type")
        requested_aud = form.get("audience") or form.get("resource")
        if grant == CLIENT_CREDENTIALS:
            subject, scope, audience = client.client_id, form.get("scope", ""), requested_aud or client.audience
            extra: dict[str, Any] = {}
        elif grant == TOKEN_EXCHANGE:
            subject_claims = self._subject(form)
            subject, audience = subject_claims["sub"], requested_aud or client.audience
            scope = form.get("scope") or subject_claims.get("scope", "")
            extra = {"act": {"sub": client.client_id}}
        else:
            raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")
        now = int(time.time())
        claims = {"iss": self.url, "sub": subject, "client_id": client.client_id, "iat": now,
                  "exp": now + client.token_lifetime, "jti": secrets.token_hex(8), **extra}
        if audience:
            claims["aud"] = audience
        if scope:
            claims["scope"] = scope
        self.tokens_issued[grant] += 1
        answer = {"access_token": self._sign(claims, alg="RS256", kid=None, headers=None), "token_type": "Bearer",
                  "expires_in": client.token_lifetime, "scope": scope}
        if grant == TOKEN_EXCHANGE:
            answer["issued_token_type"] = ACCESS_TOKEN_TYPE
        return answer

    def _subject(self, form: Mapping[str, str]) -> dict[str, Any]:
        """RFC 8693 §2.1: the subject token must be one this server issued and still live."""
        if form.get("subject_token_type") not in SUBJECT_TOKEN_TYPES or not form.get("subject_token"):
            raise OAuthError("invalid_request", "subject_token and a supported subject_token_type are required")
        claims = self._live(form["subject_token"])
        if not claims:
            raise OAuthError("invalid_grant", "the subject token is not valid here")
        return claims

    def _introspect(self, client: RegisteredClient, form: Mapping[str, str]) -> dict[str, Any]:
        claims = self._live(form.get("token", ""))
        return {"active": True, "token_type": "Bearer", **claims} if claims else {"active": False}
