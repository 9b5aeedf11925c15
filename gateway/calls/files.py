"""Files a host hands a tool by URL (ChatGPT's `openai/fileParams`), downloaded before the call goes upstream.

A download is a new way out of the gateway, so every rule is strict and checked on each hop: https only;
the host on `server.files.allowed_hosts`; every address the name resolves to public (loopback only with
`allow_loopback`; private, link-local, multicast and reserved never), and the connection made to exactly
the addresses checked, so DNS cannot be switched between the check and the connection; redirects only
within the same host; the size capped while reading; one deadline for the whole download. A refusal is
a `FileRefused` that says why; nothing is sent upstream then.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from gateway.config import FilesSettings

MAX_REDIRECTS = 3


class FileRefused(Exception):
    """A file that could not or may not be downloaded; the message says why (never the URL's query)."""


@dataclass(frozen=True, slots=True)
class DownloadedFile:
    content: bytes
    media_type: str | None
    name: str | None  # from the URL's last path segment


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    for pattern in allowed:
        pattern = pattern.lower().rstrip(".")
        if host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


class _VettedResolver(AbstractResolver):
    """Resolves a name and keeps only addresses a download may connect to; refuses when none is left."""

    def __init__(self, allow_loopback: bool) -> None:
        self.allow_loopback = allow_loopback

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise FileRefused(f"the file's host {host!r} does not resolve ({exc.strerror or exc})") from None
        results: list[ResolveResult] = []
        for family_, _, proto, _, address in infos:
            ip = ipaddress.ip_address(address[0])
            if ip.is_loopback and self.allow_loopback:
                pass
            elif not ip.is_global or ip.is_multicast:
                raise FileRefused(f"the file's host {host!r} resolves to a non-public address ({ip}), which "
                                  "downloads may not reach")
            results.append({"hostname": host, "host": address[0], "port": address[1], "family": family_,
                            "proto": proto, "flags": socket.AI_NUMERICHOST})
        if not results:
            raise FileRefused(f"the file's host {host!r} has no address")
        return results

    async def close(self) -> None:
        return None


class FileFetcher:
    """Downloads the files of tool calls under `server.files`; one per gateway, closed with `aclose()`."""

    def __init__(self, settings: FilesSettings) -> None:
        self.settings = settings
        self._ssl = ssl.create_default_context(cafile=settings.ca_file) if settings.ca_file else \
            ssl.create_default_context()
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=_VettedResolver(self.settings.allow_loopback), ssl=self._ssl,
                                             limit=20, use_dns_cache=False)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False,
                                                  cookie_jar=aiohttp.DummyCookieJar(),
                                                  headers={"User-Agent": "semantic-adapter-gateway"})
        return self._session

    async def fetch(self, url: Any) -> DownloadedFile:
        """The file at `url`; `FileRefused` for anything the rules do not allow or the server does not give."""
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                return await self._follow(url)
        except TimeoutError:
            raise FileRefused(f"the download took longer than {self.settings.timeout_seconds:g} s") from None
        except aiohttp.ClientError as exc:
            raise FileRefused(f"the download failed ({type(exc).__name__})") from None

    async def _follow(self, url: Any) -> DownloadedFile:
        if not isinstance(url, str):
            raise FileRefused("`download_url` must be a URL string")
        origin = self._check(url)
        for _ in range(MAX_REDIRECTS + 1):
            async with self._open().get(url, allow_redirects=False) as response:
                if response.status in (301, 302, 303, 307, 308):
                    target = urljoin(url, response.headers.get("location", ""))
                    if (urlsplit(target).hostname or "").lower() != origin:
                        raise FileRefused("the file's server redirected to another host, which downloads do not follow")
                    self._check(target)  # https still
                    url = target
                    continue
                if response.status != 200:
                    raise FileRefused(f"the file's server answered {response.status}")
                declared = response.content_length
                if declared is not None and declared > self.settings.max_bytes:
                    raise FileRefused(f"the file is larger than the {self.settings.max_bytes:,}-byte limit")
                body = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > self.settings.max_bytes:
                        raise FileRefused(f"the file is larger than the {self.settings.max_bytes:,}-byte limit")
                name = urlsplit(url).path.rsplit("/", 1)[-1] or None
                media_type = response.headers.get("content-type", "").split(";")[0].strip() or None
                return DownloadedFile(bytes(body), media_type, name)
        raise FileRefused(f"the file's server redirected more than {MAX_REDIRECTS} times")

    def _check(self, url: str) -> str:
        """The URL's host, when a download may go there."""
        parts = urlsplit(url)
        if parts.scheme.lower() != "https":
            raise FileRefused(f"files are downloaded over https only, not {parts.scheme or 'a relative URL'}")
        host = parts.hostname or ""
        if not host_allowed(host, self.settings.allowed_hosts):
            raise FileRefused(f"downloads from {host!r} are not allowed (server.files.allowed_hosts)")
        return host.lower()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
