"""`gateway demo`: the bundled petstore backend and the gateway in front of it, in one process."""

from __future__ import annotations

import asyncio
import logging

import uvicorn

from adapters.petstore import MAPPING, SPEC
from adapters.petstore.backend import create_app as create_backend
from gateway.config import config_from_args
from gateway.runtime import load_gateway
from gateway.server import create_app

log = logging.getLogger("gateway.demo")


async def run_demo(*, host: str = "127.0.0.1", port: int = 8080, backend_port: int = 9000) -> None:
    backend = uvicorn.Server(uvicorn.Config(create_backend(), host="127.0.0.1", port=backend_port,
                                            log_level="warning", access_log=False))
    config = config_from_args(spec=str(SPEC), mapping=str(MAPPING), upstream=f"http://127.0.0.1:{backend_port}/api",
                              host=host, port=port)
    gw = load_gateway(config)
    gateway = uvicorn.Server(uvicorn.Config(create_app(gw), host=host, port=port, log_level="warning",
                                            access_log=False))
    log.info("petstore backend at http://127.0.0.1:%d/api", backend_port)
    log.info("gateway: %d tools at http://%s:%d/mcp  (try: npx @modelcontextprotocol/inspector)", len(gw.tools),
             host, port)
    await asyncio.gather(backend.serve(), gateway.serve())
