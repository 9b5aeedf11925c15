"""Reading a request body ahead of the app that serves it, and handing it on: the bearer-token guard and the
fast path both look at the JSON-RPC body before the SDK's app does (and parse it once between them)."""

from __future__ import annotations

from typing import Any

from starlette.types import Message, Receive, Scope

from gateway.calls.shape import parse_json

_PARSED = "gateway.parsed_body"  # scope key: (body, its JSON), left by the first reader for the next


async def read_body(receive: Receive, limit: int | None = None) -> tuple[bytes | None, bool]:
    """The body, read until it ends or passes `limit` bytes: (body, complete); (None, False) when the client
    went away."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if limit is not None and size > limit:
            return b"".join(chunks), False


def replay(body: bytes, complete: bool, receive: Receive) -> Receive:
    """A `receive` that gives the body read so far, then the rest of the request as it comes."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": not complete}

    return replayed


def body_json(scope: Scope, body: bytes) -> Any:
    """`body` parsed as JSON (exact integers beyond 64 bits), once per request: the first reader leaves the
    result in the scope and the next one, handed the same body, takes it from there. ValueError when it is
    not JSON."""
    parsed = scope.get(_PARSED)
    if parsed is not None and (parsed[0] is body or parsed[0] == body):
        return parsed[1]
    value = parse_json(body)
    scope[_PARSED] = (body, value)
    return value
