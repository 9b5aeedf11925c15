"""The gateway's own credentials towards each backend, and TLS, with real parts: the test authorization
server (tests/auth_server.py), a recording upstream on 127.0.0.1 that keeps every request it receives, fake
Entra token and managed identity endpoints on 127.0.0.1, a TLS upstream with certificates made by trustme,
and the gateway's real call path (`call_tool` -> `Backend.send`) or the gateway served over MCP.

The rule checked everywhere: the caller's inbound token reaches the upstream only with `passthrough`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx2
import pytest
import trustme
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from joserfc import jwt
from joserfc.jwk import RSAKey
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from adapters.devauth import TOKEN_EXCHANGE, AuthServer
from gateway.auth.oauth import AccessToken, CachedToken
from gateway.auth.provider import CredentialError, OutboundRequest
from gateway.auth.secrets import resolve_secret
from gateway.auth.settings import ANONYMOUS, Identity, InboundAuth, Secret, TlsSettings, UpstreamCredential
from gateway.auth.tls import ssl_context
from gateway.auth.upstream import build_provider
from gateway.calls.forward import Backend, UpstreamError
from gateway.calls.pipeline import call_tool
from gateway.calls.request import UpstreamRequest
from gateway.config import config_from_args
from gateway.errors import ConfigError
from gateway.observability.metrics import Metrics
from gateway.runtime import Gateway, load_gateway, open_backends
from gateway.server import create_app
from tests.conftest import ServerThread, free_port
from tests.gateway_harness import text_of

pytestmark = pytest.mark.anyio

OK = {"200": {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}}
SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "Recorder", "version": "1"},
    "paths": {"/echo/{item}": {
        "get": {
            "operationId": "echo",
            "parameters": [
                {"name": "item", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "q", "in": "query", "schema": {"type": "string"}},
                {"name": "api_key", "in": "query", "schema": {"type": "string"}},
                {"name": "X-Api-Key", "in": "header", "schema": {"type": "string"}},
                {"name": "session", "in": "cookie", "schema": {"type": "string"}},
            ],
            "responses": OK,
        },
        "post": {
            "operationId": "submit",
            "parameters": [{"name": "item", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"content": {"application/json": {
                "schema": {"type": "object", "properties": {"text": {"type": "string"}}}}}},
            "responses": OK,
        },
    }},
}
API_KEY = "k3y-&=+/ value"  # needs encoding in a query; fine in a header
CALLER = "caller-token"  # stands for the inbound token where no real one is needed


@dataclass
class Recorder:
    """A Starlette upstream that records every request as it arrived on the wire."""

    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def record(request: Request) -> JSONResponse:
            self.requests.append({
                "method": request.method,
                "path": request.scope["raw_path"].decode("ascii"),
                "query": request.scope["query_string"].decode("ascii"),
                "headers": [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]],
                "body": await request.body(),
            })
            return JSONResponse({"ok": True})

        return Starlette(routes=[Route("/{path:path}", record, methods=["GET", "POST"])])

    def header(self, name: str, index: int = -1) -> str | None:
        values = [v for k, v in self.requests[index]["headers"] if k == name.lower()]
        assert len(values) <= 1, values
        return values[0] if values else None

    def everything(self) -> str:
        """All that reached the upstream, as one text: to check what never did."""
        return json.dumps([[r["path"], r["query"], r["headers"], r["body"].decode()] for r in self.requests])


@pytest.fixture(scope="module")
def recorder() -> Iterator[tuple[Recorder, str]]:
    rec = Recorder()
    with ServerThread(rec.app()) as server:
        yield rec, server.url


@pytest.fixture
def upstream(recorder) -> tuple[Recorder, str]:
    rec, url = recorder
    rec.requests.clear()
    return rec, url


@pytest.fixture(scope="module")
def auth() -> Iterator[AuthServer]:
    with AuthServer(audience="https://gateway.example/mcp") as server:
        yield server


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "recorder.json"
    path.write_text(json.dumps(SPEC), encoding="utf-8")
    return path


def quiet_http_client_logs(caplog) -> None:
    """Capture everything at DEBUG, except the HTTP client's per-request lines, which carry upstream URLs and
    which the CLI keeps at WARNING. (`set_level` also sets the capture handler's level: DEBUG goes last.)"""
    for noisy in ("httpx2", "httpcore2"):
        caplog.set_level(logging.WARNING, logger=noisy)
    caplog.set_level(logging.DEBUG)


def caller(token: str | None, subject: str = "alice") -> Identity:
    return Identity(subject=subject, client_id="mcp-client", scopes=frozenset(),
                    token=Secret(token) if token is not None else None)


def claims_of(token: str) -> dict[str, Any]:
    """A JWT's payload, unverified (the upstream only needs to tell which token it got)."""
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def bearer(rec: Recorder, index: int = -1) -> str:
    header = rec.header("authorization", index)
    assert header is not None and header.startswith("Bearer "), header
    return header.removeprefix("Bearer ")


NO_TLS = TlsSettings()


def gateway_for(spec: Path, upstream_url: str, credential: UpstreamCredential, tls: TlsSettings = NO_TLS,
                **server: Any) -> Gateway:
    config = config_from_args(spec=str(spec), upstream=upstream_url)
    config = replace(config, server=replace(config.server, **server),
                     backends=(replace(config.backends[0], auth=credential, tls=tls),))
    return load_gateway(config)


@contextlib.asynccontextmanager
async def backend_for(spec: Path, upstream_url: str, credential: UpstreamCredential,
                      tls: TlsSettings = NO_TLS) -> AsyncIterator[tuple[Gateway, Backend]]:
    gw = gateway_for(spec, upstream_url, credential, tls)
    backend = open_backends(gw)["default"]
    try:
        yield gw, backend
    finally:
        await backend.aclose()


async def echo(gw: Gateway, backend: Backend, identity: Identity = ANONYMOUS, **arguments: Any):
    return await call_tool(gw.tools["echo"], {"item": "a b", **arguments}, backend, legacy=False, identity=identity)


# -- secret references -------------------------------------------------------------------------------------


def test_env_reference_resolves_and_never_prints(monkeypatch):
    monkeypatch.setenv("UPSTREAM_KEY", "s3cr3t-from-env")
    secret = resolve_secret("${UPSTREAM_KEY}", "gateway.yaml:7")
    assert secret.reveal() == "s3cr3t-from-env"
    assert "s3cr3t" not in repr(secret) + str(secret) + f"{secret}"


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_missing_env_variable_is_named(monkeypatch, value):
    monkeypatch.delenv("UPSTREAM_KEY", raising=False)
    if value is not None:
        monkeypatch.setenv("UPSTREAM_KEY", value)
    with pytest.raises(ConfigError) as raised:
        resolve_secret("${UPSTREAM_KEY}", "gateway.yaml:7")
    assert raised.value.where == "gateway.yaml:7"
    assert "UPSTREAM_KEY" in raised.value.message
    assert ("is not set" if value is None else "is empty") in raised.value.message


def test_file_reference_strips_one_trailing_newline(tmp_path):
    (tmp_path / "key").write_text("line-one\nline-two\n\n", encoding="utf-8")
    (tmp_path / "crlf").write_bytes(b"windows-secret\r\n")
    assert resolve_secret(f"file:{tmp_path / 'key'}", "here").reveal() == "line-one\nline-two\n"
    assert resolve_secret(f"file:{tmp_path / 'crlf'}", "here").reveal() == "windows-secret"


def test_unreadable_file_is_named(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match=r"cannot read the secret file .*nope"):
        resolve_secret(f"file:{missing}", "here")
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is empty"):
        resolve_secret(f"file:{tmp_path / 'empty'}", "here")


@pytest.mark.parametrize("reference", ["hunter2-inline", "$UPSTREAM_KEY", "${UPSTREAM KEY}", "file:", "env:KEY"])
def test_inline_secrets_are_refused_without_echoing_them(reference):
    with pytest.raises(ConfigError) as raised:
        resolve_secret(reference, "gateway.yaml:9")
    assert raised.value.message == "secrets must be given as ${ENV_VAR} or file:/path, never inline"


# -- static credentials, as the upstream receives them ------------------------------------------------------


async def test_api_key_header_replaces_any_argument_of_that_name(spec_file, upstream):
    rec, url = upstream
    credential = UpstreamCredential(type="api_key", name="X-Api-Key", location="header", value=Secret(API_KEY))
    async with backend_for(spec_file, url, credential) as (gw, backend):
        result = await echo(gw, backend, caller(CALLER), **{"X-Api-Key": "chosen-by-the-model"})
    assert not result.is_error, text_of(result)
    assert rec.header("x-api-key") == API_KEY
    assert rec.header("authorization") is None
    assert CALLER not in rec.everything() and "chosen-by-the-model" not in rec.everything()


async def test_api_key_query_is_encoded_and_replaces_the_argument(spec_file, upstream):
    rec, url = upstream
    credential = UpstreamCredential(type="api_key", name="api_key", location="query", value=Secret(API_KEY))
    async with backend_for(spec_file, url, credential) as (gw, backend):
        result = await echo(gw, backend, caller(CALLER), q="x y", api_key="chosen-by-the-model")
    assert not result.is_error, text_of(result)
    assert parse_qsl(rec.requests[-1]["query"]) == [("q", "x y"), ("api_key", API_KEY)]
    assert rec.requests[-1]["path"] == "/echo/a%20b"
    assert CALLER not in rec.everything() and "chosen-by-the-model" not in rec.everything()


async def test_api_key_cookie_joins_the_cookie_parameters(spec_file, upstream):
    rec, url = upstream
    credential = UpstreamCredential(type="api_key", name="key", location="cookie", value=Secret("c00kie-key"))
    async with backend_for(spec_file, url, credential) as (gw, backend):
        result = await echo(gw, backend, caller(CALLER), session="s-1")
        plain = await echo(gw, backend)
    assert not (result.is_error or plain.is_error)
    assert rec.header("cookie", 0) == "session=s-1; key=c00kie-key"
    assert rec.header("cookie", 1) == "key=c00kie-key"
    assert CALLER not in rec.everything()


async def test_basic_and_static_bearer_arrive(spec_file, upstream):
    rec, url = upstream
    basic = UpstreamCredential(type="basic", username="svc", password=Secret("pa:ss wörd"))
    async with backend_for(spec_file, url, basic) as (gw, backend):
        assert not (await echo(gw, backend, caller(CALLER))).is_error
    scheme, encoded = rec.header("authorization").split(" ")
    assert scheme == "Basic" and base64.b64decode(encoded).decode() == "svc:pa:ss wörd"
    static = UpstreamCredential(type="bearer", value=Secret("static-token-1"))
    async with backend_for(spec_file, url, static) as (gw, backend):
        assert not (await echo(gw, backend, caller(CALLER))).is_error
    assert bearer(rec) == "static-token-1"
    assert CALLER not in rec.everything()


async def test_no_credentials_sends_no_authorization_even_for_a_signed_in_caller(spec_file, upstream):
    rec, url = upstream
    async with backend_for(spec_file, url, UpstreamCredential()) as (gw, backend):
        assert not (await echo(gw, backend, caller(CALLER))).is_error
        assert backend.secrets() == ()
    assert rec.header("authorization") is None and CALLER not in rec.everything()


async def test_passthrough_forwards_the_callers_token_and_needs_one(spec_file, upstream, caplog):
    rec, url = upstream
    with caplog.at_level(logging.WARNING, logger="gateway.runtime"):
        async with backend_for(spec_file, url, UpstreamCredential(type="passthrough")) as (gw, backend):
            assert not (await echo(gw, backend, caller(CALLER))).is_error
            anonymous = await echo(gw, backend)
    assert bearer(rec) == CALLER and len(rec.requests) == 1
    assert anonymous.is_error and "this backend needs the caller's sign-in" in text_of(anonymous)
    assert any("passthrough" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


# -- settings checked at start ------------------------------------------------------------------------------


@pytest.mark.parametrize(("credential", "expected"), [
    (UpstreamCredential(type="api_key", value=Secret("v")), "needs `name`"),
    (UpstreamCredential(type="basic", username="u"), "needs `password`"),
    (UpstreamCredential(type="oauth_client_credentials", client_id="c"), "needs `token_url`"),
    (UpstreamCredential(type="oauth_client_credentials", token_url="https://as.example/token", client_id="c"),
     "needs `client_secret` or `private_key`"),
    (UpstreamCredential(type="aws_sigv4", region="eu-west-1"), "needs `service`"),
    (UpstreamCredential(type="azure_entra", scopes=("api://x/.default",), tenant_id="t"),
     "needs `tenant_id`, `client_id` and `client_secret` or `certificate_path`"),
    (UpstreamCredential(type="azure_entra", managed_identity=True, scopes=("a/.default", "b/.default")),
     "exactly one scope"),
])
def test_incomplete_settings_are_refused_at_start(credential, expected):
    with pytest.raises(ConfigError) as raised:
        build_provider(credential, backend="orders", where="gateway.yaml:12")
    assert raised.value.where == "gateway.yaml:12"
    assert "backend 'orders'" in raised.value.message and expected in raised.value.message


def test_client_secrets_do_not_travel_over_plain_http():
    credential = UpstreamCredential(type="oauth_client_credentials", token_url="http://as.example/token",
                                    client_id="c", client_secret=Secret("cs-1"))
    with pytest.raises(ConfigError, match="must be an https URL"):
        build_provider(credential, backend="orders")


@pytest.mark.parametrize(("location", "value"), [("cookie", "has;semicolon-v4lue"), ("header", "line\nbreak-v4lue")])
def test_a_key_that_cannot_be_sent_is_refused_without_echoing_it(location, value):
    credential = UpstreamCredential(type="api_key", name="k", location=location, value=Secret(value))
    with pytest.raises(ConfigError) as raised:
        build_provider(credential, backend="orders")
    assert "v4lue" not in str(raised.value)


def test_a_bad_private_key_is_refused_without_echoing_it():
    credential = UpstreamCredential(type="oauth_client_credentials", token_url="https://as.example/token",
                                    client_id="c", private_key=Secret("-----BEGIN NOT A KEY----- pr1vate"))
    with pytest.raises(ConfigError, match="is not an unencrypted PEM private key") as raised:
        build_provider(credential, backend="orders")
    assert "pr1vate" not in str(raised.value)


# -- OAuth client credentials against the real authorization server -----------------------------------------


def client_credentials(auth: AuthServer, client_id: str, secret: str = "cc-secret", **changes: Any
                       ) -> UpstreamCredential:
    return UpstreamCredential(type="oauth_client_credentials", token_url=auth.token_endpoint, client_id=client_id,
                              client_secret=Secret(secret), **changes)


def token_requests(auth: AuthServer, client_id: str) -> list[dict[str, Any]]:
    def client_of(request: dict[str, Any]) -> str | None:
        header = request["auth_header"] or ""
        if header.startswith("Basic "):
            return base64.b64decode(header[6:]).decode().partition(":")[0]
        return request["form"].get("client_id")

    return [r for r in auth.requests if r["path"] == "/token" and client_of(r) == client_id]


async def test_client_credentials_token_is_fetched_once_for_many_concurrent_calls(spec_file, upstream, auth):
    rec, url = upstream
    auth.register_client("cc-once", "cc-secret")
    credential = client_credentials(auth, "cc-once", scopes=("orders:read", "orders:write"),
                                    audience="https://orders.example", resource="https://orders.example/api")
    async with backend_for(spec_file, url, credential) as (gw, backend):
        results = await asyncio.gather(*(echo(gw, backend, caller(CALLER)) for _ in range(20)))
        secrets = backend.secrets()
    assert not any(r.is_error for r in results)
    [request] = token_requests(auth, "cc-once")
    assert request["form"] == {"grant_type": "client_credentials", "scope": "orders:read orders:write",
                               "audience": "https://orders.example", "resource": "https://orders.example/api"}
    assert request["auth_header"].startswith("Basic ")  # client_secret_basic: the secret is not in the form
    tokens = {bearer(rec, i) for i in range(20)}
    assert len(tokens) == 1
    token = tokens.pop()
    assert claims_of(token)["sub"] == "cc-once" and claims_of(token)["aud"] == "https://orders.example"
    assert "cc-secret" in secrets and token in secrets
    assert CALLER not in rec.everything()


async def test_token_endpoint_answers_are_counted_by_backend(spec_file, upstream, auth):
    _, url = upstream
    auth.register_client("cc-counted", "cc-secret")
    gw = gateway_for(spec_file, url, client_credentials(auth, "cc-counted"))
    metrics = Metrics()
    backend = open_backends(gw, metrics.token_answer)["default"]
    try:
        assert not (await echo(gw, backend)).is_error and not (await echo(gw, backend)).is_error
    finally:
        await backend.aclose()
    text = generate_latest(metrics.registry).decode()
    assert 'gateway_upstream_token_fetches_total{backend="default",status_class="2xx"} 1.0' in text  # one token


async def test_client_credentials_token_is_refreshed_after_expiry(spec_file, upstream, auth):
    rec, url = upstream
    auth.register_client("cc-short", "cc-secret", token_lifetime=2)
    async with backend_for(spec_file, url, client_credentials(auth, "cc-short")) as (gw, backend):
        assert not (await echo(gw, backend)).is_error
        assert not (await echo(gw, backend)).is_error
        assert len(token_requests(auth, "cc-short")) == 1
        await asyncio.sleep(2.2)
        assert not (await echo(gw, backend)).is_error
    assert len(token_requests(auth, "cc-short")) == 2
    assert bearer(rec, 0) == bearer(rec, 1) != bearer(rec, 2)


async def test_private_key_jwt_client_authentication(spec_file, upstream, auth):
    rec, url = upstream
    key = RSAKey.generate_key(2048)
    auth.register_client("cc-jwt", public_jwk=key.as_dict(private=False))
    credential = UpstreamCredential(type="oauth_client_credentials", token_url=auth.token_endpoint,
                                    client_id="cc-jwt", private_key=Secret(key.as_pem(private=True).decode()),
                                    key_id="gateway-key-1")
    async with backend_for(spec_file, url, credential) as (gw, backend):
        assert not (await echo(gw, backend)).is_error
        assert not (await echo(gw, backend)).is_error
    [request] = token_requests(auth, "cc-jwt")
    assertion = request["form"]["client_assertion"]
    assert request["auth_header"] is None and "client_secret" not in request["form"]
    decoded = jwt.decode(assertion, key, algorithms=["RS256"])
    assert decoded.header["kid"] == "gateway-key-1"
    assert decoded.claims["iss"] == decoded.claims["sub"] == "cc-jwt"
    assert decoded.claims["aud"] == auth.token_endpoint
    assert claims_of(bearer(rec))["sub"] == "cc-jwt"


async def test_token_endpoint_refusal_is_a_clear_tool_error_without_secrets(spec_file, upstream, auth, caplog):
    rec, url = upstream
    auth.register_client("cc-wrong", "the-right-secret")
    quiet_http_client_logs(caplog)
    async with backend_for(spec_file, url, client_credentials(auth, "cc-wrong", "a-wr0ng-secret")) as (gw, backend):
        result = await echo(gw, backend, caller(CALLER))
    assert result.is_error
    assert ("could not obtain credentials for backend 'default': the token endpoint answered 401 invalid_client"
            in text_of(result))
    assert rec.requests == []  # nothing went upstream without its credential
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("a-wr0ng-secret", "the-right-secret", CALLER):
        assert secret not in text_of(result) and secret not in logged


async def test_unreachable_token_endpoint_is_a_clear_tool_error(spec_file, upstream):
    rec, url = upstream
    credential = UpstreamCredential(type="oauth_client_credentials", token_url=f"http://127.0.0.1:{free_port()}/t",
                                    client_id="c", client_secret=Secret("cs"))
    async with backend_for(spec_file, url, credential) as (gw, backend):
        result = await echo(gw, backend)
    assert result.is_error and "could not reach the token endpoint (ConnectError)" in text_of(result)
    assert rec.requests == []


@dataclass
class FlakyTokenEndpoint:
    """A token endpoint on loopback answering `script` in turn (a status each), then repeating the last."""

    script: list[int]
    requests: int = 0

    def app(self) -> Starlette:
        async def token(request: Request) -> JSONResponse:
            status = self.script[min(self.requests, len(self.script) - 1)]
            self.requests += 1
            await request.body()
            if status == 200:
                return JSONResponse({"access_token": f"upstream-{self.requests}", "token_type": "Bearer",
                                     "expires_in": 300})
            error = "invalid_client" if status in (400, 401) else "temporarily_unavailable"
            return JSONResponse({"error": error}, status_code=status)

        return Starlette(routes=[Route("/token", token, methods=["POST"])])


def flaky_credential(url: str) -> UpstreamCredential:
    return UpstreamCredential(type="oauth_client_credentials", token_url=f"{url}/token", client_id="c",
                              client_secret=Secret("cs"))


@pytest.mark.parametrize(("script", "requests", "outcome"), [
    ([503, 429, 200], 3, None),
    ([400], 1, "answered 400 invalid_client"),
    ([502], 3, "answered 502 temporarily_unavailable (after 3 attempts)"),
], ids=["passing-failure", "refusal-not-retried", "still-down"])
async def test_token_endpoint_failures_that_may_pass_are_retried(spec_file, upstream, script, requests, outcome):
    rec, url = upstream
    endpoint = FlakyTokenEndpoint(script)
    with ServerThread(endpoint.app()) as tokens:
        async with backend_for(spec_file, url, flaky_credential(tokens.url)) as (gw, backend):
            result = await echo(gw, backend)
    assert endpoint.requests == requests
    if outcome is None:
        assert not result.is_error, text_of(result)
        assert bearer(rec, 0) == "upstream-3"
    else:
        assert result.is_error and "could not obtain credentials for backend 'default'" in text_of(result)
        assert outcome in text_of(result) and rec.requests == []


async def test_a_token_endpoint_that_is_down_is_not_stampeded(spec_file, upstream):
    rec, url = upstream
    endpoint = FlakyTokenEndpoint([503])
    with ServerThread(endpoint.app()) as tokens:
        async with backend_for(spec_file, url, flaky_credential(tokens.url)) as (gw, backend):
            results = await asyncio.gather(*(echo(gw, backend) for _ in range(20)))
            assert endpoint.requests == 3  # one fetch (with its retries) for all twenty calls
            later = await echo(gw, backend)
    assert all(r.is_error and "answered 503" in text_of(r) for r in results)
    assert later.is_error and "next attempt in" in text_of(later) and endpoint.requests == 3
    assert rec.requests == []


async def test_failed_fetches_cool_down_longer_each_time_until_one_succeeds(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("gateway.auth.oauth.time.monotonic", lambda: clock[0])
    cache = CachedToken(cooldown=10, max_cooldown=25)
    answers: list[str | None] = [None, None, None, "fine"]
    fetches = 0

    async def fetch() -> AccessToken:
        nonlocal fetches
        fetches += 1
        if (value := answers.pop(0)) is None:
            raise CredentialError("the token endpoint answered 503")
        return AccessToken.lasting(value, 300)

    for advance, expected_fetches in ((0, 1), (9, 1), (1, 2), (19, 2), (1, 3), (24, 3)):
        clock[0] += advance
        with pytest.raises(CredentialError, match="503"):
            await cache.get(fetch)
        assert fetches == expected_fetches, (advance, fetches)
    clock[0] += 1  # the cool-down stopped doubling at max_cooldown (25 s)
    assert await cache.get(fetch) == "fine" and fetches == 4


async def test_one_refresh_at_a_time_and_a_failed_refresh_keeps_a_still_valid_token():
    cache = CachedToken()
    calls = 0

    async def slow_fetch() -> AccessToken:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return AccessToken.lasting(f"token-{calls}", 300)

    assert set(await asyncio.gather(*(cache.get(slow_fetch) for _ in range(50)))) == {"token-1"}
    assert calls == 1

    async def failing_fetch() -> AccessToken:
        raise CredentialError("the token endpoint answered 503")

    now = time.monotonic()
    cache.current = AccessToken("due-but-valid", expires_at=now + 30, refresh_at=now - 1)
    assert await cache.get(failing_fetch) == "due-but-valid"
    cache.current = AccessToken("expired", expires_at=now - 1, refresh_at=now - 2)
    with pytest.raises(CredentialError, match="503"):
        await cache.get(failing_fetch)


# -- token exchange (RFC 8693) ------------------------------------------------------------------------------


def exchange_credential(auth: AuthServer, client_id: str) -> UpstreamCredential:
    return UpstreamCredential(type="token_exchange", token_url=auth.token_endpoint, client_id=client_id,
                              client_secret=Secret("tx-secret"), audience="https://orders.example",
                              scopes=("orders:read",))


async def test_token_exchange_uses_the_callers_token_and_caches_per_caller(spec_file, upstream, auth):
    rec, url = upstream
    auth.register_client("tx-gw", "tx-secret")
    alice, alice_again, bob = auth.issue(subject="alice"), auth.issue(subject="alice"), auth.issue(subject="bob")
    async with backend_for(spec_file, url, exchange_credential(auth, "tx-gw")) as (gw, backend):
        for identity in (caller(alice), caller(alice), caller(bob, "bob"), caller(alice_again)):
            result = await echo(gw, backend, identity)
            assert not result.is_error, text_of(result)
    requests = token_requests(auth, "tx-gw")
    assert [r["form"]["subject_token"] for r in requests] == [alice, bob, alice_again]  # cached per token
    assert requests[0]["form"]["grant_type"] == TOKEN_EXCHANGE
    assert requests[0]["form"]["subject_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert requests[0]["form"]["audience"] == "https://orders.example"
    assert requests[0]["form"]["scope"] == "orders:read"
    sent = [claims_of(bearer(rec, i)) for i in range(4)]
    assert [c["sub"] for c in sent] == ["alice", "alice", "bob", "alice"]
    assert all(c["aud"] == "https://orders.example" and c["act"] == {"sub": "tx-gw"} for c in sent)
    assert bearer(rec, 0) == bearer(rec, 1) != bearer(rec, 3)
    for inbound in (alice, alice_again, bob):
        assert inbound not in rec.everything()


async def test_token_exchange_needs_a_signed_in_caller(spec_file, upstream, auth):
    rec, url = upstream
    auth.register_client("tx-anon", "tx-secret")
    async with backend_for(spec_file, url, exchange_credential(auth, "tx-anon")) as (gw, backend):
        result = await echo(gw, backend)
    assert result.is_error and "this backend needs the caller's sign-in" in text_of(result)
    assert rec.requests == [] and token_requests(auth, "tx-anon") == []


async def test_a_refused_exchange_names_the_oauth_error_not_the_token(spec_file, upstream, auth):
    rec, url = upstream
    auth.register_client("tx-refused", "tx-secret")
    foreign = "not-a-token-this-server-issued"
    async with backend_for(spec_file, url, exchange_credential(auth, "tx-refused")) as (gw, backend):
        result = await echo(gw, backend, caller(foreign))
    assert result.is_error and "the token endpoint answered 400 invalid_grant" in text_of(result)
    assert foreign not in text_of(result) and rec.requests == []


# -- Microsoft Entra ID -------------------------------------------------------------------------------------


@dataclass
class FakeIdentityPlatform:
    """Entra's token endpoint and an App Service managed identity endpoint, recording what they are sent."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    issued: int = 0

    def app(self) -> Starlette:
        async def entra_token(request: Request) -> JSONResponse:
            form = dict((await request.form()).multi_items())
            self.requests.append({"path": request.url.path, "form": form})
            self.issued += 1
            return JSONResponse({"token_type": "Bearer", "expires_in": 3599, "access_token": f"entra-{self.issued}"})

        async def msi_token(request: Request) -> JSONResponse:
            self.requests.append({"path": request.url.path, "query": dict(request.query_params),
                                  "identity_header": request.headers.get("x-identity-header")})
            if request.headers.get("x-identity-header") != "msi-h3ader":
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            self.issued += 1
            return JSONResponse({"access_token": f"msi-{self.issued}", "token_type": "Bearer",
                                 "expires_on": str(int(time.time()) + 3600)})

        return Starlette(routes=[Route("/{tenant}/oauth2/v2.0/token", entra_token, methods=["POST"]),
                                 Route("/msi/token", msi_token)])


@pytest.fixture
def identity_platform() -> Iterator[tuple[FakeIdentityPlatform, str]]:
    platform = FakeIdentityPlatform()
    with ServerThread(platform.app()) as server:
        yield platform, server.url


async def test_entra_client_secret(spec_file, upstream, identity_platform):
    rec, url = upstream
    platform, authority = identity_platform
    credential = UpstreamCredential(type="azure_entra", authority=authority, tenant_id="contoso", client_id="app-1",
                                    client_secret=Secret("entra-s3cret"), scopes=("api://orders/.default",))
    async with backend_for(spec_file, url, credential) as (gw, backend):
        assert not (await echo(gw, backend, caller(CALLER))).is_error
        assert not (await echo(gw, backend, caller(CALLER))).is_error
    [request] = platform.requests
    assert request["path"] == "/contoso/oauth2/v2.0/token"
    assert request["form"] == {"grant_type": "client_credentials", "scope": "api://orders/.default",
                               "client_id": "app-1", "client_secret": "entra-s3cret"}
    assert bearer(rec) == "entra-1" and CALLER not in rec.everything()


async def test_entra_certificate_signs_an_assertion_with_the_x5t_thumbprint(spec_file, upstream, identity_platform,
                                                                           tmp_path):
    rec, url = upstream
    platform, authority = identity_platform
    issued = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert("app-1.contoso.example", key_type=trustme.KeyType.RSA)
    pem = tmp_path / "app.pem"
    issued.private_key_and_cert_chain_pem.write_to_path(str(pem))
    credential = UpstreamCredential(type="azure_entra", authority=authority, tenant_id="contoso", client_id="app-1",
                                    certificate_path=str(pem), scopes=("https://graph.microsoft.com/.default",))
    async with backend_for(spec_file, url, credential) as (gw, backend):
        assert not (await echo(gw, backend)).is_error
    [request] = platform.requests
    form = request["form"]
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert "client_secret" not in form
    cert = x509.load_pem_x509_certificate(issued.cert_chain_pems[0].bytes())
    public = RSAKey.import_key(cert.public_key().public_bytes(serialization.Encoding.PEM,
                                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    decoded = jwt.decode(form["client_assertion"], public, algorithms=["RS256"])
    thumbprint = base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA1())).rstrip(b"=").decode()
    assert decoded.header["x5t"] == thumbprint
    assert decoded.claims["aud"] == f"{authority}/contoso/oauth2/v2.0/token"
    assert decoded.claims["iss"] == decoded.claims["sub"] == "app-1"
    assert bearer(rec) == "entra-1"


async def test_managed_identity_on_app_service(spec_file, upstream, identity_platform, monkeypatch):
    rec, url = upstream
    platform, origin = identity_platform
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"{origin}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "msi-h3ader")
    credential = UpstreamCredential(type="azure_entra", managed_identity=True, client_id="user-assigned-1",
                                    scopes=("https://management.azure.com/.default",))
    async with backend_for(spec_file, url, credential) as (gw, backend):
        for _ in range(3):
            assert not (await echo(gw, backend, caller(CALLER))).is_error
        assert "msi-h3ader" in backend.secrets() and "msi-1" in backend.secrets()
    [request] = platform.requests  # cached: one token for three calls
    assert request["query"] == {"resource": "https://management.azure.com", "client_id": "user-assigned-1",
                                "api-version": "2019-08-01"}
    assert request["identity_header"] == "msi-h3ader"
    assert [bearer(rec, i) for i in range(3)] == ["msi-1"] * 3
    assert CALLER not in rec.everything()


async def test_managed_identity_elsewhere_asks_the_instance_metadata_service(monkeypatch):
    """Only the request's shape is checked, on a mock transport: tests never reach 169.254.169.254."""
    monkeypatch.delenv("IDENTITY_ENDPOINT", raising=False)
    monkeypatch.delenv("IDENTITY_HEADER", raising=False)
    seen: list[httpx2.Request] = []

    def imds(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"access_token": "imds-token", "expires_in": "3599", "token_type": "Bearer"})

    credential = UpstreamCredential(type="azure_entra", managed_identity=True, scopes=("https://vault.azure.net/.default",))
    provider = build_provider(credential, backend="vault",
                              http=httpx2.AsyncClient(transport=httpx2.MockTransport(imds)))
    request = await provider.apply(OutboundRequest("GET", "https://vault.example/secrets"), ANONYMOUS)
    await provider.aclose()
    assert request.header("authorization") == "Bearer imds-token"
    [sent] = seen
    assert (sent.url.scheme, sent.url.host, sent.url.path) == ("http", "169.254.169.254",
                                                               "/metadata/identity/oauth2/token")
    assert dict(sent.url.params) == {"api-version": "2018-02-01", "resource": "https://vault.azure.net"}
    assert sent.headers["metadata"] == "true"


# -- TLS: a private CA and mutual TLS -----------------------------------------------------------------------


class TlsServerThread(ServerThread):
    """A ServerThread serving HTTPS with `cert`, asking clients for a certificate from `client_ca`."""

    def __init__(self, app: Any, server_pem: Path, client_ca: Path) -> None:
        super().__init__(app)
        self.url = f"https://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="critical", access_log=False, lifespan="off",
            ssl_certfile=str(server_pem), ssl_ca_certs=str(client_ca), ssl_cert_reqs=ssl.CERT_REQUIRED))
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]


@dataclass
class Pki:
    ca_bundle: Path
    other_ca: Path
    client_cert: Path
    client_key: Path
    encrypted_key: Path
    server_pem: Path
    client_ca: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    server_ca, client_ca, other = trustme.CA(), trustme.CA(), trustme.CA()
    client = client_ca.issue_cert("gateway.client.example")
    paths = Pki(*(folder / name for name in ("ca.pem", "other.pem", "client.crt", "client.key", "client-enc.key",
                                             "server.pem", "client-ca.pem")))
    server_ca.cert_pem.write_to_path(str(paths.ca_bundle))
    other.cert_pem.write_to_path(str(paths.other_ca))
    client.cert_chain_pems[0].write_to_path(str(paths.client_cert))
    client.private_key_pem.write_to_path(str(paths.client_key))
    key = serialization.load_pem_private_key(client.private_key_pem.bytes(), None)
    paths.encrypted_key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.BestAvailableEncryption(b"key-passw0rd")))
    server_ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(paths.server_pem))
    client_ca.cert_pem.write_to_path(str(paths.client_ca))
    return paths


@pytest.fixture(scope="module")
def tls_upstream(pki) -> Iterator[tuple[Recorder, str]]:
    rec = Recorder()
    with TlsServerThread(rec.app(), pki.server_pem, pki.client_ca) as server:
        yield rec, server.url


async def _get(url: str, tls: TlsSettings) -> int:
    backend = Backend("secure", url, verify=ssl_context(tls, "test"))
    try:
        response = await backend.send(UpstreamRequest("GET", "/ping", "", ()), timeout=5, max_bytes=1000)
    finally:
        await backend.aclose()
    return response.status


async def test_mutual_tls_with_a_private_ca(pki, tls_upstream):
    rec, url = tls_upstream
    assert await _get(url, TlsSettings(ca_bundle=str(pki.ca_bundle), client_cert=str(pki.client_cert),
                                       client_key=str(pki.client_key))) == 200
    assert await _get(url, TlsSettings(ca_bundle=str(pki.ca_bundle), client_cert=str(pki.client_cert),
                                       client_key=str(pki.encrypted_key),
                                       client_key_password=Secret("key-passw0rd"))) == 200
    assert len(rec.requests) == 2


async def test_without_the_client_certificate_the_server_refuses(pki, tls_upstream):
    rec, url = tls_upstream
    before = len(rec.requests)
    with pytest.raises(UpstreamError) as raised:
        await _get(url, TlsSettings(ca_bundle=str(pki.ca_bundle)))
    assert raised.value.kind in ("connect", "protocol", "tls")
    assert len(rec.requests) == before


async def test_a_server_certificate_from_an_unknown_ca_is_refused(pki, tls_upstream):
    rec, url = tls_upstream
    before = len(rec.requests)
    for tls in (TlsSettings(ca_bundle=str(pki.other_ca), client_cert=str(pki.client_cert),
                            client_key=str(pki.client_key)),
                TlsSettings(client_cert=str(pki.client_cert), client_key=str(pki.client_key))):  # system CAs
        with pytest.raises(UpstreamError) as raised:
            await _get(url, tls)
        assert raised.value.kind == "tls" and "certificate was refused" in raised.value.message
    assert len(rec.requests) == before


@pytest.mark.parametrize(("issued", "reason"), [
    ({"identities": ("elsewhere.example",)}, "mismatch"),
    ({"identities": ("127.0.0.1",), "not_before": datetime.datetime(2020, 1, 1),
      "not_after": datetime.datetime(2021, 1, 1)}, "expired"),
])
async def test_a_wrong_host_or_expired_certificate_is_a_distinct_tls_error(tmp_path, issued, reason):
    ca = trustme.CA()
    pem, bundle = tmp_path / "server.pem", tmp_path / "ca.pem"
    ca.issue_cert(*issued["identities"], not_before=issued.get("not_before"), not_after=issued.get("not_after")
                  ).private_key_and_cert_chain_pem.write_to_path(str(pem))
    ca.cert_pem.write_to_path(str(bundle))
    rec = Recorder()
    # The client CA is irrelevant: the handshake fails first.
    with TlsServerThread(rec.app(), pem, bundle) as server, pytest.raises(UpstreamError) as raised:
        await _get(server.url, TlsSettings(ca_bundle=str(bundle)))
    assert raised.value.kind == "tls" and reason in raised.value.message.lower(), raised.value.message
    assert rec.requests == []


async def test_a_backend_whose_name_does_not_resolve_is_a_distinct_error():
    backend = Backend("nowhere", "http://no-such-host.invalid")
    try:
        with pytest.raises(UpstreamError) as raised:
            await backend.send(UpstreamRequest("GET", "/ping", "", ()), timeout=5, max_bytes=1000)
    finally:
        await backend.aclose()
    assert raised.value.kind == "dns" and "'no-such-host.invalid' does not resolve" in raised.value.message


def test_tls_files_that_cannot_work_stop_the_start(pki, tmp_path):
    with pytest.raises(ConfigError, match=r"tls\.client_cert: cannot load") as raised:
        ssl_context(TlsSettings(client_cert=str(pki.client_cert), client_key=str(pki.encrypted_key),
                                client_key_password=Secret("wr0ng-password")), "gateway.yaml:20")
    assert raised.value.where == "gateway.yaml:20" and "wr0ng-password" not in str(raised.value)
    with pytest.raises(ConfigError, match="cannot load the client certificate"):  # encrypted, no password given
        ssl_context(TlsSettings(client_cert=str(pki.client_cert), client_key=str(pki.encrypted_key)), "here")
    with pytest.raises(ConfigError, match=f"tls.ca_bundle: cannot load CA certificates from {tmp_path}"):
        ssl_context(TlsSettings(ca_bundle=str(tmp_path / "missing.pem")), "here")
    assert ssl_context(TlsSettings(), "here") is None


def test_tls_settings_need_an_https_upstream(spec_file, pki):
    gw = gateway_for(spec_file, "http://127.0.0.1:9", UpstreamCredential(), TlsSettings(ca_bundle=str(pki.ca_bundle)))
    with pytest.raises(ConfigError, match="need an https upstream"):
        open_backends(gw)


# -- through the gateway, over MCP, with inbound OAuth ------------------------------------------------------


@contextlib.asynccontextmanager
async def served(spec: Path, upstream_url: str, auth: AuthServer, credential: UpstreamCredential
                 ) -> AsyncIterator[tuple[str, str]]:
    """The gateway with inbound OAuth (issuer `auth`) over `upstream_url`; yields (MCP URL, resource URL)."""
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    inbound = InboundAuth(mode="oauth", issuer=auth.url, resource_url=resource)
    gw = gateway_for(spec, upstream_url, credential, port=port, auth=inbound)
    with ServerThread(create_app(gw), port=port) as server:
        yield f"{server.url}/mcp", resource


async def call_over_mcp(url: str, token: str, name: str, arguments: dict[str, Any]):
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http, \
            Client(streamable_http_client(url, http_client=http)) as client:
        return await client.call_tool(name, arguments)


async def test_over_mcp_the_inbound_token_goes_upstream_only_with_passthrough(spec_file, upstream, auth):
    rec, url = upstream
    auth.register_client("mcp-cc", "cc-secret")
    for credential in (UpstreamCredential(type="passthrough"), client_credentials(auth, "mcp-cc"),
                       UpstreamCredential(type="api_key", name="X-Api-Key", value=Secret(API_KEY))):
        async with served(spec_file, url, auth, credential) as (mcp_url, resource):
            inbound = auth.issue(subject="carol", audience=resource)
            result = await call_over_mcp(mcp_url, inbound, "echo", {"item": "x"})
        assert not result.is_error, text_of(result)
        if credential.type == "passthrough":
            assert bearer(rec) == inbound
        else:
            assert inbound not in rec.everything()
    assert rec.header("x-api-key") == API_KEY
    assert claims_of(bearer(rec, 1))["sub"] == "mcp-cc"


async def test_over_mcp_token_exchange_trades_the_callers_token(spec_file, upstream, auth):
    rec, url = upstream
    auth.register_client("mcp-tx", "tx-secret")
    async with served(spec_file, url, auth, exchange_credential(auth, "mcp-tx")) as (mcp_url, resource):
        inbound = auth.issue(subject="dave", audience=resource)
        result = await call_over_mcp(mcp_url, inbound, "submit", {"item": "x", "text": "hello"})
    assert not result.is_error, text_of(result)
    [request] = token_requests(auth, "mcp-tx")
    assert request["form"]["subject_token"] == inbound
    sent = bearer(rec)
    assert claims_of(sent)["sub"] == "dave" and claims_of(sent)["aud"] == "https://orders.example"
    assert inbound not in rec.everything()
    assert json.loads(rec.requests[-1]["body"]) == {"text": "hello"}


# -- nothing secret in the logs ------------------------------------------------------------------------------


async def test_no_secret_reaches_the_logs(spec_file, upstream, auth, caplog):
    rec, url = upstream
    auth.register_client("cc-logs", "cc-l0g-secret")
    quiet_http_client_logs(caplog)
    credentials = [
        UpstreamCredential(type="api_key", name="api_key", location="query", value=Secret("qu3ry-key")),
        UpstreamCredential(type="basic", username="svc", password=Secret("b4sic-pass")),
        UpstreamCredential(type="bearer", value=Secret("st4tic-bearer")),
        client_credentials(auth, "cc-logs", "cc-l0g-secret"),
    ]
    secrets: set[str] = {CALLER}
    for credential in credentials:
        async with backend_for(spec_file, url, credential) as (gw, backend):
            assert not (await echo(gw, backend, caller(CALLER))).is_error
            secrets.update(backend.secrets())
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "tool_call" in logged  # the audit lines are there
    assert {"qu3ry-key", "b4sic-pass", "st4tic-bearer", "cc-l0g-secret", bearer(rec)} <= secrets
    for secret in secrets:
        assert secret not in logged
