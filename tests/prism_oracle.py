"""Stoplight Prism as a test oracle: installed on demand, run on one spec, and watched through a recording proxy.

Prism mocks a spec and validates every request it receives against it. The proxy sits between the gateway
and Prism so that each upstream request, and Prism's verdict on it, can be pinned to the tool call that
caused it. It forwards requests unchanged except for one thing the gateway cannot do yet: it adds dummy
credentials for the spec's security schemes, because Prism answers 401 to any request that lacks them.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx2
import yaml

from tests.conftest import TOOLS_HOME, NpmUnavailable, free_port, npm_tool

PRISM_PACKAGE = "@stoplight/prism-cli"
PRISM_VERSION = "5.16.0"
PRISM_HOME = TOOLS_HOME / "prism"

# Not forwarded: they describe one hop, not the request (Host, Content-Length recomputed; bodies sent decoded).
NOT_FORWARDED = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "host", "content-length", "content-encoding"})
# Prism's problem types (https://stoplight.io/prism/errors#...) that mean the request itself broke the spec.
REQUEST_PROBLEMS = frozenset({"UNPROCESSABLE_ENTITY", "NOT_ACCEPTABLE", "UNAUTHORIZED", "INVALID_CONTENT_TYPE",
                              "NO_PATH_MATCHED_ERROR", "NO_METHOD_MATCHED_ERROR"})


class PrismUnavailable(Exception):
    """npm is not installed, so Prism cannot be: the caller skips."""


def prism_executable(home: Path = PRISM_HOME) -> Path:
    """The `prism` command of PRISM_VERSION under `home`, installed with npm when missing."""
    try:
        return npm_tool(home, [f"{PRISM_PACKAGE}@{PRISM_VERSION}"], PRISM_PACKAGE, PRISM_VERSION, "prism")
    except NpmUnavailable as exc:
        raise PrismUnavailable(str(exc)) from None


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the process group led by `proc` (Prism forks workers): TERM, then KILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


@contextlib.contextmanager
def running_prism(prism: Path, spec: Path, log: Path, startup_s: float = 60) -> Iterator[str]:
    """Prism mocking `spec` on a free loopback port; yields its base URL. Its output goes to `log`."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([str(prism), "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + startup_s
        while not _port_open(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"Prism did not start on {spec} (exit code {proc.poll()}):\n{tail}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


def load_document(path: Path) -> Any:
    """The parsed root document (only its security schemes are read: no $ref resolution needed)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@dataclass(frozen=True, slots=True)
class DummyCredentials:
    """Credentials Prism accepts for a spec's security schemes: it checks only that they are present.

    `authorizations` holds one Authorization value per kind the spec declares (bearer, basic): only one can
    go on a request, so the proxy tries the next one when Prism still answers 401.
    """

    api_keys: tuple[tuple[str, str], ...] = ()  # (in, name)
    authorizations: tuple[str, ...] = ()

    @classmethod
    def for_document(cls, document: Any) -> DummyCredentials:
        """From the securitySchemes (OpenAPI 3) or securityDefinitions (Swagger 2.0) of the root document."""
        schemes = (document.get("components") or {}).get("securitySchemes") or document.get("securityDefinitions")
        api_keys: list[tuple[str, str]] = []
        kinds: set[str] = set()
        for scheme in (schemes or {}).values():
            kind, http = scheme.get("type"), str(scheme.get("scheme", "")).lower()
            if kind == "apiKey" and scheme.get("name"):
                api_keys.append((scheme.get("in", "header"), scheme["name"]))
            elif kind in ("oauth2", "openIdConnect") or (kind == "http" and http == "bearer"):
                kinds.add("Bearer x")
            elif kind == "basic" or (kind == "http" and http == "basic"):
                kinds.add("Basic " + base64.b64encode(b"x:x").decode())
        return cls(tuple(api_keys), tuple(sorted(kinds)))

    def attempts(self, headers: list[tuple[str, str]], query: bytes) -> Iterator[tuple[list[tuple[str, str]], bytes]]:
        """The request's headers and query with credentials added (one variant per Authorization kind)."""
        present = {name.lower() for name, _ in headers}
        query_names = {name for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)}
        headers = list(headers)
        for where, name in self.api_keys:
            if where == "header" and name.lower() not in present:
                headers.append((name, "x"))
            elif where == "query" and name not in query_names:
                query += (b"&" if query else b"") + urlencode({name: "x"}).encode()
            elif where == "cookie":
                headers.append(("cookie", f"{name}=x"))
        if "authorization" in present or not self.authorizations:
            yield headers, query
            return
        for value in self.authorizations:
            yield [*headers, ("authorization", value)], query


@dataclass(frozen=True, slots=True)
class Exchange:
    """One upstream request as the gateway sent it, and Prism's verdict on it."""

    method: str
    target: str  # raw path and query as sent
    content_type: str
    body: bytes
    status: int
    request_violations: tuple[str, ...]
    response_violations: tuple[str, ...]
    problem: str  # the type of Prism's problem+json answer, if it gave one

    def describe(self) -> str:
        lines = [f"{self.method} {self.target} [{self.content_type or 'no body'}] -> Prism {self.status}"
                 + (f" {self.problem}" if self.problem else "")]
        if self.body:
            lines.append(f"  body: {self.body[:300].decode('utf-8', 'replace')}")
        lines += [f"  request violation: {v}" for v in self.request_violations]
        lines += [f"  response violation (Prism's mock): {v}" for v in self.response_violations]
        return "\n".join(lines)


def _location(item: dict[str, Any]) -> str:
    return ".".join(str(part) for part in item.get("location") or [])


def read_verdict(headers: httpx2.Headers, body: bytes) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """(request violations, response violations, problem type) from Prism's answer.

    Violations come in the `sl-violations` header; when Prism answers with its own problem+json instead of a
    response from the spec, the problem type says why (for request problems it becomes a violation too).
    """
    request: list[str] = []
    response: list[str] = []
    raw = headers.get("sl-violations")
    if raw:
        try:
            items = json.loads(raw)
        except ValueError:  # Prism truncates a long list: "Too many violations! ..."
            items = [{"location": ["request"], "severity": "Error", "message": raw[:500]}]
        for item in items:
            if item.get("severity") != "Error":
                continue
            where = (item.get("location") or [""])[0]
            text = f"{_location(item)}: {item.get('message', '')} ({item.get('code', '')})"
            (request if where == "request" else response).append(text)
    problem = ""
    if "problem+json" in headers.get("content-type", ""):
        with contextlib.suppress(ValueError, AttributeError):
            answer = json.loads(body)
            problem = str(answer.get("type", "")).rsplit("#", 1)[-1]
            if problem in REQUEST_PROBLEMS and not request:
                request.append(f"{problem}: {answer.get('detail') or answer.get('title') or ''}")
                request += [f"{_location(item)}: {item.get('message', '')}" for item in answer.get("validation") or []]
    return tuple(request), tuple(response), problem


class RecordingProxy:
    """ASGI app forwarding every request to Prism and recording each `Exchange` in `exchanges`.

    Exchanges are appended before the answer goes back, so once a tool call has returned, every request
    it caused is recorded.
    """

    def __init__(self, oracle_url: str, credentials: DummyCredentials) -> None:
        self.oracle = httpx2.URL(oracle_url)
        self.credentials = credentials
        self.exchanges: list[Exchange] = []
        self.client: httpx2.AsyncClient | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._proxy(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.client = httpx2.AsyncClient(timeout=30)
                self.client.headers.clear()  # forward the gateway's headers, not the client's defaults
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.client is not None:
                    await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _proxy(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path, query = scope["raw_path"], scope["query_string"]
        sent = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        headers = [(k, v) for k, v in sent if k.lower() not in NOT_FORWARDED]
        try:
            answer = await self._forward(scope["method"], path, query, headers, body)
            status, answer_headers, content = answer.status_code, answer.headers, answer.content
            request_violations, response_violations, problem = read_verdict(answer_headers, content)
        except httpx2.HTTPError as exc:  # e.g. a mock answer with headers HTTP/1.1 does not allow
            status, answer_headers, content = 502, httpx2.Headers(), f"unreadable answer from Prism: {exc}".encode()
            request_violations, response_violations, problem = (), (), content.decode()
        self.exchanges.append(Exchange(
            method=scope["method"], target=(path + (b"?" + query if query else b"")).decode("latin-1"),
            content_type=next((v for k, v in sent if k.lower() == "content-type"), ""), body=body,
            status=status, request_violations=request_violations, response_violations=response_violations,
            problem=problem,
        ))
        out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer_headers.multi_items()
               if k.lower() not in NOT_FORWARDED]
        out.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": content})

    async def _forward(self, method: str, path: bytes, query: bytes, headers: list[tuple[str, str]],
                       body: bytes) -> httpx2.Response:
        """Prism's answer, with dummy credentials (retried with the next Authorization kind on a 401)."""
        assert self.client is not None, "the proxy is served without its lifespan"
        for attempt_headers, attempt_query in self.credentials.attempts(headers, query):
            url = self.oracle.copy_with(raw_path=path + (b"?" + attempt_query if attempt_query else b""))
            answer = await self.client.request(method, url, headers=attempt_headers, content=body)
            if answer.status_code != 401:
                break
        return answer
