"""Serving the gateway on loopback for the development tools (`gateway preview`, `gateway doctor`).

Both tools run the ordinary app on this machine only, whatever address the config names: the preview is a
development page that must never be exposed, and the doctor checks a config before it is deployed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import uvicorn

from gateway.config import GatewayConfig
from gateway.errors import ConfigError


def loopback(config: GatewayConfig, port: int = 0) -> GatewayConfig:
    """`config` bound to 127.0.0.1:`port`. The configured host allow-lists are dropped too, so the loopback
    defaults of DNS-rebinding protection apply (a public host name in `allowed_hosts` would refuse 127.0.0.1)."""
    server = replace(config.server, host="127.0.0.1", port=port, allowed_hosts=(), allowed_origins=())
    return replace(config, server=server)


@dataclass(frozen=True, slots=True)
class LocalServer:
    url: str  # http://127.0.0.1:PORT
    task: asyncio.Task[None]  # ends when the server stops (Ctrl-C, or leaving `serve_local`)


@contextlib.asynccontextmanager
async def serve_local(app: Any, port: int = 0) -> AsyncIterator[LocalServer]:
    """Serve the ASGI `app` with uvicorn on 127.0.0.1:`port` (0: a free port) in this event loop.

    The socket is bound here, before uvicorn starts, so a port in use is a `ConfigError` at once and port 0
    needs no guess-then-bind race. Leaving the block stops the server (lifespan shutdown included).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ConfigError(f"127.0.0.1:{port}", f"cannot listen there: {exc.strerror} (choose another --port)"
                              ) from exc
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
                raise RuntimeError("the local server stopped while starting")
            await asyncio.sleep(0.02)
        try:
            yield LocalServer(f"http://127.0.0.1:{sock.getsockname()[1]}", task)
        finally:
            server.should_exit = True
            await task
    finally:
        sock.close()
