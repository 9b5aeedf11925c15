"""Inbound auth over HTTP: the bearer-token guard in front of the MCP endpoint and the RFC 9728 metadata.

The guard is a plain ASGI app wrapped around the MCP endpoint only (health checks and metadata stay
public). It reads the JSON-RPC body first (a small request, capped by the route's body limit), because
what a request needs depends on it: a `tools/call` needs the server's required scopes plus that tool's
scopes, and when some tools are public ("noauth") anyone may discover the server, list the tools and
call the public ones. Answers follow RFC 6750 and the MCP authorization spec:

- no token, where one is needed: 401 `Bearer resource_metadata="...", scope="..."`;
- a token that does not verify: 401 `error="invalid_token"` with a short description;
- a valid token without the needed scopes: 403 `error="insufficient_scope"`;
- a token in the query string: 400 `error="invalid_request"` (only the Authorization header is read).

The `scope` of a challenge lists what the refused request needs: for a tool call, every scope that
tool needs (the server's required ones and the tool's own); for anything else, the server's required
scopes (when there are none it is left out, and MCP clients then ask for everything the metadata's
`scopes_supported` lists). Clients thus start with the least and step up per tool on a 403.

The verified `Identity` is put in a context variable for the rest of the request, where the MCP
handler reads it with `current_identity()`; the SDK runs the handler in a task started from this
request, so the variable is inherited.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.asgi import body_json, read_body, replay
from gateway.auth.settings import ANONYMOUS, AuthError, Identity, InboundAuth
from gateway.tools.model import ToolSpec

if TYPE_CHECKING:
    from gateway.auth.inbound import TokenVerifier

WELL_KNOWN = "/.well-known/oauth-protected-resource"
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 §2.1
_identity: ContextVar[Identity] = ContextVar("gateway_identity", default=ANONYMOUS)


def current_identity() -> Identity:
    """The caller of the request being served (`ANONYMOUS` without inbound auth or for public requests)."""
    return _identity.get()


def _union(*groups: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(scope for group in groups for scope in group))


@dataclass(frozen=True, slots=True)
class ScopePolicy:
    """Which MCP requests need which scopes. `tools` maps each tool to the scopes a call of it needs
    (the server's required scopes first, then its own), or to None when it is public."""

    required: tuple[str, ...]
    tools: Mapping[str, tuple[str, ...] | None]
    dispatcher: str | None = None
    """Search mode's `call_tool`: a call of it needs the scopes of the tool named in its arguments."""

    @classmethod
    def of(cls, required: Iterable[str], tools: Mapping[str, ToolSpec], dispatcher: str | None = None
           ) -> ScopePolicy:
        required = tuple(required)
        return cls(required, {name: None if tool.public else _union(required, tool.scopes)
                              for name, tool in tools.items()}, dispatcher)

    @property
    def open_discovery(self) -> bool:
        """With a public tool, anyone may initialize, list the tools and call the public ones."""
        return any(scopes is None for scopes in self.tools.values())

    @property
    def scopes_supported(self) -> tuple[str, ...]:
        return _union(self.required, *(s for s in self.tools.values() if s is not None))

    def security_schemes(self, tool: str) -> list[dict[str, Any]]:
        """The tool's `securitySchemes` as ChatGPT reads them from its descriptor."""
        scopes = self.tools[tool]
        return [{"type": "noauth"}] if scopes is None else [{"type": "oauth2", "scopes": list(scopes)}]

    def permits(self, tool: str, identity: Identity) -> bool:
        """Whether `identity` may call `tool` (search mode shows nobody a tool they cannot call)."""
        if tool not in self.tools:
            return False
        scopes = self.tools[tool]
        return scopes is None or (identity.token is not None and identity.scopes.issuperset(scopes))

    def needed(self, payload: Any) -> tuple[str, ...] | None:
        """The scopes a token needs for this request (its parsed JSON body), or None when no token is needed."""
        needs = [self._needed(message) for message in (payload if isinstance(payload, list) else [payload])]
        if all(need is None for need in needs):
            return None
        return _union(*(need for need in needs if need is not None))

    def _needed(self, message: Any) -> tuple[str, ...] | None:
        """A call of a known tool needs that tool's scopes; anything else (an unknown tool included, which the
        server answers with an error) needs the server's required scopes, or nothing when discovery is open."""
        if isinstance(message, dict) and message.get("method") == "tools/call":
            params = message.get("params")
            name = params.get("name") if isinstance(params, dict) else None
            if name is not None and name == self.dispatcher:
                arguments = params.get("arguments")
                name = arguments.get("name") if isinstance(arguments, dict) else None
            if isinstance(name, str) and name in self.tools:
                return self.tools[name]
        return None if self.open_discovery else self.required


def metadata_url(resource_url: str) -> str:
    """RFC 9728 §3.1: the well-known segment goes between the resource's host and its path."""
    scheme, netloc, path, _, _ = urlsplit(resource_url)
    return urlunsplit((scheme, netloc, WELL_KNOWN + path.rstrip("/"), "", ""))


def _quoted(value: str) -> str:
    """An RFC 9110 quoted-string; anything outside printable ASCII is dropped so a header can never break."""
    printable = "".join(c for c in value if " " <= c <= "~")
    return '"' + printable.replace("\\", "\\\\").replace('"', '\\"') + '"'


def challenge(metadata: str, scopes: Iterable[str], error: str | None = None, description: str | None = None
              ) -> str:
    """A `WWW-Authenticate: Bearer` value (RFC 6750 §3, RFC 9728 §5.1)."""
    params = [("error", error), ("error_description", description), ("resource_metadata", metadata),
              ("scope", " ".join(scopes))]
    return "Bearer " + ", ".join(f"{name}={_quoted(value)}" for name, value in params if value)


class BearerGuard:
    """ASGI app in front of the MCP endpoint: checks the bearer token against what the request needs."""

    def __init__(self, app: ASGIApp, verifier: TokenVerifier, policy: ScopePolicy, metadata: str,
                 on_check: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.verifier = verifier
        self.policy = policy
        self.metadata = metadata
        self.on_check = on_check  # told each token check's result: ok, or the refusal's reason

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["query_string"] and "access_token" in QueryParams(scope["query_string"]):
            await self._refuse(scope, receive, send, 400, (), "invalid_request",
                               "access tokens are accepted in the Authorization header only")
            return
        body, _ = await read_body(receive)
        if body is None:  # the client went away
            return
        try:
            payload = body_json(scope, body) if body else None
        except ValueError:
            payload = None
        needed = self.policy.needed(payload)
        try:
            token = _bearer_token(scope["headers"])
            identity = ANONYMOUS if token is None else await self.verifier.verify(token)
            if token is not None and self.on_check is not None:
                self.on_check("ok")
        except AuthError as exc:  # a token was sent and is refused, even where none is needed (RFC 6750 §3.1)
            if self.on_check is not None:
                self.on_check(exc.reason)
            await self._refuse(scope, receive, send, 400 if exc.error == "invalid_request" else 401,
                               needed or self.policy.required, exc.error, exc.description)
            return
        if token is None and needed is not None:
            await self._refuse(scope, receive, send, 401, needed, None, "an OAuth bearer token is needed")
        elif needed and not identity.scopes.issuperset(needed):
            await self._refuse(scope, receive, send, 403, needed, "insufficient_scope",
                               "the token lacks scopes this request needs")
        else:
            await self._forward(scope, receive, send, body, identity)

    async def _forward(self, scope: Scope, receive: Receive, send: Send, body: bytes, identity: Identity) -> None:
        reset = _identity.set(identity)
        try:
            await self.app(scope, replay(body, True, receive), send)
        finally:
            _identity.reset(reset)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, scopes: Iterable[str],
                      error: str | None, description: str) -> None:
        header = challenge(self.metadata, scopes, error, description if error else None)
        body = {"error": error or "unauthorized", "error_description": description}
        await JSONResponse(body, status_code=status, headers={"WWW-Authenticate": header})(scope, receive, send)


def _bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The bearer token of the Authorization header (of the ASGI scope's headers); None when there is none
    (or another scheme is used)."""
    values = [value.decode("latin-1") for name, value in headers if name == b"authorization"]
    if len(values) > 1:
        raise AuthError("invalid_request", "more than one Authorization header", "malformed")
    if not values:
        return None
    scheme, _, token = values[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    if not _B64TOKEN.fullmatch(token):
        raise AuthError("invalid_token", "the token is malformed", "malformed")
    return token


class ResourceServer:
    """What inbound OAuth adds to the app: the guard on the MCP route and the protected-resource metadata."""

    def __init__(self, auth: InboundAuth, policy: ScopePolicy, *, mcp_path: str, max_body: int, name: str,
                 verifier: TokenVerifier | None = None, resource_url: str | None = None,
                 on_check: Callable[[str], None] | None = None) -> None:
        """`verifier` may be shared by several endpoints; `resource_url` is this endpoint's (default: the
        configured one)."""
        if verifier is None:
            from gateway.auth.inbound import TokenVerifier

            verifier = TokenVerifier(auth)
        self.verifier = verifier
        self.on_check = on_check
        self.auth = auth
        self.policy = policy
        self.mcp_path = mcp_path
        self.max_body = max_body
        self.name = name
        resource_url = resource_url or auth.resource_url
        assert resource_url is not None  # TokenVerifier has checked
        self.resource_url = resource_url
        self.metadata_url = metadata_url(resource_url)

    def guard(self, route: Route) -> Route:
        """`route` (the MCP endpoint) behind the token check; the body limit applies before the guard reads it."""
        guard = BearerGuard(route.endpoint, self.verifier, self.policy, self.metadata_url, self.on_check)
        return Route(route.path, endpoint=guard, max_body_size=self.max_body)

    def routes(self) -> list[Route]:
        """RFC 9728 metadata at the root well-known URL and at the path-inserted ones (endpoint and resource path)."""
        document = {
            "resource": self.resource_url,
            "authorization_servers": [self.auth.issuer],
            "scopes_supported": list(self.policy.scopes_supported),
            "bearer_methods_supported": ["header"],
            "resource_name": self.name,
        }

        async def metadata(request: Request) -> JSONResponse:
            return JSONResponse(document, headers={"Access-Control-Allow-Origin": "*"})

        paths = {WELL_KNOWN, WELL_KNOWN + self.mcp_path.rstrip("/"), urlsplit(self.metadata_url).path}
        return [Route(path, metadata, methods=["GET"]) for path in sorted(paths)]
