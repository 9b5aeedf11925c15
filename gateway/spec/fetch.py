"""Retrieve the documents of one spec, the root and the files its `$ref`s name, by URI.

A spec read from a file may only pull in other local files, and a spec read from a URL only other http(s)
documents: a local spec never reaches out to the network behind the operator's back, and a remote spec can never
read local files (`$ref: file:///etc/passwd`). Documents are identified by absolute URIs (`file:///...` or
`https://...`) so that relative references resolve the same way for both, with `urllib.parse.urljoin`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import httpx2

from gateway.errors import SpecError
from gateway.spec.parse import parse_document

HTTP_TIMEOUT = httpx2.Timeout(30.0, connect=10.0)
_ACCEPT = "application/json, application/yaml;q=0.9, text/yaml;q=0.9, */*;q=0.5"


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def source_uri(source: str) -> str:
    """The absolute URI of a spec given on the command line: a URL as it is, a path as a `file://` URI."""
    if is_url(source) or source.startswith("file://"):
        return canonical(source)
    return Path(os.path.abspath(source)).as_uri()


def canonical(uri: str) -> str:
    """One spelling per document: `file:` URIs normalised (`..` folded, percent-encoding made uniform)."""
    if uri.startswith("file:"):
        return Path(os.path.normpath(url2pathname(unquote(urlsplit(uri).path)))).as_uri()
    return uri


def display(uri: str) -> str:
    """How a document is named in messages: the file path, or the URL."""
    return url2pathname(unquote(urlsplit(uri).path)) if uri.startswith("file:") else uri


class Fetcher:
    """Reads and parses documents by URI; one instance per `load_spec` call (it owns the HTTP client)."""

    def __init__(self, root_uri: str) -> None:
        self._remote = not root_uri.startswith("file:")
        self._client = httpx2.Client(timeout=HTTP_TIMEOUT, follow_redirects=True) if self._remote else None

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._client is not None:
            self._client.close()

    def fetch(self, uri: str) -> tuple[Any, str]:
        """The parsed document at `uri` and its final URI (after redirects). SpecError when it cannot be had."""
        scheme = urlsplit(uri).scheme
        if scheme == "file" and not self._remote:
            return self._read_file(uri), uri
        if scheme in ("http", "https") and self._client is not None:
            return self._download(self._client, uri)
        if scheme in ("http", "https"):
            raise SpecError(uri, "remote reference not fetched: the spec was loaded from a file")
        if scheme == "file":
            raise SpecError(uri, "local file reference not read: the spec was loaded from a URL")
        raise SpecError(uri, f"unsupported reference scheme {scheme!r}")

    @staticmethod
    def _read_file(uri: str) -> Any:
        path = display(uri)
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise SpecError(path, "file not found") from None
        except OSError as exc:
            raise SpecError(path, f"cannot read file: {exc.strerror or exc}") from None
        return parse_document(data, path)

    @staticmethod
    def _download(client: httpx2.Client, url: str) -> tuple[Any, str]:
        try:
            response = client.get(url, headers={"Accept": _ACCEPT})
        except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
            raise SpecError(url, f"cannot download: {exc}") from None
        if response.status_code != 200:
            raise SpecError(url, f"cannot download: HTTP {response.status_code}")
        final = str(response.url)
        return parse_document(response.content, final), final
