"""AWS Signature Version 4 for API Gateway, Lambda function URLs and AWS service APIs, with botocore.

botocore supplies what is easy to get subtly wrong: the standard credential chain (environment, shared
config profiles, SSO, container and instance roles, with refresh-aware credentials for the latter) and
the canonical request / string to sign / signing key computation that every AWS SDK shares. This module
only maps the gateway's `OutboundRequest` (exactly what is sent) onto it:

* the query is handed over as decoded pairs, so botocore encodes it canonically whatever escapes the
  request builder chose; the path goes as sent (botocore encodes it once more, as SigV4 wants for every
  service but S3, which gets the single encoding and an `X-Amz-Content-SHA256` header);
* the body is hashed into the signature (no unsigned payloads);
* headers an intermediary may add, drop or rewrite (connection, user-agent, accept-encoding, ...) are
  left out of the signature; everything else the gateway sends is signed.

Signing runs on every call, so it is kept cheap: the credential chain is walked once, and per call only
a frozen copy of the current credentials is taken, in a worker thread when a refresh is due (a refresh
may call STS or the instance metadata service, which must not block the event loop).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote

import botocore.session
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from botocore.exceptions import BotoCoreError, ProfileNotFound

from gateway.auth.provider import CredentialError, OutboundRequest
from gateway.auth.settings import Identity

UNSIGNED_HEADERS = frozenset({
    "accept-encoding", "authorization", "cache-control", "connection", "expect", "from", "keep-alive",
    "max-forwards", "pragma", "proxy-authorization", "referer", "te", "trailer", "transfer-encoding", "upgrade",
    "user-agent", "x-amzn-trace-id",
})
"""Hop-by-hop headers and those proxies and load balancers are known to rewrite (the AWS SDKs' list, plus
accept-encoding): signing them would make the signature fail for reasons unrelated to the request."""

_SIGNER_HEADERS = frozenset({"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"})


@dataclass(frozen=True, slots=True)
class Signature:
    canonical_request: str
    string_to_sign: str
    authorization: str


def sign(request: OutboundRequest, credentials: ReadOnlyCredentials, *, region: str, service: str,
         now: datetime) -> Signature:
    """Sign `request` in place: sets X-Amz-Date, X-Amz-Security-Token (temporary credentials), for S3
    X-Amz-Content-SHA256, and Authorization. Any of these already on the request is replaced."""
    headers = [pair for pair in request.headers if pair[0].lower() not in _SIGNER_HEADERS]
    timestamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    headers.append(("X-Amz-Date", timestamp))
    if credentials.token:
        headers.append(("X-Amz-Security-Token", credentials.token))
    if service == "s3":
        headers.append(("X-Amz-Content-SHA256", hashlib.sha256(request.content).hexdigest()))
    signer = (S3SigV4Auth if service == "s3" else SigV4Auth)(credentials, service, region)
    aws = AWSRequest(method=request.method, url=request.url_without_query, data=request.content,
                     params=_query_pairs(request.query))
    for name, value in headers:
        if name.lower() not in UNSIGNED_HEADERS:
            aws.headers[name] = value  # an email.message.Message: repeated names are kept, in order
    aws.context["timestamp"] = timestamp
    canonical_request = signer.canonical_request(aws)
    string_to_sign = signer.string_to_sign(aws, canonical_request)
    authorization = (f"AWS4-HMAC-SHA256 Credential={signer.scope(aws)}, "
                     f"SignedHeaders={signer.signed_headers(signer.headers_to_sign(aws))}, "
                     f"Signature={signer.signature(string_to_sign, aws)}")
    headers.append(("Authorization", authorization))
    request.headers = headers
    return Signature(canonical_request, string_to_sign, authorization)


def _query_pairs(query: str) -> list[tuple[str, str]]:
    """The encoded query as decoded (name, value) pairs; `+` stays a plus (the request builder writes spaces
    as %20)."""
    pairs = []
    for item in query.split("&"):
        if item:
            name, _, value = item.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs


class AwsSigV4:
    """Signs every request for `region`/`service` with the credentials of the standard AWS chain."""

    def __init__(self, *, region: str, service: str, profile: str | None = None) -> None:
        self.region = region
        self.service = service
        self._profile = profile
        self._session = botocore.session.Session(profile=profile)
        self._credentials: Credentials | None = None
        self._lock = asyncio.Lock()
        self._last: ReadOnlyCredentials | None = None

    async def apply(self, request: OutboundRequest, identity: Identity) -> OutboundRequest:
        self._last = await self._frozen()
        sign(request, self._last, region=self.region, service=self.service, now=datetime.now(UTC))
        return request

    async def _frozen(self) -> ReadOnlyCredentials:
        if self._credentials is None:
            async with self._lock:
                if self._credentials is None:
                    self._credentials = await asyncio.to_thread(self._find)
        credentials = self._credentials
        try:
            if getattr(credentials, "refresh_needed", lambda: False)():
                return await asyncio.to_thread(credentials.get_frozen_credentials)
            return credentials.get_frozen_credentials()
        except BotoCoreError as exc:
            raise CredentialError(f"could not refresh the AWS credentials ({type(exc).__name__})") from None

    def _find(self) -> Credentials:
        """Walk the credential chain once (may call the container or instance metadata endpoint)."""
        try:
            credentials = self._session.get_credentials()
        except ProfileNotFound:
            raise CredentialError(f"the AWS profile {self._profile!r} does not exist") from None
        except BotoCoreError as exc:
            raise CredentialError(f"could not load AWS credentials ({type(exc).__name__})") from None
        if credentials is None:
            raise CredentialError("found no AWS credentials (environment, shared config profile, container or "
                                  "instance role)")
        return credentials

    async def aclose(self) -> None:
        """Nothing to release: botocore's credential providers hold no open connections."""

    def secrets(self) -> tuple[str, ...]:
        last = self._last
        return tuple(v for v in (last.secret_key, last.token) if v) if last is not None else ()
