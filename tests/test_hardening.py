"""The hardened call path with real parts: rate limits, the cap on upstream calls, redaction, the audit line.

The gateway runs under uvicorn in front of a recording upstream (it counts what reaches it and how many
calls are in flight at once) or the bundled petstore; the Redis path uses a real `redis-server` when
one is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace

import httpx2
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from adapters.petstore import MAPPING as PETSTORE_MAPPING
from adapters.petstore import SPEC as PETSTORE_SPEC
from gateway.auth.settings import AuditSettings, Identity, RateLimits, Secret, UpstreamCredential
from gateway.calls.forward import Backend
from gateway.calls.limits import ConcurrencyCap, RateLimiter
from gateway.calls.pipeline import RETRY_AFTER_META, CallPolicy, build_policy, call_tool
from gateway.config import GatewayConfig, config_from_args
from gateway.errors import ConfigError
from gateway.redact import Redactor, install_log_redaction
from gateway.runtime import load_gateway
from tests.conftest import ServerThread, debian_tool, free_port
from tests.gateway_harness import connect, running_gateway, text_of

pytestmark = pytest.mark.anyio

API_KEY = "k3y-Sup3rS3cret-0042"  # sent upstream as a static X-API-Key header
CREDENTIAL = "cr3d-Valu3-from-env-77"  # a configured credential secret the upstream happens to echo
JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJhbGljZSIsImF1ZCI6Im1jcCJ9.c2lnbmF0dXJlLWJ5dGVz"
ORDINARY = {"items": [{"id": 1, "name": "Basic information"}, {"id": 2, "name": "bearer token-based login"}],
            "note": "keys are issued at /keys; password reset at /reset?token-help=1"}


def _op(operation_id: str, method: str = "get", body: dict | None = None, answer: dict | None = None) -> dict:
    schema = answer or {"type": "object"}
    operation: dict = {"operationId": operation_id,
                       "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": schema}}}}}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return {method: operation}


SPEC = yaml.safe_dump({
    "openapi": "3.0.3",
    "info": {"title": "Recording", "version": "1"},
    "paths": {
        "/items": _op("items"),
        "/other": _op("other"),
        "/slow": _op("slow"),
        "/hold": _op("hold"),
        "/echo-key": _op("echoKey"),
        "/echo-credential": _op("echoCredential"),
        "/fail": _op("fail"),
        "/numbers": _op("numbers"),
        "/mismatch": _op("mismatch", answer={"type": "object", "properties": {"items": {"type": "array"}}}),
        "/html": _op("html"),
        "/login": _op("login", "post", {"type": "object", "required": ["username", "password"], "properties": {
            "username": {"type": "string"}, "password": {"type": "string"}, "note": {"type": "string"}}}),
    },
})
MAPPING = """
version: 1
tools:
  hold: {timeout: 10}
  items: {timeout: 0.5}
  numbers:
    response: {select: "sum(items)"}
"""


class Recorder:
    """What reached the upstream: requests per path, calls in flight now and at most."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.in_flight = 0
        self.peak = 0
        self.held = threading.Event()
        self.release = threading.Event()

    def reset(self) -> None:
        self.hits.clear()
        self.peak = 0
        self.held.clear()
        self.release.clear()

    def app(self) -> Starlette:
        async def record(request: Request) -> Response:
            path = request.url.path
            self.hits[path] += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            try:
                return await answer(request, path)
            finally:
                self.in_flight -= 1

        async def answer(request: Request, path: str) -> Response:
            key = request.headers.get("x-api-key", "")
            if path == "/slow":
                await asyncio.sleep(0.3)
            elif path == "/hold":
                self.held.set()
                deadline = time.monotonic() + 10
                while not self.release.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
            elif path == "/echo-key":
                return JSONResponse({"received": key, "note": f"your key is {key}"})
            elif path == "/echo-credential":
                return JSONResponse({"configured": CREDENTIAL})
            elif path == "/fail":
                return JSONResponse({"message": f"key {key} refused; sent Authorization: Bearer {JWT}"},
                                    status_code=500)
            elif path == "/numbers":
                return JSONResponse({"items": [1, f"x {JWT}"]})
            elif path == "/login":
                return JSONResponse({"ok": True})
            elif path == "/mismatch":
                return JSONResponse({"items": "many"})
            elif path == "/html":
                return HTMLResponse("<html><body>Sign in</body></html>")
            return JSONResponse(ORDINARY)

        paths = ["/items", "/other", "/slow", "/hold", "/echo-key", "/echo-credential", "/fail", "/numbers",
                 "/mismatch", "/html"]
        return Starlette(routes=[*(Route(p, record) for p in paths), Route("/login", record, methods=["POST"])])


@pytest.fixture(scope="module")
def recorder() -> Iterator[tuple[Recorder, str]]:
    rec = Recorder()
    with ServerThread(rec.app()) as upstream:
        yield rec, upstream.url


@pytest.fixture
def upstream(recorder, tmp_path) -> Iterator[tuple[Recorder, str, str, str]]:
    """The recorder (reset), its URL, and the spec and mapping files for it."""
    rec, url = recorder
    rec.reset()
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "mapping.yaml").write_text(MAPPING)
    yield rec, url, str(tmp_path / "spec.yaml"), str(tmp_path / "mapping.yaml")
    rec.release.set()


def server(**changes) -> Callable[[GatewayConfig], GatewayConfig]:
    return lambda config: replace(config, server=replace(config.server, **changes))


def backend(**changes) -> Callable[[GatewayConfig], GatewayConfig]:
    return lambda config: replace(config, backends=tuple(replace(b, **changes) for b in config.backends))


def both(*steps: Callable[[GatewayConfig], GatewayConfig]) -> Callable[[GatewayConfig], GatewayConfig]:
    def apply(config: GatewayConfig) -> GatewayConfig:
        for step in steps:
            config = step(config)
        return config
    return apply


def audit_lines(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.audit"]


# --- rate limits -------------------------------------------------------------------------------------------

async def test_rate_limits_per_tool_and_per_caller_refuse_without_reaching_the_backend(upstream):
    rec, url, spec, mapping = upstream
    limits = server(rate_limits=RateLimits(per_caller="3/minute", per_tool="2/minute"))
    with running_gateway(spec, url, mapping, configure=limits) as (_, mcp):
        async with connect(mcp) as client:
            first = [await client.call_tool("other", {}) for _ in range(3)]
            switched = await client.call_tool("slow", {})
            caller_limited = await client.call_tool("slow", {})
    assert [r.is_error for r in first] == [False, False, True]
    tool_limited = first[2]
    assert text_of(tool_limited).startswith("Rate limit reached for tool other: at most 2 per minute per caller "
                                            "for this tool; retry in ")
    retry = tool_limited.meta[RETRY_AFTER_META]
    assert isinstance(retry, int) and 1 <= retry <= 60 and f"retry in {retry} s." in text_of(tool_limited)
    assert not switched.is_error  # another tool: the refused call was not counted against the caller
    assert caller_limited.is_error and "at most 3 per minute per caller;" in text_of(caller_limited)
    assert caller_limited.meta[RETRY_AFTER_META] >= 1
    assert rec.hits == Counter({"/other": 2, "/slow": 1})  # nothing was sent for the limited calls


async def test_rate_limits_are_per_caller(upstream):
    rec, url, spec, _ = upstream
    limiter = RateLimiter(RateLimits(per_tool="1/minute"))
    gw = load_gateway(config_from_args(spec=spec, upstream=url))
    tool = gw.tools["other"]
    client = Backend("default", url)
    policy = CallPolicy(limiter=limiter)
    alice = Identity(subject="alice", client_id="app", scopes=frozenset())
    bob = Identity(subject="bob", client_id="app", scopes=frozenset())
    app_only = Identity(subject=None, client_id="service-app", scopes=frozenset())
    try:
        results = [await call_tool(tool, {}, client, legacy=False, identity=who, policy=policy)
                   for who in (alice, alice, bob, app_only, app_only)]
    finally:
        await client.aclose()
    assert [r.is_error for r in results] == [False, True, False, False, True]
    assert rec.hits["/other"] == 3


async def test_rate_limit_config_errors_name_the_setting():
    with pytest.raises(ConfigError) as bad_rate:
        RateLimiter(RateLimits(per_caller="lots"))
    assert bad_rate.value.where == "server.rate_limits.per_caller" and "60/minute" in bad_rate.value.message
    with pytest.raises(ConfigError) as bad_storage:
        RateLimiter(RateLimits(per_tool="1/second", storage="nosuch://x"))
    assert bad_storage.value.where == "server.rate_limits.storage"


@pytest.fixture
def redis_url() -> Iterator[str]:
    pytest.importorskip("redis", reason="the redis client (pip install 'limits[redis]') is not installed")
    binary = debian_tool("redis-server", "redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


async def test_redis_storage_is_shared_by_replicas_and_fails_open(redis_url, caplog):
    settings = RateLimits(per_tool="2/minute", storage=redis_url)
    replica_a, replica_b = RateLimiter(settings), RateLimiter(settings)
    assert await replica_a.check("carol", "search") is None
    assert await replica_b.check("carol", "search") is None
    refused = await replica_a.check("carol", "search")
    assert refused is not None and refused.limit == "at most 2 per minute per caller for this tool"
    assert 1 <= refused.retry_after <= 60
    assert await replica_b.check("carol", "search") is not None
    assert await replica_b.check("dave", "search") is None
    unreachable = RateLimiter(replace(settings, storage=f"redis://127.0.0.1:{free_port()}/0"))
    with caplog.at_level(logging.WARNING, logger="gateway.limits"):
        assert await unreachable.check("carol", "search") is None
    assert any("rate limit storage unavailable" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("mode", ["fail_open", "fail_closed"])
async def test_a_down_or_silent_rate_limit_store_fails_as_configured(mode, caplog):
    """Redis refusing connections (nothing on the port) and Redis that accepts but never answers."""
    pytest.importorskip("redis", reason="the redis client (pip install 'limits[redis]') is not installed")
    from gateway.calls.limits import STORE_UNAVAILABLE

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (the kernel does) and never answers
    try:
        for storage in (f"redis://127.0.0.1:{free_port()}/0", f"redis://127.0.0.1:{silent.getsockname()[1]}/0"):
            limiter = RateLimiter(RateLimits(per_tool="2/minute", storage=storage, on_storage_error=mode,
                                             storage_timeout_seconds=0.3))
            with caplog.at_level(logging.WARNING, logger="gateway.limits"):
                started = time.monotonic()
                refused = await limiter.check("carol", "search")
            assert time.monotonic() - started < 5  # bounded by the timeout, however the store fails
            if mode == "fail_open":
                assert refused is None
            else:
                assert refused is not None and refused.limit == STORE_UNAVAILABLE and refused.retry_after == 5
    finally:
        silent.close()
    wording = "call allowed unchecked" if mode == "fail_open" else "call refused (on_storage_error: fail_closed)"
    assert sum(wording in r.getMessage() for r in caplog.records) == 2


# --- concurrency cap ---------------------------------------------------------------------------------------

async def test_at_most_max_concurrency_calls_reach_the_backend_at_once(upstream):
    rec, url, spec, mapping = upstream
    with running_gateway(spec, url, mapping, configure=backend(max_concurrency=2)) as (_, mcp):
        async with connect(mcp) as client:
            results = await asyncio.gather(*(client.call_tool("slow", {}) for _ in range(5)))
    assert all(not r.is_error for r in results), [text_of(r) for r in results]
    assert rec.hits["/slow"] == 5  # the late calls waited for a slot rather than failing
    assert rec.peak <= 2


async def test_a_call_that_gets_no_slot_in_time_is_busy(upstream):
    rec, url, spec, mapping = upstream
    with running_gateway(spec, url, mapping, configure=backend(max_concurrency=1)) as (_, mcp):
        async with connect(mcp) as client, connect(mcp) as other:
            holding = asyncio.ensure_future(client.call_tool("hold", {}))
            assert await asyncio.to_thread(rec.held.wait, 10)
            busy = await other.call_tool("items", {})  # waits its 0.5 s timeout for the only slot
            rec.release.set()
            held = await holding
    assert not held.is_error
    assert busy.is_error and text_of(busy).startswith("The backend 'default' is busy (1 call in flight)")
    assert "retry shortly" in text_of(busy)
    assert rec.hits["/items"] == 0 and rec.peak == 1


def test_default_limits():
    config = config_from_args(spec=str(PETSTORE_SPEC), upstream="http://127.0.0.1:1")
    policy = build_policy(config, {})
    assert config.server.max_request_bytes == 1_048_576  # inbound body, enforced by the MCP SDK (413)
    only = config.backends[0]
    assert (only.timeout_connect, only.timeout_read, only.max_concurrency) == (5.0, 30.0, 50)
    assert policy.limiter is None and policy.caps["default"].limit == 50
    assert all(t.response.max_bytes == 1_000_000 for t in load_gateway(config).tools.values())
    with pytest.raises(ValueError, match="max_concurrency"):
        ConcurrencyCap("default", 0)


# --- inbound request size ----------------------------------------------------------------------------------

async def test_oversized_inbound_request_gets_413(upstream):
    rec, url, spec, mapping = upstream
    with running_gateway(spec, url, mapping, configure=server(max_request_bytes=20_000)) as (_, mcp):
        async with connect(mcp) as client:
            fits = await client.call_tool("login", {"username": "u", "password": "p", "note": "x" * 10_000})
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
                   "MCP-Protocol-Version": "2025-11-25"}
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                           "params": {"name": "login", "arguments": {"username": "u", "password": "p",
                                                                     "note": "x" * 30_000}}})
        async with httpx2.AsyncClient() as http:
            declared = await http.post(mcp, content=body, headers=headers)
            streamed = await http.post(mcp, content=_chunks(body.encode()), headers=headers)
    assert not fits.is_error
    assert declared.status_code == 413 and streamed.status_code == 413
    assert rec.hits["/login"] == 1


async def _chunks(data: bytes):
    """A body without Content-Length (chunked), so the limit must be enforced while reading."""
    for start in range(0, len(data), 4096):
        yield data[start:start + 4096]


# --- redaction ---------------------------------------------------------------------------------------------

async def test_secrets_echoed_by_the_backend_are_redacted(upstream, caplog):
    _, url, spec, mapping = upstream
    credential = UpstreamCredential(type="api_key", name="X-Other-Key", value=Secret(CREDENTIAL, "${OTHER_KEY}"))
    configure = backend(headers={"X-API-Key": API_KEY}, auth=credential)
    caplog.set_level(logging.INFO, logger="gateway")
    with running_gateway(spec, url, mapping, configure=configure) as (_, mcp):
        async with connect(mcp) as client:
            echoed = await client.call_tool("echoKey", {})
            configured = await client.call_tool("echoCredential", {})
            failed = await client.call_tool("fail", {})
            ordinary = await client.call_tool("other", {})
    assert not echoed.is_error
    assert echoed.structured_content == {"received": "[redacted]", "note": "your key is [redacted]"}
    assert configured.structured_content == {"configured": "[redacted]"}
    assert failed.is_error and "500" in text_of(failed)
    assert "key [redacted] refused; sent Authorization: [redacted]" in text_of(failed)
    assert ordinary.structured_content == ORDINARY  # no false positives on ordinary results
    assert json.loads(text_of(ordinary)) == ORDINARY
    wire = json.dumps([r.model_dump(mode="json") for r in (echoed, configured, failed)]) + caplog.text
    assert API_KEY not in wire and CREDENTIAL not in wire and JWT not in wire


async def test_an_exception_in_the_call_path_is_a_tool_error_logged_redacted(upstream, caplog):
    _, url, spec, mapping = upstream
    caplog.set_level(logging.INFO, logger="gateway")
    with running_gateway(spec, url, mapping) as (_, mcp):
        async with connect(mcp) as client:
            broken = await client.call_tool("numbers", {})  # `sum(items)` over a string raises at run time
            after = await client.call_tool("other", {})
    assert broken.is_error and "internal error in the gateway (logged)" in text_of(broken)
    assert not after.is_error
    errors = [r for r in caplog.records if r.name == "gateway.calls" and r.levelno == logging.ERROR]
    assert len(errors) == 1 and "Traceback" in errors[0].getMessage() and "sum()" in errors[0].getMessage()
    assert JWT not in caplog.text and "x [redacted]" in errors[0].getMessage()  # the value, quoted in the error
    assert [(line["tool"], line["outcome"], line["upstream_status"]) for line in audit_lines(caplog)] == [
        ("numbers", "internal_error", 200), ("other", "ok", 200)]


async def test_the_served_gateway_redacts_other_libraries_logs(upstream, caplog):
    _, url, spec, mapping = upstream
    in_query = UpstreamCredential(type="api_key", name="api_key", location="query", value=Secret(CREDENTIAL, "${K}"))
    caplog.set_level(logging.INFO, logger="aiohttp.client")
    with running_gateway(spec, url, mapping, configure=backend(auth=in_query)) as (_, mcp):
        async with connect(mcp) as client:
            assert not (await client.call_tool("other", {})).is_error
            # a library logging a request line in this process, query (and so the credential) included
            logging.getLogger("aiohttp.client").info("GET %s/other?api_key=%s", url, CREDENTIAL)
    assert "/other?api_key=[redacted]" in caplog.text and CREDENTIAL not in caplog.text


def test_log_filter_redacts_messages_arguments_and_tracebacks(caplog):
    logger = logging.getLogger("gateway.test_hardening")
    rotating = ["tok-ONE-111111"]
    redactor = Redactor(["static-secret-value"], sources=[lambda: rotating])
    remove = install_log_redaction(redactor)
    caplog.set_level(logging.INFO, logger="gateway")
    try:
        logger.info("body %r from upstream, which said %s", {"password": "hunter22"}, f"Authorization: Bearer {JWT}")
        rotating[:] = ["tok-TWO-222222"]  # the token rotated after the filter was installed
        logger.info("token tok-TWO-222222 and jwt %s and static-secret-value", JWT)
        try:
            raise RuntimeError("failed with api_key=abcdef123456 and static-secret-value")
        except RuntimeError:
            logger.exception("call failed")
    finally:
        remove()
    logger.info("after removal: static-secret-value")
    records = [r for r in caplog.records if r.name == logger.name]
    messages = [r.getMessage() for r in records]
    assert messages[0] == "body {'password': '[redacted]'} from upstream, which said Authorization: [redacted]"
    assert messages[1] == "token [redacted] and jwt [redacted] and [redacted]"
    assert "RuntimeError: failed with api_key=[redacted] and [redacted]" in records[2].exc_text
    assert messages[3] == "after removal: static-secret-value"
    assert JWT not in caplog.text and "hunter22" not in caplog.text and "abcdef123456" not in caplog.text


@pytest.mark.parametrize(("text", "expected"), [
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: [redacted]"),
    ("proxy-authorization:Bearer abc", "proxy-authorization:[redacted]"),
    ("Set-Cookie: sid=31d4d96e407aad42; Path=/", "Set-Cookie: [redacted]"),
    (f"got {JWT}.", "got [redacted]."),
    ("curl -H 'x' https://h/x?client_secret=s3cr3tvalue&page=2", "curl -H 'x' https://h/x?client_secret=[redacted]&page=2"),
    ('{"refresh_token": "r-1\\"2", "n": 1}', '{"refresh_token": "[redacted]", "n": 1}'),
    ("sent Bearer 2YotnFZFEjr1zCsicMWpAA to it", "sent Bearer [redacted] to it"),
])
def test_generic_credentials_are_recognised(text, expected):
    assert Redactor().redact(text) == expected


@pytest.mark.parametrize("text", [
    "Basic information about bearer tokens", "page_token=abc123&limit=10", '{"key": "color", "value": "blue"}',
    "eyJ alone is not a token", "The password must have 8 characters.", "",
])
def test_ordinary_text_is_left_alone(text):
    assert Redactor(["abc", "short"]).redact(text) == text  # secrets under 6 characters are not searched for


def test_scrub_keeps_json_valid_and_leaves_clean_answers_untouched():
    redactor = Redactor(["pa/ss\"word-1"])
    clean = b'{"a": 1}'
    assert redactor.scrub(clean) is clean
    leaked = json.dumps({"echo": "pa/ss\"word-1", "url": "https://h/?k=pa%2Fss%22word-1"}).encode()
    assert json.loads(redactor.scrub(leaked)) == {"echo": "[redacted]", "url": "https://h/?k=[redacted]"}
    assert redactor.scrub(b"caller token t0k3n-abc", extra=["t0k3n-abc"]) == b"caller token [redacted]"


# --- the audit line ----------------------------------------------------------------------------------------

@pytest.fixture
def petstore(petstore_backend) -> tuple[str, str, str]:
    return str(PETSTORE_SPEC), f"{petstore_backend.url}/api", str(PETSTORE_MAPPING)


async def test_audit_line_per_outcome(petstore, caplog):
    caplog.set_level(logging.INFO, logger="gateway.audit")
    limits = server(rate_limits=RateLimits(per_tool="3/minute"))
    with running_gateway(*petstore, configure=limits) as (_, mcp):
        async with connect(mcp) as client:
            for arguments in ({"petId": 1}, {"petId": "x"}, {"petId": 4242}, {"petId": 1}):
                await client.call_tool("get_pet", arguments)
    lines = audit_lines(caplog)
    assert [(line["outcome"], line["upstream_status"]) for line in lines] == [
        ("ok", 200), ("invalid_arguments", None), ("upstream_http_error", 404), ("rate_limited", None)]
    for line in lines:
        assert line["event"] == "tool_call" and line["tool"] == "get_pet" and line["backend"] == "default"
        assert line["subject"] is None and line["client_id"] is None
        assert isinstance(line["ms"], float) and "arguments" not in line


async def test_audit_arguments_only_when_configured_and_redacted(upstream, caplog):
    _, url, spec, mapping = upstream
    caplog.set_level(logging.INFO, logger="gateway.audit")
    arguments = {"username": "alice", "password": "hunter22", "note": f"my token is {JWT}"}
    for log_arguments in (False, True):
        with running_gateway(spec, url, mapping, configure=server(audit=AuditSettings(log_arguments))) as (_, mcp):
            async with connect(mcp) as client:
                assert not (await client.call_tool("login", arguments)).is_error
    without, with_arguments = audit_lines(caplog)
    assert "arguments" not in without
    assert with_arguments["arguments"] == {"username": "alice", "password": "[redacted]",
                                           "note": "my token is [redacted]"}
    assert "hunter22" not in caplog.text and JWT not in caplog.text


async def test_audit_line_names_the_caller_and_upstream_failures(upstream, caplog):
    _, url, spec, _ = upstream
    caplog.set_level(logging.INFO, logger="gateway.audit")
    gw = load_gateway(config_from_args(spec=spec, upstream=url))
    caller = Identity(subject="alice", client_id="chatgpt", scopes=frozenset({"read"}))
    live, dead = Backend("default", url), Backend("default", f"http://127.0.0.1:{free_port()}")
    try:
        results = [await call_tool(gw.tools[name], {}, live, legacy=False, identity=caller)
                   for name in ("other", "mismatch", "html", "fail")]
        down = await call_tool(gw.tools["other"], {}, dead, legacy=False, identity=caller)
    finally:
        await live.aclose()
        await dead.aclose()
    assert [r.is_error for r in results] == [False, True, True, True]
    assert down.is_error and "could not connect" in text_of(down)
    assert [(line["subject"], line["client_id"], line["outcome"], line["upstream_status"])
            for line in audit_lines(caplog)] == [
        ("alice", "chatgpt", "ok", 200), ("alice", "chatgpt", "output_mismatch", 200),
        ("alice", "chatgpt", "upstream_bad_answer", 200), ("alice", "chatgpt", "upstream_http_error", 500),
        ("alice", "chatgpt", "upstream_connect", None)]
