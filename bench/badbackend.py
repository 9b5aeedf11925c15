"""A misbehaving HTTP/1.1 backend on loopback, written on raw asyncio streams (no framework would misbehave on cue).

    .venv/bin/python bench/badbackend.py [--port 0]     # prints {"port": N} on one line once listening

Routes (every GET; any query is ignored), and what each does:

| route | answer |
|---|---|
| `/normal` | `{"ok": true, "n": <counter>}`, keep-alive |
| `/slow` | waits 3 s, then `{}` (beyond the tool timeout) |
| `/trickle` | a 2,000-byte JSON body, 2 bytes every 0.1 s (10 s in all) |
| `/bomb` | 100 kB of gzip that inflates to 100 MB |
| `/html500` | 500 with an HTML page, keep-alive |
| `/reset` | a chunked body started, then a TCP reset |
| `/truncated` | `Content-Length: 1000`, then half a JSON object and close |
| `/huge` | a 100 MB JSON body, streamed |
| `/redirect` | 302 to `http://evil.example/steal`, keep-alive |
| `/badutf8` | a JSON body with invalid UTF-8, keep-alive |
| `/lying` | `Content-Length: 5000`, a short complete JSON body, then close (the length lies) |
| `/__stats` | the requests received so far, by route (not in `SPEC`) |

`SPEC` is the OpenAPI document describing them (plus `echo`, which takes arguments), for the soak.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
import zlib

ROUTES_DOC = {
    "normal": {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer"}}},
    "slow": {"type": "object"}, "trickle": {"type": "object"}, "bomb": {"type": "array"},
    "html500": {"type": "object"}, "reset": {"type": "object"}, "truncated": {"type": "object"},
    "huge": {"type": "array"}, "redirect": {"type": "object"}, "badutf8": {"type": "object"},
    "lying": {"type": "object"},
}


def spec() -> dict:
    """The OpenAPI 3.0 document of the routes (tool names are the route names) plus `echo` (arguments)."""
    ok = {"description": "ok"}
    paths = {f"/{name}": {"get": {"operationId": name, "responses": {"200": {
        **ok, "content": {"application/json": {"schema": schema}}}}}} for name, schema in ROUTES_DOC.items()}
    paths["/echo/{id}"] = {"get": {"operationId": "echo", "parameters": [
        {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}},
        {"name": "tag", "in": "query", "required": True, "schema": {"type": "string", "enum": ["a", "b"]}},
    ], "responses": {"200": {**ok, "content": {"application/json": {"schema": {"type": "object"}}}}}}}
    return {"openapi": "3.0.3", "info": {"title": "Bad backend", "version": "1"}, "paths": paths}


def gzip_bomb(megabytes: int) -> bytes:
    """A JSON array of one string of `megabytes` MB, gzipped (about 1000:1), built without holding it inflated."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"x" * 1_000_000
    parts = [packer.compress(b'["')] + [packer.compress(chunk) for _ in range(megabytes)]
    return b"".join([*parts, packer.compress(b'"]'), packer.flush()])


def head(status: str = "200 OK", length: int | None = None, *extra: str, close: bool = True) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json", *extra]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class BadBackend:
    def __init__(self) -> None:
        self.bomb = gzip_bomb(100)
        self.counter = 0
        self.hits: dict[str, int] = {}
        self.open_connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        try:
            while True:  # keep-alive: the well-behaved routes answer and wait for the next request
                try:
                    request_head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                target = request_head.split(b" ", 2)[1].decode("latin-1")
                route = target.partition("?")[0].strip("/").split("/")[0]
                self.hits[route] = self.hits.get(route, 0) + 1
                if not await self.answer(route, target, writer):
                    return
        except (ConnectionError, OSError):
            pass
        finally:
            self.open_connections -= 1
            writer.close()

    async def answer(self, route: str, target: str, writer: asyncio.StreamWriter) -> bool:
        """Write the route's answer; True to keep the connection for another request."""
        if route == "__stats":  # what reached the backend, by route (the soak checks nothing else was forwarded)
            body = json.dumps(self.hits).encode()
            writer.write(head("200 OK", len(body), close=False) + body)
        elif route == "normal":
            self.counter += 1
            body = json.dumps({"ok": True, "n": self.counter}).encode()
            writer.write(head("200 OK", len(body), close=False) + body)
        elif route == "echo":
            body = json.dumps({"target": target}).encode()
            writer.write(head("200 OK", len(body), close=False) + body)
        elif route == "html500":
            body = b"<html><body><h1>Internal Server Error</h1><p>database exploded</p></body></html>"
            writer.write(head("500 Internal Server Error", len(body), close=False).replace(
                b"application/json", b"text/html") + body)
        elif route == "redirect":
            writer.write(head("302 Found", 0, "Location: http://evil.example/steal", close=False))
        elif route == "badutf8":
            body = b'{"a": "\xff\xfe not UTF-8"}'
            writer.write(head("200 OK", len(body), close=False) + body)
        elif route == "slow":
            await asyncio.sleep(3)
            writer.write(head("200 OK", 2) + b"{}")
            return False
        elif route == "trickle":
            body = b'{"a": "' + b"x" * 1990 + b'"}'
            writer.write(head("200 OK", len(body)))
            for i in range(0, len(body), 2):
                writer.write(body[i:i + 2])
                await writer.drain()
                await asyncio.sleep(0.1)
            return False
        elif route == "bomb":
            writer.write(head("200 OK", len(self.bomb), "Content-Encoding: gzip") + self.bomb)
            await writer.drain()
            return False
        elif route == "reset":
            writer.write(head("200 OK", None, "Transfer-Encoding: chunked") + b"400\r\n" + b"x" * 100)
            await writer.drain()
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            writer.transport.abort()
            return False
        elif route == "truncated":
            writer.write(head("200 OK", 1000) + b'{"a": "only the beginning')
            await writer.drain()
            return False
        elif route == "huge":
            size = 100 * 1024 * 1024
            writer.write(head("200 OK", size) + b'["')
            chunk = b"y" * 65536
            sent = 2
            while sent < size - 2:
                piece = chunk[:min(len(chunk), size - 2 - sent)]
                writer.write(piece)
                sent += len(piece)
                await writer.drain()
            writer.write(b'"]')
            await writer.drain()
            return False
        elif route == "lying":
            body = b'{"lie": true}'
            writer.write(head("200 OK", 5000) + body)
            await writer.drain()
            return False
        else:
            writer.write(head("404 Not Found", 2, close=False) + b"{}")
        await writer.drain()
        return True


async def serve(port: int = 0) -> None:
    backend = BadBackend()
    server = await asyncio.start_server(backend.handle, "127.0.0.1", port, backlog=512)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    async with server:
        await server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
