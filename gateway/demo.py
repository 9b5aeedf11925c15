"""`gateway demo`: the bundled petstore backend and the gateway in front of it, in one process.

With `auth=True` it also runs the small local authorization server (`adapters.devauth`): the gateway
then checks callers' tokens (issuer = that server, audience = the gateway's URL), the backend demands an
API key that only the gateway holds, and a ready token is printed for trying it out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from dataclasses import replace

import uvicorn

from adapters.devauth import AuthServer
from adapters.petstore import MAPPING, SPEC
from adapters.petstore.backend import create_app as create_backend
from gateway.auth.settings import Secret, UpstreamCredential
from gateway.config import GatewayConfig, config_from_args
from gateway.runtime import load_gateway
from gateway.server import create_app

log = logging.getLogger("gateway.demo")


def _server(app: object, host: str, port: int) -> uvicorn.Server:
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))


def _with_api_key(config: GatewayConfig, key: str) -> GatewayConfig:
    """The backend's API key as the gateway's upstream credential (held in an env var, as in production)."""
    os.environ["PETSTORE_API_KEY"] = key
    credential = UpstreamCredential(type="api_key", name="X-Api-Key", value=Secret(key, "${PETSTORE_API_KEY}"))
    return replace(config, backends=tuple(replace(b, auth=credential) for b in config.backends))


async def run_demo(*, host: str = "127.0.0.1", port: int = 8080, backend_port: int = 9000, auth: bool = False,
                   auth_port: int = 9100) -> None:
    resource_url = f"http://{host}:{port}/mcp"
    api_key = secrets.token_urlsafe(24) if auth else None
    servers = [_server(create_backend(api_key=api_key), "127.0.0.1", backend_port)]
    authority = AuthServer(audience=resource_url, port=auth_port) if auth else None
    config = config_from_args(
        spec=str(SPEC), mapping=str(MAPPING), upstream=f"http://127.0.0.1:{backend_port}/api", host=host, port=port,
        auth_issuer=authority.url if authority else None, resource_url=resource_url if authority else None,
    )
    if authority is not None and api_key is not None:
        config = _with_api_key(config, api_key)
        servers.append(_server(authority.app, "127.0.0.1", auth_port))
    gw = load_gateway(config)
    servers.append(_server(create_app(gw), host, port))
    log.info("petstore backend at http://127.0.0.1:%d/api", backend_port)
    log.info("gateway: %d tools at %s", len(gw.tools), resource_url)
    if authority is not None:
        token = authority.issue(subject="demo-user", scopes=["pets:read", "pets:write", "store:order"],
                                expires_in=3600)
        log.info("authorization server at %s; a token for the next hour (scopes pets:read pets:write "
                 "store:order):\n%s\ntry: npx -y @modelcontextprotocol/inspector --cli %s --method tools/call "
                 "--tool-name list_pets --header \"Authorization: Bearer %s\"", authority.url, token, resource_url,
                 token)
    else:
        log.info("try: npx -y @modelcontextprotocol/inspector --cli %s --method tools/list", resource_url)
    await asyncio.gather(*(server.serve() for server in servers))
