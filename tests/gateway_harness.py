"""Test helpers: a gateway served for real (uvicorn) and an MCP client connected to it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from mcp import Client

from gateway.config import GatewayConfig, config_from_args
from gateway.runtime import Gateway, load_gateway
from gateway.server import create_app
from tests.conftest import ServerThread


@contextlib.contextmanager
def running_gateway(spec: str, upstream: str, mapping: str | None = None, *,
                    configure: Callable[[GatewayConfig], GatewayConfig] | None = None,
                    discovery: str | None = None) -> Iterator[tuple[Gateway, str]]:
    """Load the gateway for `spec` and serve it; yields (gateway, MCP URL).

    `configure` changes the command-line config before loading (rate limits, audit, backend settings);
    `discovery` is `--discovery` (flat lists every tool, whatever the API's size).
    """
    config = config_from_args(spec=spec, mapping=mapping, upstream=upstream, discovery=discovery)
    if configure is not None:
        config = configure(config)
    gw = load_gateway(config)
    with ServerThread(create_app(gw)) as server:
        yield gw, f"{server.url}/mcp"


@contextlib.asynccontextmanager
async def connect(url: str, *, legacy: bool = False) -> AsyncIterator[Client]:
    async with Client(url, mode="legacy" if legacy else "auto") as client:
        yield client


def text_of(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)
