"""Forwarding: one pooled aiohttp session per backend, with an overall deadline and a response size cap.

The backend's base URL fixes scheme, host, port and base path; a request only appends its
already-encoded path and query, so no argument can reach another origin. The URL is sent as it is
(`yarl.URL(..., encoded=True)`): the client neither re-encodes nor normalises it. Redirects are not
followed: a 3xx comes back to the shaper, which reports it.

The tool's timeout bounds the whole exchange (waiting for a connection, connecting, sending, the status
line, the headers and every byte of the body), so a backend trickling its answer cannot hold a call past
it. The body is read in chunks, decoded (gzip, deflate) as it comes, and reading stops at the cap, so a
compressed bomb never inflates much past it.

The gateway's own credential for the backend (`gateway.auth.upstream`) is added last, to the fully
built `OutboundRequest` (Host, User-Agent, the configured static headers, then the request's own), so no
tool argument can replace it, and a signer signs exactly what is sent. TLS to the backend can use a
private CA and a client certificate (`gateway.auth.tls`).

aiohttp rather than httpx2 for this path: on a 2-core machine it costs about a fifth of the CPU per call
(`bench/upstream_clients.py`). Token endpoints, called rarely, stay on httpx2 (`gateway.auth.oauth`).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus

import aiohttp
import httpx2
import yarl

from gateway.auth.provider import CredentialError, CredentialProvider, OutboundRequest
from gateway.auth.settings import ANONYMOUS, Identity
from gateway.auth.upstream import NoCredentials
from gateway.calls.request import UpstreamRequest

USER_AGENT = "semantic-adapter-gateway"
KEEPALIVE_SECONDS = 5.0
"""How long an idle pooled connection is kept: below the 5 s many servers (Node, Go, gunicorn) close at,
so a request rarely goes out on a connection the server is closing."""
MAX_HEADER_FIELD = 32 * 1024  # status line and each response header; aiohttp's default (8 KiB) refuses large cookies

_REASONS = {status.value: status.phrase for status in HTTPStatus}


class UpstreamError(Exception):
    """The backend could not be reached or did not answer in time, or the gateway could not obtain its own
    credentials for it. `kind`: timeout, dns, connect, tls, protocol, credentials. The message never holds a
    secret."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    reason: str  # the standard phrase of `status` ("" for an unregistered code), not the backend's text
    headers: Mapping[str, str]  # case-insensitive (a multidict: `getall` gives repeated headers)
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
    The session is opened on the first call, inside the event loop that serves it.
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        timeouts: Timeouts = Timeouts(),
        max_connections: int = 100,
        headers: dict[str, str] | None = None,
        credentials: CredentialProvider | None = None,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        try:
            base = yarl.URL(base_url)
        except ValueError:
            base = None
        if base is None or base.scheme not in ("http", "https") or not base.host:
            raise ValueError(f"backend {name!r}: upstream must be an absolute http(s) URL, got {base_url!r}")
        self.base_url = base
        self._prefix = str(base.origin()) + base.raw_path.rstrip("/")
        self.timeouts = timeouts
        self.credentials: CredentialProvider = credentials if credentials is not None else NoCredentials()
        defaults: dict[str, tuple[str, str]] = {}
        for key, value in {"Host": base.host_port_subcomponent, "User-Agent": USER_AGENT, **(headers or {})}.items():
            defaults[key.lower()] = (key, value)
        self._defaults = list(defaults.values())
        self._default_names = list(defaults)
        self._max_connections = max_connections
        self._verify = verify
        self._https = base.scheme == "https"
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def outbound(self, request: UpstreamRequest) -> OutboundRequest:
        """What goes on the wire for `request`, before credentials: the request's headers replace configured
        ones of the same name."""
        url = self._prefix + request.path
        if request.query:
            url += "?" + request.query
        if request.headers:
            given = {name.lower() for name, _ in request.headers}
            headers = [pair for pair, lower in zip(self._defaults, self._default_names, strict=True)
                       if lower not in given]
            headers += request.headers
        else:
            headers = list(self._defaults)
        return OutboundRequest(request.method, url, headers, request.content or b"")

    async def send(self, request: UpstreamRequest, *, timeout: float | None, max_bytes: int,
                   identity: Identity = ANONYMOUS) -> UpstreamResponse:
        """Send `request` with the backend's credentials for `identity`; read at most `max_bytes` of the
        (decoded) body. `timeout` (default: the backend's read timeout) bounds the whole exchange."""
        read = timeout if timeout is not None else self.timeouts.read
        try:
            outbound = await self.credentials.apply(self.outbound(request), identity)
        except CredentialError as exc:
            message = f"could not obtain credentials for backend {self.name!r}: {exc}"
            raise UpstreamError("credentials", message) from None
        session = self._session if self._session is not None else self._open()
        started = time.perf_counter()
        truncated = False
        try:
            async with session.request(
                outbound.method, yarl.URL(outbound.url, encoded=True), headers=outbound.headers,
                data=outbound.content or None, allow_redirects=False, timeout=self._timeout(read),
            ) as response:
                body = bytearray()
                stream = response.content
                while chunk := await stream.readany():
                    body += chunk
                    if len(body) > max_bytes:
                        truncated = True
                        del body[max_bytes:]
                        response.close()  # the rest is never read: the connection is not reused
                        break
        except aiohttp.ConnectionTimeoutError:
            connect = min(self.timeouts.connect, read)
            raise UpstreamError("timeout", f"timed out connecting to the backend after {connect:g} s") from None
        except TimeoutError:
            raise UpstreamError("timeout", f"timed out waiting for the backend after {read:g} s") from None
        except aiohttp.ClientConnectorDNSError:
            raise UpstreamError("dns", f"the backend's host name {self.base_url.host!r} does not resolve") from None
        except aiohttp.ClientConnectorCertificateError as exc:
            reason = getattr(exc.certificate_error, "verify_message", None) or str(exc.certificate_error)
            raise UpstreamError("tls", f"the backend's TLS certificate was refused ({reason})") from None
        except aiohttp.ClientConnectorSSLError as exc:
            raise UpstreamError("tls", f"the TLS handshake with the backend failed ({_ssl_reason(exc)})") from None
        except aiohttp.ClientConnectorError:
            raise UpstreamError("connect", "could not connect to the backend") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError("protocol", f"the backend broke off the exchange ({type(exc).__name__})") from None
        return UpstreamResponse(
            status=response.status,
            reason=_REASONS.get(response.status, ""),
            headers=response.headers,
            content=bytes(body),
            truncated=truncated,
            seconds=time.perf_counter() - started,
        )

    def _open(self) -> aiohttp.ClientSession:
        verify: ssl.SSLContext | bool = self._verify if self._verify is not None else True
        if self._verify is None and self._https:
            # The system's CAs, SSL_CERT_* ignored; made with the pool, since reading the CAs takes a while.
            verify = httpx2.create_ssl_context(trust_env=False)
        connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0, ssl=verify,
                                         keepalive_timeout=KEEPALIVE_SECONDS)
        self._session = aiohttp.ClientSession(
            connector=connector,
            trust_env=False,  # no proxy or netrc from the environment
            cookie_jar=aiohttp.DummyCookieJar(),  # one session serves every caller: never replay a caller's cookie
            skip_auto_headers=("Content-Type",),  # a body goes with the type the request builder set, or none
            auto_decompress=True,
            max_line_size=MAX_HEADER_FIELD,
            max_field_size=MAX_HEADER_FIELD,
        )
        return self._session

    def _timeout(self, read: float) -> aiohttp.ClientTimeout:
        """Socket connect within the connect timeout (never past `read`); `read` bounds the whole exchange:
        aiohttp's `total` runs from before the wait for a pooled connection (and DNS) until the body is read."""
        timeout = self._timeouts.get(read)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=read, connect=None, sock_read=None,
                                            sock_connect=min(self.timeouts.connect, read))
            if len(self._timeouts) < 64:
                self._timeouts[read] = timeout
        return timeout

    def secrets(self) -> tuple[str, ...]:
        """The values a redactor must hide: the configured secrets and the tokens currently in use."""
        return self.credentials.secrets()

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        await self.credentials.aclose()


def _ssl_reason(exc: aiohttp.ClientConnectorSSLError) -> str:
    """The TLS library's own reason (`TLSV1_ALERT_UNKNOWN_CA`, ...), without the addresses around it."""
    inner = exc.os_error
    return getattr(inner, "reason", None) or type(inner).__name__
