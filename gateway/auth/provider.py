"""What every outbound credential provider is: the protocol `Backend.send` calls, the request record it
works on, and the one error it raises.

A provider adds the gateway's own credential for one backend to an already built request. It runs last,
after the request builder and the configured headers, so nothing a tool argument sets can replace a
credential. Providers that talk to a token endpoint cache what they get; `secrets()` lists every value
they hold that must never show up in a log line, an error or a tool result.

The request is an `OutboundRequest`, a plain record of what goes on the wire, independent of the HTTP
client: the forwarder sends exactly its method, URL, headers and body, so a signer (SigV4) signs what is
sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from gateway.auth.settings import Identity


class CredentialError(Exception):
    """Credentials for a backend could not be obtained or applied.

    The message is shown to the model and logged, so it says what failed (which endpoint, which status,
    which OAuth error code) and never carries a secret, a token or a token endpoint's free-text answer.
    """


@dataclass(slots=True)
class OutboundRequest:
    """One request as it will be sent.

    `url` is absolute and already percent-encoded: the backend's scheme, host, port and base path, then the
    request's path and `?query` (no fragment). It is sent as it is, never re-encoded or normalised.
    `headers` are (name, value) pairs in sending order; a name may repeat. They hold `Host` and everything
    the gateway sets (User-Agent, the configured static headers, the request builder's); the HTTP client
    adds only framing (Content-Length) and Accept-Encoding/Accept when absent.
    """

    method: str
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    content: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header `name` (any case), or None."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def has_header(self, name: str) -> bool:
        name = name.lower()
        return any(k.lower() == name for k, _ in self.headers)

    def set_header(self, name: str, value: str) -> None:
        """Replace every header called `name` (any case) by one with `value`, where the first one was."""
        lower = name.lower()
        kept: list[tuple[str, str]] = []
        at = None
        for pair in self.headers:
            if pair[0].lower() == lower:
                if at is None:
                    at = len(kept)
            else:
                kept.append(pair)
        kept.insert(len(kept) if at is None else at, (name, value))
        self.headers = kept

    def remove_header(self, name: str) -> None:
        name = name.lower()
        self.headers = [pair for pair in self.headers if pair[0].lower() != name]

    @property
    def query(self) -> str:
        """The encoded query, without `?` ("" when none)."""
        return self.url.partition("?")[2]

    @property
    def url_without_query(self) -> str:
        return self.url.partition("?")[0]

    def set_query(self, query: str) -> None:
        """Replace the encoded query (scheme, host, port and path stay as they are)."""
        self.url = self.url_without_query + (f"?{query}" if query else "")


class CredentialProvider(Protocol):
    async def apply(self, request: OutboundRequest, identity: Identity) -> OutboundRequest:
        """`request` with the credential added (the same object, changed in place, or a new one)."""
        ...

    async def aclose(self) -> None:
        """Release what the provider holds (its token endpoint client)."""
        ...

    def secrets(self) -> tuple[str, ...]:
        """The values to redact: configured secrets and the tokens currently cached."""
        ...


def set_bearer(request: OutboundRequest, token: str) -> OutboundRequest:
    request.set_header("Authorization", f"Bearer {token}")
    return request
