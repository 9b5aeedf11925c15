"""The gateway as an OAuth resource server, with real parts only: the test authorization server
(tests/auth_server.py), the petstore backend, the gateway under uvicorn, and the SDK's Client or raw
HTTP where status codes and `WWW-Authenticate` challenges are what is checked.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import gateway.serving.endpoint
from adapters.devauth import TOKEN_EXCHANGE, AuthServer
from adapters.petstore import MAPPING, SPEC
from gateway.auth.http import metadata_url
from gateway.auth.inbound import AS_TIMEOUT, JWKS_MAX_AGE_SECONDS, AuthError, TokenVerifier, metadata_urls
from gateway.auth.settings import ANONYMOUS, InboundAuth, Secret
from gateway.config import config_from_args
from gateway.runtime import load_gateway
from gateway.server import create_app
from tests.conftest import ServerThread, free_port
from tests.gateway_harness import running_gateway, text_of

pytestmark = pytest.mark.anyio

SCOPES = {"list_pets": ("pets:read",), "get_pet": ("pets:read",), "create_pet": ("pets:write",),
          "delete_pet": ("pets:write", "pets:admin")}
ALL = ["mcp:use", "pets:read", "pets:write", "pets:admin"]
RS_CLIENT, RS_SECRET = "gateway-rs", "rs-secret"
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
MODES = pytest.mark.parametrize("legacy", [False, True], ids=["2026-07-28", "2025-11-25"])


def call(name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": arguments or {}}}


@dataclass
class Secured:
    auth: AuthServer
    url: str  # the MCP endpoint
    resource: str  # its resource URL (the audience tokens must carry)

    @property
    def origin(self) -> str:
        return self.url.rsplit("/", 1)[0]


@contextlib.contextmanager
def secured_gateway(backend_url: str, *, public: tuple[str, ...] = (), introspection: bool = False,
                    **settings: Any) -> Iterator[Secured]:
    """The petstore behind the gateway with inbound OAuth, tools scoped as in SCOPES, and its own AuthServer."""
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    with AuthServer(audience=resource) as auth:
        if introspection:
            auth.register_client(RS_CLIENT, RS_SECRET)
            settings = {"introspection_url": auth.introspection_endpoint, "introspection_client_id": RS_CLIENT,
                        "introspection_client_secret": Secret(RS_SECRET), **settings}
        inbound = InboundAuth(**{"mode": "oauth", "issuer": auth.url, "resource_url": resource, **settings})
        config = config_from_args(spec=str(SPEC), mapping=str(MAPPING), upstream=f"{backend_url}/api")
        config = replace(config, server=replace(config.server, port=port, auth=inbound))
        loaded = load_gateway(config)
        tools = {name: replace(tool, scopes=SCOPES.get(name, ()), public=name in public)
                 for name, tool in loaded.tools.items()}
        with ServerThread(create_app(replace(loaded, tools=tools)), port=port) as server:
            yield Secured(auth, f"{server.url}/mcp", resource)


@pytest.fixture(scope="module")
def gw(petstore_backend) -> Iterator[Secured]:
    """No public tools; every request needs `mcp:use`, tools need their own scopes on top; opaque tokens allowed."""
    with secured_gateway(petstore_backend.url, required_scopes=("mcp:use",), introspection=True) as secured:
        yield secured


@pytest.fixture(scope="module")
def open_gw(petstore_backend) -> Iterator[Secured]:
    """`list_pets` is public (noauth); the rest as in `gw`."""
    with secured_gateway(petstore_backend.url, public=("list_pets",), required_scopes=("mcp:use",)) as secured:
        yield secured


async def post(url: str, message: Any, token: str | None = None, **headers: str) -> httpx2.Response:
    """One raw JSON-RPC POST (protocol 2025-11-25, stateless: no handshake needed)."""
    sent = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25", **headers}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    async with httpx2.AsyncClient() as http:
        return await http.post(url, json=message, headers=sent)


def challenge(response: httpx2.Response) -> dict[str, str]:
    """The parameters of a `WWW-Authenticate: Bearer ...` header."""
    header = response.headers["www-authenticate"]
    assert header.startswith("Bearer ")
    return {k: re.sub(r"\\(.)", r"\1", v) for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', header)}


@contextlib.asynccontextmanager
async def client_with(url: str, token: str | None, *, legacy: bool = False) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers) as http, \
            Client(streamable_http_client(url, http_client=http), mode="legacy" if legacy else "auto") as client:
        yield client


def jwks_fetches(auth: AuthServer) -> int:
    return auth.hits["/jwks"]


def introspections(auth: AuthServer, token: str) -> int:
    return sum(1 for r in auth.requests if r["path"] == "/introspect" and r["form"].get("token") == token)


# -- valid tokens --------------------------------------------------------------------------------------------


@MODES
async def test_valid_token_lists_and_calls_tools(gw, legacy):
    token = gw.auth.issue(scopes=ALL)
    async with client_with(gw.url, token, legacy=legacy) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        listed = await client.call_tool("list_pets", {"status": "available"})
        assert not listed.is_error, text_of(listed)
        pets = listed.structured_content["result"] if legacy else listed.structured_content
        one = await client.call_tool("get_pet", {"petId": pets[0]["id"]})
    assert one.structured_content["name"] == pets[0]["name"]
    assert tools["delete_pet"].meta["securitySchemes"] == [
        {"type": "oauth2", "scopes": ["mcp:use", "pets:write", "pets:admin"]}]
    assert tools["get_inventory"].meta["securitySchemes"] == [{"type": "oauth2", "scopes": ["mcp:use"]}]



@pytest.fixture
def identities(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The Identity of every call the MCP server hands to the call path, in order."""
    seen: list[Any] = []
    real = gateway.serving.endpoint.call_tool

    async def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["identity"])
        return await real(*args, **kwargs)

    monkeypatch.setattr(gateway.serving.endpoint, "call_tool", spy)
    return seen

@MODES
async def test_identity_reaches_the_call_path(gw, legacy, identities):
    seen = identities
    token = gw.auth.issue(subject="carol", client_id="chatgpt", scopes=["mcp:use", "pets:read"])
    async with client_with(gw.url, token, legacy=legacy) as client:
        result = await client.call_tool("list_pets", {})
    assert not result.is_error, text_of(result)
    [identity] = seen
    assert (identity.subject, identity.client_id) == ("carol", "chatgpt")
    assert identity.scopes == {"mcp:use", "pets:read"}
    assert identity.token.reveal() == token and token not in repr(identity)


# -- the attack matrix ---------------------------------------------------------------------------------------


def _tampered(auth: AuthServer) -> str:
    header, payload, signature = auth.issue(scopes=["mcp:use"]).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = " ".join(ALL)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _gateway_upstream_token(auth: AuthServer, backend: str) -> str:
    """What the gateway's own client credentials get for its backend: a real token of the same issuer."""
    auth.register_client("gateway-upstream", "upstream-secret", audience=backend)
    answer = httpx2.post(auth.token_endpoint, data={"grant_type": "client_credentials", "scope": " ".join(ALL)},
                         auth=("gateway-upstream", "upstream-secret"))
    return answer.json()["access_token"]


def _exchanged_for_backend(auth: AuthServer, backend: str) -> str:
    """A token exchanged (RFC 8693) for the backend, as the gateway's token-exchange credential would get it."""
    auth.register_client("gateway-exchange", "exchange-secret")
    answer = httpx2.post(auth.token_endpoint, data={
        "grant_type": TOKEN_EXCHANGE, "subject_token": auth.issue(scopes=ALL), "audience": backend,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "client_id": "gateway-exchange", "client_secret": "exchange-secret"})
    return answer.json()["access_token"]


NOW = int(time.time())
ATTACKS = {
    "malformed": (lambda a, b: "not-a-token", "the token is not active"),  # not a JWT: introspected
    "malformed_jws": (lambda a, b: "abc.def.ghi", "the token is malformed"),
    "bad_characters": (lambda a, b: "abc def\"", "the token is malformed"),
    "expired": (lambda a, b: a.issue(scopes=ALL, expires_in=-120), "the token has expired"),
    "not_yet_valid": (lambda a, b: a.issue(scopes=ALL, not_before=NOW + 600), "the token is not valid yet"),
    "issued_in_future": (lambda a, b: a.issue(scopes=ALL, issued_at=NOW + 600), "the token was issued in the future"),
    "wrong_issuer": (lambda a, b: a.issue(scopes=ALL, extra_claims={"iss": "https://evil.example"}),
                     "the token was issued by another authorization server"),
    "wrong_audience": (lambda a, b: a.issue(scopes=ALL, audience="https://other.example/mcp"),
                       "the token is not meant for this resource"),
    "no_audience": (lambda a, b: a.issue(scopes=ALL, extra_claims={"aud": None}), "the token lacks the aud claim"),
    "no_expiry": (lambda a, b: a.issue(scopes=ALL, extra_claims={"exp": None}), "the token lacks the exp claim"),
    "alg_none": (lambda a, b: a.issue(scopes=ALL, alg="none"), "the token's signing algorithm is not accepted"),
    "hs256_with_public_key": (lambda a, b: a.issue(scopes=ALL, alg="HS256"),
                              "the token's signing algorithm is not accepted"),
    "unknown_kid": (lambda a, b: a.issue(scopes=ALL, kid="attacker-key"), "the token's signing key is unknown"),
    "tampered_payload": (lambda a, b: _tampered(a), "the token's signature is invalid"),
    "gateway_upstream_token": (lambda a, b: _gateway_upstream_token(a, b), "the token is not meant for this resource"),
    "exchanged_for_backend": (lambda a, b: _exchanged_for_backend(a, b), "the token is not meant for this resource"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_attack_is_refused_with_invalid_token(gw, petstore_backend, attack):
    make, description = ATTACKS[attack]
    token = make(gw.auth, f"{petstore_backend.url}/api")
    for message in (LIST, call("delete_pet", {"petId": 1})):
        response = await post(gw.url, message, token)
        assert response.status_code == 401, response.text
        params = challenge(response)
        assert params["error"] == "invalid_token"
        assert params["error_description"] == description == response.json()["error_description"]
        assert params["resource_metadata"] == f"{gw.origin}/.well-known/oauth-protected-resource/mcp"
        assert params["scope"] == ("mcp:use" if message is LIST else "mcp:use pets:write pets:admin")
        assert token not in response.headers["www-authenticate"] and token not in response.text
    after = await post(gw.url, call("get_pet", {"petId": 1}), gw.auth.issue(scopes=ALL))
    assert after.status_code == 200  # the gateway still serves honest callers


async def test_no_token_gets_a_challenge_naming_what_the_request_needs(gw):
    listing = await post(gw.url, LIST)
    assert listing.status_code == 401
    assert challenge(listing) == {"resource_metadata": f"{gw.origin}/.well-known/oauth-protected-resource/mcp",
                                  "scope": "mcp:use"}
    deleting = await post(gw.url, call("delete_pet", {"petId": 1}))
    assert deleting.status_code == 401
    assert challenge(deleting)["scope"] == "mcp:use pets:write pets:admin"
    assert "error" not in challenge(deleting)  # RFC 6750 §3.1: no error code when no token was sent
    basic = await post(gw.url, LIST, Authorization="Basic dXNlcjpwYXNz")
    assert basic.status_code == 401 and challenge(basic)["scope"] == "mcp:use"


async def test_missing_scope_is_403_listing_every_scope_the_tool_needs(gw):
    token = gw.auth.issue(scopes=["mcp:use", "pets:read", "pets:write"])
    assert (await post(gw.url, call("get_pet", {"petId": 1}), token)).status_code == 200
    response = await post(gw.url, call("delete_pet", {"petId": 1}), token)
    assert response.status_code == 403
    params = challenge(response)
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "mcp:use pets:write pets:admin"
    assert params["resource_metadata"] == f"{gw.origin}/.well-known/oauth-protected-resource/mcp"
    without_required = await post(gw.url, LIST, gw.auth.issue(scopes=["pets:read"]))
    assert without_required.status_code == 403 and challenge(without_required)["scope"] == "mcp:use"


async def test_scopes_from_scp_claim_count(gw):
    listed_as_list = gw.auth.issue(extra_claims={"scp": ["mcp:use", "pets:read"]})
    listed_as_text = gw.auth.issue(extra_claims={"scp": "mcp:use pets:read"})  # Entra ID's form
    for token in (listed_as_list, listed_as_text):
        assert (await post(gw.url, call("get_pet", {"petId": 1}), token)).status_code == 200
        assert (await post(gw.url, call("create_pet", {"name": "x"}), token)).status_code == 403


async def test_token_only_in_authorization_header(gw):
    token = gw.auth.issue(scopes=ALL)
    async with httpx2.AsyncClient() as http:
        response = await http.post(f"{gw.url}?access_token={token}", json=LIST, headers={
            "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"})
    assert response.status_code == 400
    assert challenge(response)["error"] == "invalid_request"
    two = httpx2.Headers([("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}"),
                          ("Accept", "application/json, text/event-stream"), ("MCP-Protocol-Version", "2025-11-25")])
    async with httpx2.AsyncClient() as http:
        doubled = await http.post(gw.url, json=LIST, headers=two)
    assert doubled.status_code == 400


async def test_request_body_over_the_limit_is_413(gw):
    token = gw.auth.issue(scopes=ALL)
    big = call("create_pet", {"name": "x" * 1_100_000})
    assert (await post(gw.url, big, token)).status_code == 413


async def test_public_routes_need_no_token(gw):
    async with httpx2.AsyncClient() as http:
        assert (await http.get(f"{gw.origin}/healthz")).status_code == 200
        assert (await http.get(f"{gw.origin}/readyz")).status_code == 200
        for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
            response = await http.get(gw.origin + path)
            assert response.status_code == 200
            assert response.json() == {
                "resource": gw.resource,
                "authorization_servers": [gw.auth.url],
                "scopes_supported": ALL,
                "bearer_methods_supported": ["header"],
                "resource_name": "petstore",
            }
        advertised = challenge(await post(gw.url, LIST))["resource_metadata"]
        assert (await http.get(advertised)).json()["resource"] == gw.resource


# -- public (noauth) tools -----------------------------------------------------------------------------------


@MODES
async def test_public_tools_work_anonymously_and_protected_ones_challenge(open_gw, legacy, identities):
    seen = identities
    async with client_with(open_gw.url, None, legacy=legacy) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        listed = await client.call_tool("list_pets", {})
    assert not listed.is_error, text_of(listed)
    assert seen == [ANONYMOUS]
    assert tools["list_pets"].meta["securitySchemes"] == [{"type": "noauth"}]
    assert tools["get_pet"].meta["securitySchemes"] == [{"type": "oauth2", "scopes": ["mcp:use", "pets:read"]}]
    refused = await post(open_gw.url, call("get_pet", {"petId": 1}))
    assert refused.status_code == 401
    assert challenge(refused)["scope"] == "mcp:use pets:read"
    assert "error" not in challenge(refused)


async def test_a_batch_needs_what_its_most_demanding_message_needs(open_gw):
    batch = [LIST, call("list_pets"), call("get_pet", {"petId": 1})]
    response = await post(open_gw.url, batch)
    assert response.status_code == 401 and challenge(response)["scope"] == "mcp:use pets:read"
    assert (await post(open_gw.url, [LIST, call("list_pets")])).status_code != 401


async def test_public_tool_still_refuses_a_bad_token(open_gw):
    bad = await post(open_gw.url, call("list_pets"), open_gw.auth.issue(expires_in=-120))
    assert bad.status_code == 401 and challenge(bad)["error"] == "invalid_token"
    unscoped = await post(open_gw.url, call("list_pets"), open_gw.auth.issue())
    assert unscoped.status_code == 200  # a public tool needs no scope, with or without a token


# -- opaque tokens through introspection ---------------------------------------------------------------------


async def test_opaque_token_is_introspected_once_and_cached(gw):
    token = gw.auth.issue_opaque(subject="dave", scopes=ALL)
    async with client_with(gw.url, token) as client:
        result = await client.call_tool("list_pets", {})
        assert not result.is_error, text_of(result)
        await client.list_tools()
    assert introspections(gw.auth, token) == 1
    request = next(r for r in gw.auth.requests if r["form"].get("token") == token)
    assert request["auth_header"] == "Basic " + base64.b64encode(f"{RS_CLIENT}:{RS_SECRET}".encode()).decode()
    gw.auth.revoke(token)
    assert (await post(gw.url, LIST, token)).status_code == 200  # still cached: introspection_cache_seconds
    assert introspections(gw.auth, token) == 1


async def test_inactive_or_foreign_opaque_token_is_refused(gw):
    inactive = gw.auth.issue_opaque(scopes=ALL, active=False)
    response = await post(gw.url, LIST, inactive)
    assert response.status_code == 401
    assert challenge(response)["error_description"] == "the token is not active"
    foreign = gw.auth.issue_opaque(scopes=ALL, audience="https://other.example/mcp")
    response = await post(gw.url, LIST, foreign)
    assert response.status_code == 401
    assert challenge(response)["error_description"] == "the token is not meant for this resource"
    lacking = await post(gw.url, call("delete_pet", {"petId": 1}), gw.auth.issue_opaque(scopes=["mcp:use"]))
    assert lacking.status_code == 403


# -- keys: rotation, refresh rate limit, discovery -----------------------------------------------------------


async def test_key_rotation_is_picked_up_with_one_jwks_fetch(petstore_backend):
    with secured_gateway(petstore_backend.url, jwks_min_refresh_seconds=0) as secured:
        auth = secured.auth
        old = auth.issue(scopes=ALL)
        assert (await post(secured.url, LIST, old)).status_code == 200
        assert jwks_fetches(auth) == 1
        auth.rotate_keys()
        assert (await post(secured.url, LIST, auth.issue(scopes=ALL))).status_code == 200
        assert jwks_fetches(auth) == 2
        assert (await post(secured.url, LIST, auth.issue(scopes=ALL))).status_code == 200
        assert jwks_fetches(auth) == 2  # the new key is cached now
        assert (await post(secured.url, LIST, old)).status_code == 401  # the withdrawn key no longer verifies


async def test_unknown_kids_cannot_make_the_gateway_hammer_the_authorization_server(petstore_backend):
    with secured_gateway(petstore_backend.url, jwks_min_refresh_seconds=3600) as secured:
        auth = secured.auth
        assert (await post(secured.url, LIST, auth.issue(scopes=ALL))).status_code == 200
        for n in range(20):
            response = await post(secured.url, LIST, auth.issue(scopes=ALL, kid=f"random-{n}"))
            assert response.status_code == 401
        assert jwks_fetches(auth) == 1


async def test_refresh_window_reopens():
    """With a clock under the test's control: an unknown kid refetches only once the window has passed."""
    with AuthServer(audience="https://gw.example/mcp") as auth:
        now = [time.time()]
        verifier = TokenVerifier(InboundAuth(mode="oauth", issuer=auth.url, resource_url="https://gw.example/mcp",
                                             jwks_min_refresh_seconds=30), clock=lambda: now[0])
        try:
            await verifier.verify(auth.issue())
            auth.rotate_keys()
            rotated = auth.issue()
            with pytest.raises(AuthError, match="signing key is unknown"):
                await verifier.verify(rotated)
            assert jwks_fetches(auth) == 1
            now[0] += 31
            assert (await verifier.verify(rotated)).subject == "alice"
            assert jwks_fetches(auth) == 2
        finally:
            await verifier.aclose()


async def test_a_burst_with_a_new_kid_shares_one_jwks_fetch():
    with AuthServer(audience="https://gw.example/mcp") as auth:
        verifier = TokenVerifier(InboundAuth(mode="oauth", issuer=auth.url, resource_url="https://gw.example/mcp",
                                             jwks_min_refresh_seconds=0))
        try:
            await verifier.verify(auth.issue())
            auth.rotate_keys()
            tokens = [auth.issue(subject=f"user{n}") for n in range(10)]
            async with anyio.create_task_group() as group:
                for token in tokens:
                    group.start_soon(verifier.verify, token)
            assert jwks_fetches(auth) == 2
        finally:
            await verifier.aclose()


@dataclass
class JwksSwitch:
    """The authorization server's JWKS behind a switch: served as it is, or down, slow or garbage."""

    source: str
    mode: str = "ok"
    hits: int = 0

    def app(self) -> Starlette:
        async def jwks(request: Request) -> Response:
            self.hits += 1
            if self.mode == "down":
                return PlainTextResponse("upstream connect error", status_code=503)
            if self.mode == "slow":
                await anyio.sleep(AS_TIMEOUT.read + 1)
            if self.mode == "late":  # slow, but within AS_TIMEOUT
                await anyio.sleep(0.5)
            if self.mode == "html":
                return HTMLResponse("<html><body>Sign in</body></html>")
            if self.mode == "no-keys":
                return JSONResponse({"keys": [{"kty": "bogus", "kid": "k"}, "not a key"]})
            async with httpx2.AsyncClient() as http:
                return JSONResponse((await http.get(self.source)).json())

        return Starlette(routes=[Route("/jwks", jwks)])


@contextlib.asynccontextmanager
async def switched_verifier(mode: str) -> AsyncIterator[tuple[AuthServer, JwksSwitch, TokenVerifier, list[float]]]:
    """A verifier whose JWKS goes through a `JwksSwitch` (set to `mode` once the keys are fetched)."""
    with AuthServer(audience="https://gw.example/mcp") as auth:
        switch = JwksSwitch(auth.jwks_uri)
        with ServerThread(switch.app()) as jwks:
            now = [time.time()]
            verifier = TokenVerifier(InboundAuth(mode="oauth", issuer=auth.url, resource_url="https://gw.example/mcp",
                                                 jwks_url=f"{jwks.url}/jwks"), clock=lambda: now[0])
            try:
                assert (await verifier.verify(auth.issue(subject="first"))).subject == "first"
                switch.mode = mode
                yield auth, switch, verifier, now
            finally:
                await verifier.aclose()


async def test_tokens_that_arrive_during_the_first_jwks_fetch_wait_for_it():
    """At start-up no key is known yet: tokens that arrive while the first fetch is under way (it opened the
    refresh window) wait for its keys instead of being refused, and ask nothing more of the server."""
    with AuthServer(audience="https://gw.example/mcp") as auth:
        switch = JwksSwitch(auth.jwks_uri, mode="late")
        with ServerThread(switch.app()) as jwks:
            verifier = TokenVerifier(InboundAuth(mode="oauth", issuer=auth.url, resource_url="https://gw.example/mcp",
                                                 jwks_url=f"{jwks.url}/jwks"))
            subjects: list[str] = []

            async def verify(token: str) -> None:
                subjects.append((await verifier.verify(token)).subject)

            try:
                async with anyio.create_task_group() as group:
                    group.start_soon(verify, auth.issue(subject="first"))
                    while switch.hits < 1:  # the first fetch is under way
                        await anyio.sleep(0.01)
                    for n in range(9):
                        group.start_soon(verify, auth.issue(subject=f"user{n}"))
                assert sorted(subjects) == sorted(["first", *(f"user{n}" for n in range(9))])
                assert switch.hits == 1
            finally:
                await verifier.aclose()


@pytest.mark.parametrize("mode", ["down", "slow", "html", "no-keys"])
async def test_jwks_faults_keep_the_known_keys_and_fail_closed_on_others(mode):
    async with switched_verifier(mode) as (auth, switch, verifier, now):
        known = auth.issue(subject="known")
        auth.rotate_keys()
        now[0] += 31  # past jwks_min_refresh_seconds (30): an unknown kid may fetch again
        with pytest.raises(AuthError, match="signing key is unknown"):
            await verifier.verify(auth.issue(subject="rotated"))
        assert switch.hits == 2
        for n in range(10):  # a burst of unknown keys within the window asks nothing more
            with pytest.raises(AuthError, match="signing key is unknown"):
                await verifier.verify(auth.issue(subject=f"burst-{n}"))
        assert switch.hits == 2
        assert (await verifier.verify(known)).subject == "known"


async def test_a_slow_refresh_of_a_stale_key_set_holds_no_call_with_a_known_key():
    async with switched_verifier("slow") as (auth, switch, verifier, now):
        lasting = JWKS_MAX_AGE_SECONDS * 2
        stale, other = auth.issue(subject="stale", expires_in=lasting), auth.issue(subject="other", expires_in=lasting)
        now[0] += JWKS_MAX_AGE_SECONDS + 1  # the key set is due for a refresh, which will hang until AS_TIMEOUT
        finished: list[str] = []

        async def verify(token: str) -> None:
            finished.append((await verifier.verify(token)).subject)

        async with anyio.create_task_group() as group:
            group.start_soon(verify, stale)
            while switch.hits < 2:
                await anyio.sleep(0.01)
            await verify(other)  # answered from the known keys while the refresh is still waiting
            assert finished == ["other"]
        assert finished == ["other", "stale"]


async def test_introspection_that_is_down_fails_closed():
    with AuthServer(audience="https://gw.example/mcp") as auth:
        verifier = TokenVerifier(InboundAuth(mode="oauth", issuer=auth.url, resource_url="https://gw.example/mcp",
                                             introspection_url=f"http://127.0.0.1:{free_port()}/introspect"))
        try:
            with pytest.raises(AuthError, match="authorization server did not answer") as refused:
                await verifier.verify(auth.issue_opaque(scopes=ALL))
            assert refused.value.error == "invalid_token"
        finally:
            await verifier.aclose()


async def test_configured_audiences_replace_the_resource_url():
    with AuthServer() as auth:
        verifier = TokenVerifier(InboundAuth(mode="oauth", issuer=auth.url, resource_url="https://gw.example/mcp",
                                             audiences=("api://gateway", "https://gw.example")))
        try:
            assert (await verifier.verify(auth.issue(audience=["other", "api://gateway"]))).subject == "alice"
            with pytest.raises(AuthError, match="not meant for this resource"):
                await verifier.verify(auth.issue(audience="https://gw.example/mcp"))
        finally:
            await verifier.aclose()


@pytest.mark.parametrize(("issuer_path", "discovery", "served_at"), [
    ("", ("openid-configuration",), "/.well-known/openid-configuration"),
    ("/tenant", ("oauth-authorization-server",), "/.well-known/oauth-authorization-server/tenant"),
    ("/tenant/v2.0", ("openid-configuration",), "/tenant/v2.0/.well-known/openid-configuration"),
])
async def test_jwks_is_discovered_from_the_issuer_metadata(issuer_path, discovery, served_at):
    with AuthServer(audience="https://gw.example/mcp", issuer_path=issuer_path, discovery=discovery) as auth:
        verifier = TokenVerifier(InboundAuth(mode="oauth", issuer=auth.url, resource_url="https://gw.example/mcp"))
        try:
            identity = await verifier.verify(auth.issue(subject="erin", extra_claims={"client_id": None, "azp": "app"}))
        finally:
            await verifier.aclose()
    assert (identity.subject, identity.client_id) == ("erin", "app")
    assert auth.hits[served_at] == 1 and jwks_fetches(auth) == 1


async def test_configured_jwks_url_skips_discovery_and_metadata_must_name_the_issuer():
    with AuthServer(audience="https://gw.example/mcp") as auth:
        direct = TokenVerifier(InboundAuth(mode="oauth", issuer=auth.url, resource_url="https://gw.example/mcp",
                                           jwks_url=auth.jwks_uri))
        mixed_up = TokenVerifier(InboundAuth(mode="oauth", issuer=auth.url + "/", resource_url="https://gw.example/mcp"))
        try:
            assert (await direct.verify(auth.issue())).subject == "alice"
            assert sum(n for path, n in auth.hits.items() if "well-known" in path) == 0
            with pytest.raises(AuthError, match="could not verify"):  # metadata names issuer without the slash
                await mixed_up.verify(auth.issue(extra_claims={"iss": auth.url + "/"}))
        finally:
            await direct.aclose()
            await mixed_up.aclose()


def test_metadata_locations():
    assert metadata_urls("https://as.example.com") == [
        "https://as.example.com/.well-known/oauth-authorization-server",
        "https://as.example.com/.well-known/openid-configuration"]
    assert metadata_urls("https://login.example.com/tenant/v2.0/") == [
        "https://login.example.com/.well-known/oauth-authorization-server/tenant/v2.0",
        "https://login.example.com/.well-known/openid-configuration/tenant/v2.0",
        "https://login.example.com/tenant/v2.0/.well-known/openid-configuration"]
    assert metadata_url("https://gw.example.com/mcp") == "https://gw.example.com/.well-known/oauth-protected-resource/mcp"
    assert metadata_url("https://gw.example.com") == "https://gw.example.com/.well-known/oauth-protected-resource"


async def test_introspection_cache_never_outlives_the_token():
    with AuthServer(audience="https://gw.example/mcp") as auth:
        auth.register_client(RS_CLIENT, RS_SECRET)
        now = [time.time()]
        verifier = TokenVerifier(InboundAuth(
            mode="oauth", issuer=auth.url, resource_url="https://gw.example/mcp",
            introspection_url=auth.introspection_endpoint, introspection_client_id=RS_CLIENT,
            introspection_client_secret=Secret(RS_SECRET), introspection_cache_seconds=30), clock=lambda: now[0])
        try:
            token = auth.issue_opaque(scopes=["a"], expires_in=20)
            for step in (0, 5, 5):  # 10 s in: inside both the cache window and the token's life
                now[0] += step
                assert (await verifier.verify(token)).scopes == {"a"}
            assert introspections(auth, token) == 1
            now[0] += 15  # 25 s in: past the token's exp (20 s), within the 30 s window from the first answer
            await verifier.verify(token)  # the test server's real clock still calls it active
            assert introspections(auth, token) == 2
        finally:
            await verifier.aclose()


# -- the authorization server is down ------------------------------------------------------------------------


async def test_authorization_server_down_is_401_not_500(petstore_backend):
    dead = f"http://127.0.0.1:{free_port()}"
    with secured_gateway(petstore_backend.url, issuer=dead, introspection_url=f"{dead}/introspect") as secured:
        for token in (secured.auth.issue(scopes=ALL, extra_claims={"iss": dead}), secured.auth.issue_opaque()):
            response = await post(secured.url, LIST, token)
            assert response.status_code == 401
            assert challenge(response)["error"] == "invalid_token"
            assert challenge(response)["error_description"].startswith("could not verify the token")


# -- mode none -----------------------------------------------------------------------------------------------


async def test_mode_none_adds_nothing_and_warns(petstore_backend, caplog):
    with caplog.at_level(logging.WARNING, logger="gateway.server"), \
            running_gateway(str(SPEC), f"{petstore_backend.url}/api", str(MAPPING)) as (_, url):
        async with httpx2.AsyncClient() as http:
            assert (await http.get(url.replace("/mcp", "/.well-known/oauth-protected-resource"))).status_code == 404
        async with client_with(url, None) as client:
            tools = (await client.list_tools()).tools
    assert all("securitySchemes" not in (t.meta or {}) for t in tools)
    assert any("inbound auth is off" in r.getMessage() for r in caplog.records)


# -- the test authorization server itself (its other users rely on these) ------------------------------------


def test_auth_server_authenticates_clients_every_supported_way():
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    with AuthServer() as auth:
        key = RSAKey.generate_key(2048, parameters={"kid": "client-key"})
        auth.register_client("signer", public_jwk=key.as_dict(private=False), token_lifetime=60, audience="https://api")
        auth.register_client("poster", "p-secret", audience="https://api")

        def assertion(jti: str) -> str:
            now = int(time.time())
            claims = {"iss": "signer", "sub": "signer", "aud": auth.token_endpoint, "iat": now, "exp": now + 60,
                      "jti": jti}
            return jwt.encode({"alg": "RS256", "kid": "client-key"}, claims, key)

        form = {"grant_type": "client_credentials", "scope": "read",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
        signed = httpx2.post(auth.token_endpoint, data={**form, "client_assertion": assertion("one")})
        assert signed.status_code == 200, signed.text
        assert signed.json()["expires_in"] == 60 and signed.json()["scope"] == "read"
        replayed = httpx2.post(auth.token_endpoint, data={**form, "client_assertion": assertion("one")})
        assert replayed.status_code == 401 and replayed.json()["error"] == "invalid_client"
        posted = httpx2.post(auth.token_endpoint, data={"grant_type": "client_credentials", "client_id": "poster",
                                                         "client_secret": "p-secret", "resource": "https://other"})
        wrong = httpx2.post(auth.token_endpoint, data={"grant_type": "client_credentials"}, auth=("poster", "nope"))
        assert wrong.status_code == 401
        introspected = httpx2.post(auth.introspection_endpoint, data={"token": posted.json()["access_token"]},
                                   auth=("poster", "p-secret")).json()
        assert introspected["active"] is True and introspected["aud"] == "https://other"
        assert introspected["sub"] == "poster"
        assert auth.tokens_issued["client_credentials"] == 2
        assert [r["path"] for r in auth.requests] == ["/token", "/token", "/token", "/token", "/introspect"]
        exchanged = httpx2.post(auth.token_endpoint, data={
            "grant_type": TOKEN_EXCHANGE, "subject_token": auth.issue(subject="bob", scopes=["a", "b"]),
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token", "audience": "https://api",
            "scope": "a"}, auth=("poster", "p-secret")).json()
        assert exchanged["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
        claims = httpx2.post(auth.introspection_endpoint, data={"token": exchanged["access_token"]},
                             auth=("poster", "p-secret")).json()
        assert (claims["sub"], claims["act"], claims["aud"], claims["scope"]) == ("bob", {"sub": "poster"},
                                                                                 "https://api", "a")
        auth.rotate_keys()
        after = httpx2.post(auth.introspection_endpoint, data={"token": posted.json()["access_token"]},
                            auth=("poster", "p-secret")).json()
        assert after == {"active": False}  # signed with a withdrawn key


async def test_a_verified_jwt_is_remembered_until_it_expires(monkeypatch):
    """One signature check per token; the remembered identity still ends at the token's `exp`."""
    with AuthServer(audience="https://gw.example/mcp") as auth:
        now = [time.time() + 1]  # past the token's whole-second iat, which leeway 0 would otherwise refuse
        verifier = TokenVerifier(InboundAuth(mode="oauth", issuer=auth.url, resource_url="https://gw.example/mcp",
                                             leeway_seconds=0), clock=lambda: now[0])
        checks = []
        real = verifier._signed_claims
        monkeypatch.setattr(verifier, "_signed_claims", lambda *a: checks.append(1) or real(*a))
        try:
            token = auth.issue(expires_in=60)
            first = await verifier.verify(token)
            assert all([await verifier.verify(token) is first for _ in range(5)]) and len(checks) == 1
            now[0] += 61
            with pytest.raises(AuthError, match="expired"):
                await verifier.verify(token)
        finally:
            await verifier.aclose()
