"""Forwarding: one pooled async HTTP client per backend, with timeouts and a response size cap.

The backend's base URL fixes scheme, host, port and base path; a request only appends its
already-encoded path and query, so no argument can reach another origin. Redirects are not
followed: a 3xx comes back to the shaper, which reports it.

The gateway's own credential for the backend (`gateway.auth.upstream`) is added last, to the fully
built request, so no tool argument can replace it; TLS to the backend can use a private CA and a
client certificate (`gateway.auth.tls`).
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass

import httpx2

from gateway.auth.provider import CredentialError, CredentialProvider
from gateway.auth.settings import ANONYMOUS, Identity
from gateway.auth.upstream import NoCredentials
from gateway.calls.request import UpstreamRequest


class UpstreamError(Exception):
    """The backend could not be reached or did not answer in time, or the gateway could not obtain its own
    credentials for it. `kind`: timeout, connect, protocol, credentials. The message never holds a secret."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    reason: str
    headers: httpx2.Headers
    content: bytes
    truncated: bool  # the body was longer than the cap; `content` holds its first bytes
    seconds: float


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 5.0
    read: float = 30.0


class Backend:
    """One upstream API: its base URL, the connection pool every call to it shares and its credentials.

    `verify` is the TLS context (a private CA, a client certificate); None keeps the system's trust
    store. `credentials` owns whatever it holds (a token endpoint client) and is closed with the backend.
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        timeouts: Timeouts = Timeouts(),
        max_connections: int = 100,
        headers: dict[str, str] | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        credentials: CredentialProvider | None = None,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self.base_url = httpx2.URL(base_url)
        if self.base_url.scheme not in ("http", "https") or not self.base_url.host:
            raise ValueError(f"backend {name!r}: upstream must be an absolute http(s) URL, got {base_url!r}")
        self._base_path = self.base_url.raw_path.split(b"?", 1)[0].rstrip(b"/")
        self.timeouts = timeouts
        self.credentials: CredentialProvider = credentials if credentials is not None else NoCredentials()
        self._client = httpx2.AsyncClient(
            timeout=httpx2.Timeout(timeouts.read, connect=timeouts.connect),
            limits=httpx2.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            follow_redirects=False,
            headers={"User-Agent": "semantic-adapter-gateway", **(headers or {})},
            transport=transport,
            trust_env=False,
            verify=verify if verify is not None else True,
        )

    def url(self, request: UpstreamRequest) -> httpx2.URL:
        target = self._base_path + request.path.encode("ascii")
        if request.query:
            target += b"?" + request.query.encode("ascii")
        return self.base_url.copy_with(raw_path=target, fragment=None)

    async def send(self, request: UpstreamRequest, *, timeout: float | None, max_bytes: int,
                   identity: Identity = ANONYMOUS) -> UpstreamResponse:
        """Send `request` with the backend's credentials for `identity`; read at most `max_bytes` of the
        (decoded) body."""
        read = timeout if timeout is not None else self.timeouts.read
        http_request = self._client.build_request(
            request.method,
            self.url(request),
            headers=list(request.headers),
            content=request.content,
            timeout=httpx2.Timeout(read, connect=min(self.timeouts.connect, read)),
        )
        try:
            http_request = await self.credentials.apply(http_request, identity)
        except CredentialError as exc:
            message = f"could not obtain credentials for backend {self.name!r}: {exc}"
            raise UpstreamError("credentials", message) from None
        started = time.perf_counter()
        try:
            response = await self._client.send(http_request, stream=True)
            try:
                body = bytearray()
                truncated = False
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        truncated = True
                        del body[max_bytes:]
                        break
            finally:
                await response.aclose()
        except httpx2.TimeoutException as exc:
            phase = "connecting to" if isinstance(exc, httpx2.ConnectTimeout) else "waiting for"
            raise UpstreamError("timeout", f"timed out {phase} the backend after {read:g} s") from None
        except httpx2.ConnectError:
            raise UpstreamError("connect", "could not connect to the backend") from None
        except (httpx2.RemoteProtocolError, httpx2.ReadError, httpx2.WriteError, httpx2.DecodingError) as exc:
            raise UpstreamError("protocol", f"the backend broke off the exchange ({type(exc).__name__})") from None
        return UpstreamResponse(
            status=response.status_code,
            reason=response.reason_phrase,
            headers=response.headers,
            content=bytes(body),
            truncated=truncated,
            seconds=time.perf_counter() - started,
        )

    def secrets(self) -> tuple[str, ...]:
        """The values a redactor must hide: the configured secrets and the tokens currently in use."""
        return self.credentials.secrets()

    async def aclose(self) -> None:
        await self._client.aclose()
        await self.credentials.aclose()
