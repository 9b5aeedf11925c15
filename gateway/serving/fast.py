"""The fast path: the hot stateless JSON requests answered without the SDK's per-request machinery.

For each stateless POST of the handshake era (protocol 2025-11-25 and earlier) the SDK builds a
transport, memory streams, a task group and a dispatcher, and runs the handler through its middleware;
measured under load, that costs more than the gateway's own work. This adapter sits in front of the
SDK's Streamable HTTP endpoint and answers the three requests that dominate traffic, `tools/call`,
`tools/list` and `ping`, itself: the same checks (DNS-rebinding protection, `Accept`, `Content-Type`,
body size), the same handlers (`Endpoint`), and the SDK's own per-version wire serialisation, so the
answer is the SDK's byte for byte.

It serves only the plain, well-formed case. Everything else goes to the SDK unchanged, the body
replayed: other methods and eras (`initialize`, resources, 2026-07-28 requests), anything malformed
or unusual (batches, extra fields, a `cursor`), anything that fails a check (the SDK answers with its
own error), and a call of a tool the endpoint does not have (its JSON-RPC error is the SDK's to write).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import mcp_types as types
import orjson
from mcp.server.streamable_http import check_accept_headers
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import methods as wire
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.asgi import body_json, read_body, replay
from gateway.observability.tracing import Tracing
from gateway.serving.endpoint import Endpoint

if TYPE_CHECKING:
    from gateway.observability.metrics import Metrics

_ENVELOPE = frozenset({"jsonrpc", "id", "method", "params"})
_PARAMS = {"tools/call": frozenset({"name", "arguments", "_meta"}), "tools/list": frozenset({"_meta"}),
           "ping": frozenset({"_meta"})}
_HEADERS = [(b"content-type", b"application/json")]
_MAX_VERDICTS = 256  # distinct header combinations remembered (clients are few; a flood of new ones is checked)


class FastPath:
    """ASGI app in front of the SDK's endpoint app (`sdk`) for one MCP endpoint."""

    def __init__(self, sdk: ASGIApp, endpoint: Endpoint, security: TransportSecuritySettings | None,
                 max_body: int, metrics: Metrics | None = None, tracing: Tracing | None = None) -> None:
        self.sdk = sdk
        self.endpoint = endpoint
        self.security = TransportSecurityMiddleware(security)
        self.max_body = max_body
        self.metrics = metrics
        self.tracing = tracing
        self._results: dict[tuple[str, str], bytes] = {}  # (method, version) -> serialised constant result
        self._admitted: set[tuple[str, str]] = set()  # (method, version) pairs the SDK's check has passed
        self._verdicts: dict[tuple[bytes | None, ...], bool] = {}  # the header checks' verdicts, by header values

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        version = self._fast_version(scope)
        if version is None or not await self._acceptable(scope):
            await self.sdk(scope, receive, send)
            return
        body, complete = await read_body(receive, self.max_body)
        if body is None:  # the client went away
            return
        message = _message(scope, body) if complete and len(body) <= self.max_body else None  # the SDK refuses the rest
        started = time.perf_counter()
        if message is None:
            answered = None
        elif self.tracing is None:
            answered = await self._answer(message, version)
        else:
            answered = await self._traced(message, version)
        if answered is None:
            await self.sdk(scope, replay(body, complete, receive), send)
            return
        answer, error_type = answered
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(answer)).encode()), *_HEADERS]})
        await send({"type": "http.response.body", "body": answer})
        if self.metrics is not None and message is not None:
            params = message.get("params") or {}
            self.metrics.operation(message["method"], params.get("name"), error_type, time.perf_counter() - started)

    def _fast_version(self, scope: Scope) -> str | None:
        """The request's handshake-era protocol version, when the request may take the fast path at all."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        versions = [v for k, v in scope["headers"] if k == b"mcp-protocol-version"]
        if len(versions) != 1:
            return None
        version = versions[0].decode("latin-1")
        return version if version in HANDSHAKE_PROTOCOL_VERSIONS else None

    async def _acceptable(self, scope: Scope) -> bool:
        """The SDK's checks in front of a JSON POST: host and origin, JSON accepted and sent, size declared.

        They depend only on those headers, which a client sends the same way on every request, so each
        combination is checked once (by the SDK's own functions) and its verdict kept."""
        host = origin = accept = content_type = length = None
        for name, value in scope["headers"]:  # the first of each, as `Headers.get` reads them
            if name == b"host":
                host = host if host is not None else value
            elif name == b"origin":
                origin = origin if origin is not None else value
            elif name == b"accept":
                accept = accept if accept is not None else value
            elif name == b"content-type":
                content_type = content_type if content_type is not None else value
            elif name == b"content-length":
                length = length if length is not None else value
        if length is not None and not (length.isdigit() and int(length) <= self.max_body):
            return False
        key = (host, origin, accept, content_type)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = await self._check(scope)
            if len(self._verdicts) < _MAX_VERDICTS:
                self._verdicts[key] = verdict
        return verdict

    async def _check(self, scope: Scope) -> bool:
        request = Request(scope)
        if await self.security.validate_request(request, is_post=True) is not None:
            return False
        if not check_accept_headers(request)[0]:
            return False
        content_type = Headers(scope=scope).get("content-type", "")
        return any(part.strip() == "application/json" for part in content_type.split(";")[0].split(","))

    async def _traced(self, message: Mapping[str, Any], version: str) -> tuple[bytes, str] | None:
        """`_answer` in the request's server span (none for a request the SDK will answer, which makes its own)."""
        assert self.tracing is not None
        with self.tracing.server_span(message["method"], message.get("params") or {}, version, message["id"]) as span:
            answered = await self._answer(message, version)
            if answered is not None:
                self.tracing.finish(span, error_type=answered[1])
            return answered

    async def _answer(self, message: Mapping[str, Any], version: str) -> tuple[bytes, str] | None:
        """The response body for a well-formed hot request and its error type ("tool_error" for an `isError`
        result, else ""), or None to leave the request to the SDK."""
        method, params = message["method"], message.get("params") or {}
        if method == "tools/call":
            name, arguments = params.get("name"), params.get("arguments")
            if not isinstance(name, str) or not (arguments is None or isinstance(arguments, dict)):
                return None
        # The SDK's check of the params for this era. Once it has admitted (method, version), params of
        # only the fields just checked (no `_meta`) pass it by construction, so only the rest pay for it.
        plain = "_meta" not in params
        if not plain or (method, version) not in self._admitted:
            try:
                wire.validate_client_request(method, version, message.get("params"))
            except (ValueError, KeyError):  # pydantic's ValidationError is a ValueError
                return None
            if plain:
                self._admitted.add((method, version))
        head = b'{"jsonrpc":"2.0","id":' + _dumps(message["id"]) + b',"result":'
        if method == "tools/call":
            try:
                result = await self.endpoint.call(name, arguments, legacy=True)
            except MCPError:
                return None
            body = head + _dumps(_call_result(result) or _wire(method, version, result)) + b"}"
            return body, "tool_error" if result.is_error else ""
        key = (method, version)
        if key not in self._results:
            self._results[key] = (_listing(version, self.endpoint.list_tools(legacy=True)) if method == "tools/list"
                                  else _dumps(_wire(method, version, types.EmptyResult())))
        return head + self._results[key] + b"}", ""


def _dumps(value: Any) -> bytes:
    """Compact JSON as the SDK writes it: orjson, or the standard library for an integer beyond 64 bits
    (a schema's huge `maximum`, an ID kept exact), which orjson cannot write."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _wire(method: str, version: str, result: Any) -> dict[str, Any]:
    """The result as the SDK puts it on the wire for `version` (its own per-version serialiser)."""
    return wire.serialize_server_result(method, version, result.model_dump(by_alias=True, mode="json",
                                                                           exclude_none=True))


_LISTING_CHUNK = 32
"""Tools serialised at a time for a `tools/list` answer."""


def _listing(version: str, listing: types.ListToolsResult) -> bytes:
    """The `tools/list` answer as `_wire` writes it, serialised a few tools at a time: for a large API the
    intermediate forms of the whole listing at once would take several times its size in memory."""
    method = "tools/list"
    tools = listing.tools
    answer = _wire(method, version, listing.model_copy(update={"tools": []}))
    answer["tools"] = [orjson.Fragment(_dumps(tool)) for start in range(0, len(tools), _LISTING_CHUNK)
                       for tool in _wire(method, version, listing.model_copy(
                           update={"tools": tools[start:start + _LISTING_CHUNK]}))["tools"]]
    return orjson.dumps(answer)


def _call_result(result: types.CallToolResult) -> dict[str, Any] | None:
    """The handshake-era wire form of the results the gateway builds (text blocks, structured content, the
    error flag, `_meta`), written directly: the SDK's serialiser copies and re-validates the whole answer,
    twice, which for a 50 kB list costs more than everything else the call does. None for any other
    shape (an embedded resource, annotations), which the SDK's serialiser then writes."""
    content = []
    for block in result.content:
        if type(block) is not types.TextContent or block.annotations is not None or block.meta is not None:
            return None
        content.append({"text": block.text, "type": "text"})
    wire: dict[str, Any] = {}  # the wire models' fields, in their order
    if result.meta is not None:
        wire["_meta"] = result.meta
    wire["content"] = content
    if result.is_error is not None:
        wire["isError"] = result.is_error
    if result.structured_content is not None:
        wire["structuredContent"] = result.structured_content
    return wire


def _message(scope: Scope, body: bytes) -> Mapping[str, Any] | None:
    """A single, plain JSON-RPC request of a hot method, or None."""
    try:
        message = body_json(scope, body)  # parsed by the bearer guard already, when it is on
    except ValueError:
        return None
    if not isinstance(message, dict) or not _ENVELOPE.issuperset(message) or message.get("jsonrpc") != "2.0":
        return None
    request_id, method, params = message.get("id"), message.get("method"), message.get("params")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int) or not isinstance(method, str) \
            or method not in _PARAMS:
        return None
    if params is not None and (not isinstance(params, dict) or not _PARAMS[method].issuperset(params)
                               or not isinstance(params.get("_meta", {}), dict)):
        return None
    return message
