"""Log lines as JSON (`server.log_format: json`), each carrying the id of the request it belongs to.

The request id is the W3C trace id when the caller sent a `traceparent` header (so a log line and the
trace of the same call share it), else a new random one (128 bits of Python's PRNG, as OpenTelemetry's
own id generator makes trace ids: an id must be unique, not secret, and reading the OS's entropy per
request costs a system call). `RequestIds` sets it for each HTTP request;
every record logged while serving that request gets it as `request_id`.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable
from contextvars import ContextVar

from starlette.types import ASGIApp, Receive, Scope, Send

_request_id: ContextVar[str | None] = ContextVar("gateway_request_id", default=None)
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def current_request_id() -> str | None:
    return _request_id.get()


class RequestIds:
    """ASGI middleware: a request id for every HTTP request (the trace id of its `traceparent`, if valid)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        parent = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"traceparent"), "")
        found = _TRACEPARENT.match(parent.strip().lower())
        request_id = found.group(1) if found else ""
        if request_id in ("", "0" * 32):  # no trace (an all-zero trace id is invalid)
            request_id = f"{random.getrandbits(128):032x}"
        token = _request_id.set(request_id)
        try:
            await self.app(scope, receive, send)
        finally:
            _request_id.reset(token)


class _Seconds:
    """A timestamp's text up to the second, formatted once per second: every call logs a line, and
    `time.strftime` for each was a visible part of a call's CPU."""

    __slots__ = ("convert", "fmt", "second", "text")

    def __init__(self, fmt: str, convert: Callable[[float], time.struct_time]) -> None:
        self.fmt, self.convert = fmt, convert
        self.second, self.text = -1, ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self.second:
            self.second, self.text = second, time.strftime(self.fmt, self.convert(second))
        return self.text


class TextFormatter(logging.Formatter):
    """`time level logger message`, the time as `logging.Formatter` writes it by default (local time)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self._seconds = _Seconds(self.default_time_format, time.localtime)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.default_msec_format % (self._seconds(record.created), record.msecs)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id; a JSON message is merged in
    (the audit line's fields become the object's own), and an exception's traceback goes in `exc`."""

    def __init__(self) -> None:
        super().__init__()
        self._seconds = _Seconds("%Y-%m-%dT%H:%M:%S", time.gmtime)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": f"{self._seconds(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name,
        }
        message = record.getMessage()
        parsed = _object(message) if message.startswith("{") else None
        if parsed is not None:
            line.update(parsed)
        else:
            line["message"] = message
        request_id = current_request_id()
        if request_id is not None:
            line["request_id"] = request_id
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _object(text: str) -> dict[str, object] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def setup_logging(level: str, fmt: str = "text") -> None:
    """The root handler on stderr, in the configured format; the per-request lines of libraries are muted."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    # No record field needs the thread, the process or the caller's source line, and filling them costs
    # more than the rest of a record: the switches the logging HOWTO's "Optimization" section names.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The gateway logs one line per call itself; the HTTP clients' and the SDK's per-request lines would
    # double it (and a client's would carry upstream URLs, query strings included).
    for noisy in ("httpx2", "httpcore2", "aiohttp.access", "mcp.server.streamable_http",
                  "mcp.server.streamable_http_manager"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
