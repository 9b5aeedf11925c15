"""The call path: rate limit -> validate -> build -> forward (within the backend's cap) -> shape -> redact.

It knows nothing of JSON-RPC or HTTP framing: the MCP server (or any leaner transport) hands it a
tool, the arguments, the caller's identity and protocol era and the `CallPolicy`, and gets a
`CallToolResult` back. Every failure, a bug in the gateway included, becomes an `isError` result that
the model can read (MCP clients never see a JSON-RPC error for a failed tool), and every call leaves
exactly one audit line, whatever happened.

Rate limits come first and count every call, invalid ones included: they guard the gateway as much as
the backend. The cap on calls in flight covers only the upstream exchange; a call waits for a slot up
to its own timeout, then gets the full timeout for the exchange.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import logging
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import mcp_types as types

from gateway.auth.settings import ANONYMOUS, AuditSettings, Identity, Secret
from gateway.calls.files import FileFetcher, FileRefused
from gateway.calls.forward import Backend, UpstreamError, UpstreamResponse
from gateway.calls.limits import Busy, ConcurrencyCap, RateLimiter
from gateway.calls.request import ArgumentError, UpstreamRequest, build_request
from gateway.calls.shape import compact_json, error_result, shape
from gateway.calls.validate import describe, text_problem
from gateway.config import GatewayConfig
from gateway.observability.logs import current_request_id
from gateway.observability.tracing import Tracing
from gateway.redact import REDACTED, Redactor, looks_secret
from gateway.tools.model import ToolSpec

log = logging.getLogger("gateway.calls")
audit_log = logging.getLogger("gateway.audit")

RETRY_AFTER_META = "io.semantic-adapter-gateway/retryAfterSeconds"
"""`_meta` key of a rate-limited result: seconds to wait. MCP defines none; the prefix is ours, as MCP asks."""
_OUTPUT_MISMATCH = "The backend's answer does not match the tool's declared output schema"  # shape.py's wording
_MAX_LOGGED_STRING = 200


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """What guards every call: rate limits, each backend's cap on calls in flight, redaction, the audit line.

    Built once at start (`build_policy`) and shared by all calls. The default limits nothing but still
    redacts recognisable credentials and the backend's own secrets.
    """

    limiter: RateLimiter | None = None
    caps: Mapping[str, ConcurrencyCap] = field(default_factory=dict)
    redactor: Redactor = field(default_factory=Redactor)
    audit: AuditSettings = field(default_factory=AuditSettings)
    observers: tuple[CallObserver, ...] = ()
    tracing: Tracing | None = None
    files: FileFetcher | None = None  # downloads file arguments given by URL (server.files)


class CallObserver(Protocol):
    """Told what each call did (metrics): its outcome, and each request that went to a backend."""

    def call_finished(self, tool: str, backend: str, outcome: str) -> None: ...

    def upstream_finished(self, backend: str, status: int | None, seconds: float) -> None:
        """`status` None: no answer (a timeout, a refused or broken connection)."""


def build_policy(config: GatewayConfig, backends: Mapping[str, Backend],
                 observers: tuple[CallObserver, ...] = (), tracing: Tracing | None = None) -> CallPolicy:
    """The policy the configuration asks for; `backends` supply their current tokens to the redactor."""
    rates = config.server.rate_limits
    return CallPolicy(
        limiter=RateLimiter(rates) if rates.per_caller or rates.per_tool else None,
        caps={b.name: ConcurrencyCap(b.name, b.max_concurrency) for b in config.backends},
        redactor=Redactor(configured_secrets(config), sources=[b.secrets for b in backends.values()]),
        audit=config.server.audit,
        observers=observers,
        tracing=tracing,
        files=FileFetcher(config.server.files) if config.server.files.enabled else None,
    )


def configured_secrets(config: GatewayConfig) -> list[str]:
    """Every secret value in the configuration, and the values of secret-named static headers."""
    found = _secret_fields(config.server.auth)
    for backend in config.backends:
        found += _secret_fields(backend.auth) + _secret_fields(backend.tls)
        for name, value in backend.headers.items():
            if looks_secret(name):
                found += [value, value.split()[-1]] if value.strip() else []
    return found


def _secret_fields(settings: Any) -> list[str]:
    values = (getattr(settings, f.name) for f in dataclasses.fields(settings))
    return [value.reveal() for value in values if isinstance(value, Secret)]


@dataclass(slots=True)
class _Audit:
    """What one call did, filled in as it goes and logged once at the end."""

    outcome: str = "cancelled"
    upstream_status: int | None = None
    downloads: int = 0  # files downloaded for the call (server.files)


async def call_tool(
    tool: ToolSpec,
    arguments: Mapping[str, Any] | None,
    backend: Backend,
    *,
    legacy: bool,
    identity: Identity = ANONYMOUS,
    policy: CallPolicy | None = None,
) -> types.CallToolResult:
    """Run one tool call. Never raises an `Exception`: failures are `isError` results, each audited."""
    started = time.perf_counter()
    policy = policy or CallPolicy(redactor=Redactor(sources=[backend.secrets]))
    extra = (identity.token.reveal(),) if identity.token is not None else ()
    audit = _Audit()
    try:
        return await _call(tool, arguments, backend, legacy, identity, policy, extra, audit)
    except Exception:
        audit.outcome = "internal_error"
        log.error("internal error in the gateway during a call of tool %r:\n%s", tool.name,
                  policy.redactor.redact(traceback.format_exc(), extra))
        return error_result(f"Tool {tool.name!r} failed with an internal error in the gateway (logged); "
                            "the arguments are not at fault and a retry will probably fail the same way.")
    finally:
        fields = {"downloads": audit.downloads} if audit.downloads else {}
        write_audit("tool_call", identity, tool.name, audit.outcome, started, policy, arguments, extra,
                    backend=tool.backend, upstream_status=audit.upstream_status, **fields)
        for observer in policy.observers:
            observer.call_finished(tool.name, tool.backend, audit.outcome)


def write_audit(event: str, identity: Identity, tool: str, outcome: str, started: float, policy: CallPolicy,
                arguments: Mapping[str, Any] | None, extra: Iterable[str] = (), **fields: Any) -> None:
    """The one JSON audit line of a call (`tool_call`) or a search (`tool_search`)."""
    line = {"event": event, "request_id": current_request_id(), "subject": identity.subject,
            "client_id": identity.client_id, "tool": tool, **fields, "outcome": outcome,
            "ms": round((time.perf_counter() - started) * 1000, 1)}
    if policy.audit.log_arguments:
        line["arguments"] = _loggable(dict(arguments or {}), policy.redactor, extra)
    audit_log.info(compact_json(line))


async def rate_limited(policy: CallPolicy, identity: Identity, tool: str) -> types.CallToolResult | None:
    """The refusal when the caller is over a rate limit for `tool`, else None (counting this call)."""
    if policy.limiter is None:
        return None
    refused = await policy.limiter.check(identity.who, tool)
    if refused is None:
        return None
    result = error_result(f"Rate limit reached for tool {tool}: {refused.limit}; retry in {refused.retry_after} s.")
    return result.model_copy(update={"meta": {RETRY_AFTER_META: refused.retry_after}})


async def _call(
    tool: ToolSpec, arguments: Mapping[str, Any] | None, backend: Backend, legacy: bool, identity: Identity,
    policy: CallPolicy, extra: tuple[str, ...], audit: _Audit,
) -> types.CallToolResult:
    redactor = policy.redactor

    def failed(outcome: str, text: str) -> types.CallToolResult:
        audit.outcome = outcome
        return error_result(redactor.redact(text, extra))

    if (refused := await rate_limited(policy, identity, tool.name)) is not None:
        audit.outcome = "rate_limited"
        return refused
    args = dict(arguments or {})
    for name, value in tool.request.defaults.items():
        args.setdefault(name, value)
    invalid = f"Invalid arguments for tool {tool.name!r}; nothing was sent to the backend:\n"
    for name in tool.file_params:
        if isinstance(args.get(name), dict):
            if policy.files is None:
                return failed("invalid_arguments", f"{invalid}- /{name}: this gateway does not download files; "
                                                   "send the file's content as base64")
            try:
                downloaded = await policy.files.fetch(args[name].get("download_url"))
            except FileRefused as exc:
                return failed("file_refused", f"The file for `{name}` could not be downloaded: {exc}. Nothing was "
                                              "sent to the backend.")
            args[name] = base64.b64encode(downloaded.content).decode("ascii")
            audit.downloads += 1
    if (problem := text_problem(args)) is not None:
        return failed("invalid_arguments", f"{invalid}- /: {problem}")
    if tool.validate is not None and (violations := tool.validate(args)):
        return failed("invalid_arguments", invalid + describe(violations))
    try:
        request = build_request(tool.request, args)
    except ArgumentError as exc:
        return failed("invalid_arguments", f"{invalid}- {exc.pointer}: {exc.message}")
    cap = policy.caps.get(tool.backend)
    wait = tool.timeout if tool.timeout is not None else backend.timeouts.read
    try:
        async with cap.slot(wait) if cap is not None else contextlib.nullcontext():
            if policy.tracing is None:
                response = await _exchange(tool, request, backend, identity, policy.observers)
            else:
                response = await _traced_exchange(tool, request, backend, identity, policy)
    except Busy as exc:
        calls = "call" if exc.in_flight == 1 else "calls"
        return failed("busy", f"The backend {exc.backend!r} is busy ({exc.in_flight} {calls} in flight), so "
                              "nothing was sent; retry shortly.")
    except UpstreamError as exc:
        what = f"{tool.request.method} {tool.request.path}"
        hint = ("The gateway's own credentials for this backend are the problem, not the arguments."
                if exc.kind == "credentials" else "The backend may be down or slow; retrying later may help.")
        return failed(f"upstream_{exc.kind}", f"The call to {what} failed: {exc.message}. {hint}")
    audit.upstream_status = response.status
    scrubbed = redactor.scrub(response.content, extra)
    if scrubbed is not response.content:
        log.warning("the answer of %s to tool %r carried a secret; it was redacted", tool.backend, tool.name)
        response = dataclasses.replace(response, content=scrubbed)
    result = shape(tool, response, legacy=legacy)
    if not result.is_error:
        audit.outcome = "ok"
        return result
    text = "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))
    if not 200 <= response.status < 300:
        return failed("upstream_http_error", text)
    return failed("output_mismatch" if text.startswith(_OUTPUT_MISMATCH) else "upstream_bad_answer", text)


async def _exchange(tool: ToolSpec, request: UpstreamRequest, backend: Backend, identity: Identity,
                    observers: tuple[CallObserver, ...]) -> UpstreamResponse:
    """The upstream request and its answer, told to the observers (not when no request left: credentials)."""
    sent = time.perf_counter()
    try:
        response = await backend.send(request, timeout=tool.timeout, max_bytes=tool.response.max_bytes,
                                      identity=identity)
    except UpstreamError as exc:
        if exc.kind != "credentials":
            for observer in observers:
                observer.upstream_finished(tool.backend, None, time.perf_counter() - sent)
        raise
    for observer in observers:
        observer.upstream_finished(tool.backend, response.status, response.seconds)
    return response


async def _traced_exchange(tool: ToolSpec, request: UpstreamRequest, backend: Backend, identity: Identity,
                           policy: CallPolicy) -> UpstreamResponse:
    """`_exchange` in a client span whose trace context goes to the backend with the request."""
    tracing = policy.tracing
    assert tracing is not None
    with tracing.upstream_span(tool.backend, tool.request.method, tool.request.path, backend.base_url.host or ""
                               ) as span:
        request = dataclasses.replace(request, headers=(*request.headers, *tracing.trace_headers()))
        try:
            response = await _exchange(tool, request, backend, identity, policy.observers)
        except UpstreamError as exc:
            tracing.finish(span, error_type=exc.kind)
            raise
        failed = str(response.status) if response.status >= 400 else None
        tracing.finish(span, status=response.status, error_type=failed)
        return response


def _loggable(value: Any, redactor: Redactor, extra: Iterable[str], name: str = "") -> Any:
    """Arguments as the audit line shows them: secret-named values hidden, strings redacted and clipped."""
    if name and looks_secret(name):
        return REDACTED
    if isinstance(value, dict):
        return {key: _loggable(item, redactor, extra, str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_loggable(item, redactor, extra) for item in value]
    if isinstance(value, str):
        value = redactor.redact(value, extra)  # before clipping, which could cut a secret beyond recognition
        return value if len(value) <= _MAX_LOGGED_STRING else value[:_MAX_LOGGED_STRING] + "..."
    return value
