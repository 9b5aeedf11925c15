"""What every outbound credential provider is: the protocol `Backend.send` calls, and the one error it raises.

A provider adds the gateway's own credential for one backend to an already built request. It runs last,
after the request builder and the configured headers, so nothing a tool argument sets can replace a
credential. Providers that talk to a token endpoint cache what they get; `secrets()` lists every value
they hold that must never show up in a log line, an error or a tool result.
"""

from __future__ import annotations

from typing import Protocol

import httpx2

from gateway.auth.settings import Identity


class CredentialError(Exception):
    """Credentials for a backend could not be obtained or applied.

    The message is shown to the model and logged, so it says what failed (which endpoint, which status,
    which OAuth error code) and never carries a secret, a token or a token endpoint's free-text answer.
    """


class CredentialProvider(Protocol):
    async def apply(self, request: httpx2.Request, identity: Identity) -> httpx2.Request:
        """`request` with the credential added (the same object, changed in place, or a new one)."""
        ...

    async def aclose(self) -> None:
        """Release what the provider holds (its token endpoint client)."""
        ...

    def secrets(self) -> tuple[str, ...]:
        """The values to redact: configured secrets and the tokens currently cached."""
        ...


def set_bearer(request: httpx2.Request, token: str) -> httpx2.Request:
    request.headers["Authorization"] = f"Bearer {token}"
    return request
