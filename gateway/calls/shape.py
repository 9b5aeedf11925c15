"""Shaping: an upstream answer becomes a `CallToolResult` for the model and for widgets.

JSON becomes `structuredContent` (after the mapping's selection and caps) plus a compact text copy
within the tool's text budget (a valid-JSON preview beyond it), so the model gets the data once and
its context is not flooded. Line-delimited JSON (NDJSON, JSON Lines, `json-seq`) becomes the list of its
records; XML whose schema is an object becomes structured data where it reads faithfully (else text).
Only when `max_items` cut what the model sees does `_meta` also carry the
whole answer for the tool's widget (it reaches the widget only, never the model); otherwise the widget
reads `structuredContent`. Other text becomes text content; binary becomes an
embedded resource. Failures (HTTP errors, invalid JSON, a body over the size cap, a result that
breaks the advertised output schema) become `isError` results that say what happened, so the model
can act on them.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import jmespath
import mcp_types as types
import orjson

from gateway.calls.forward import UpstreamResponse
from gateway.media import essence, is_json, is_json_lines, is_xml
from gateway.tools import xml
from gateway.tools.model import ToolSpec

MAX_ERROR_DETAIL = 500
MAX_TEXT = 100_000
_JSON_SUFFIXES = ("/x-json",)  # answers read as JSON beyond gateway.media.is_json (and is_json_lines)
_BINARY_TYPES = ("application/octet-stream", "application/pdf", "application/zip", "application/gzip",
                 "application/x-gzip", "application/x-tar", "application/x-protobuf", "application/protobuf",
                 "application/vnd.ms-excel", "application/msword")
_BINARY_FAMILIES = ("image/", "audio/", "video/", "font/", "model/")
_NOT_TEXT = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
WIDGET_DATA_META = "io.semantic-adapter-gateway/widgetData"
"""`_meta` key of the widget's data: MCP defines none, so the prefix is ours, as MCP asks."""


def text_result(text: str, *, error: bool = False, structured: Any = None) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], structured_content=structured, is_error=error
    )


def error_result(text: str) -> types.CallToolResult:
    return text_result(text, error=True)


def compact_json(value: Any) -> str:
    """Compact JSON text, non-ASCII kept. orjson (several times faster) unless a number is beyond 64 bits."""
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _digit_mask() -> bytes:
    """A translation table: digits to b"1", "-" kept, every other byte to b"0" (finds digit runs ~15x faster
    than a regex)."""
    return bytes(0x31 if 0x30 <= i <= 0x39 else i if i == 0x2D else 0x30 for i in range(256))


_DIGIT_MASK = _digit_mask()
_LONG_RUN = b"1" * 20  # 20 digits may exceed an unsigned 64-bit integer, which orjson would turn into a float
_LONG_NEGATIVE = b"-" + b"1" * 19  # and below -2**63 from 19 digits on


def parse_json(content: bytes | str) -> Any:
    """A JSON document; raises ValueError when it is not one (NaN and Infinity included: not JSON).

    orjson (several times faster) unless the text has a number that may not fit 64 bits: orjson reads
    such an integer as a float, and an ID or an argument must arrive exactly as it was sent.
    """
    raw = content.encode() if isinstance(content, str) else content
    masked = raw.translate(_DIGIT_MASK)
    if _LONG_RUN not in masked and _LONG_NEGATIVE not in masked:
        return orjson.loads(raw)  # orjson.JSONDecodeError is a ValueError
    try:
        return json.loads(raw, parse_constant=_not_json)
    except RecursionError:  # orjson stops at a depth of 1024 with a JSONDecodeError; the standard library here
        raise ValueError("the JSON document is nested too deeply") from None


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


def _media_type(response: UpstreamResponse) -> str:
    return essence(response.headers.get("content-type", ""))


def _is_json(media_type: str) -> bool:
    return is_json(media_type) or media_type.endswith(_JSON_SUFFIXES) or is_json_lines(media_type)


def _is_text(media_type: str) -> bool:
    return media_type.startswith("text/") or is_xml(media_type) or media_type.endswith(("/javascript", "/yaml"))


def _reads_as_text(media_type: str, content: bytes) -> bool:
    """A media type the gateway does not know (`application/x-chess-pgn`, a vendor type) whose bytes are
    plainly text: UTF-8 without control characters. Known binary families stay binary."""
    if media_type in _BINARY_TYPES or media_type.startswith(_BINARY_FAMILIES) or _NOT_TEXT.search(content[:65536]):
        return False
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def parse_json_lines(content: bytes, media_type: str) -> list[Any]:
    """The records of line-delimited JSON (NDJSON, JSON Lines; RFC 7464 sequences split on RS), blank lines
    skipped. Raises ValueError naming the first record that is not JSON."""
    separator = b"\x1e" if media_type.endswith("json-seq") else b"\n"
    records = []
    for number, record in enumerate(content.split(separator), 1):
        if not record.strip():
            continue
        try:
            records.append(parse_json(record.strip()))
        except ValueError as exc:
            what = "record" if separator == b"\x1e" else "line"
            raise ValueError(f"{what} {number} is not JSON ({exc})") from None
    return records


def backend_message(response: UpstreamResponse) -> str:
    """The backend's own error message, when its error body has a recognisable one."""
    text = response.content.decode("utf-8", errors="replace").strip()
    try:
        body = parse_json(text)
    except ValueError:
        return "" if "<html" in text[:200].lower() else _clip(" ".join(text.split()), MAX_ERROR_DETAIL)
    for path in ("message", "error.message", "error_description", "detail", "title", "error", "errors[0].message",
                 "errors[0]", "Message", "Error.Message", "fault.faultstring"):
        found = jmespath.search(path, body) if isinstance(body, dict | list) else None
        if isinstance(found, str) and found.strip():
            return _clip(found.strip(), MAX_ERROR_DETAIL)
    return _clip(compact_json(body), MAX_ERROR_DETAIL)


def _http_error(tool: ToolSpec, response: UpstreamResponse) -> types.CallToolResult:
    what = f"{tool.request.method} {tool.request.path}"
    message = backend_message(response)
    if 300 <= response.status < 400:
        where = response.headers.get("location", "")
        return error_result(f"The backend answered {response.status} {response.reason} for {what}, a redirect"
                            f"{' to ' + where if where else ''}, which the gateway does not follow.")
    hint = {
        400: "Check the arguments against the tool's input schema and descriptions.",
        401: "The gateway's credentials for this backend were refused.",
        403: "The gateway's credentials are not allowed to do this.",
        404: "The resource does not exist; check identifiers.",
        409: "The request conflicts with the current state of the resource.",
        422: "The backend rejected the values; check the arguments.",
        429: "The backend is rate limiting; wait before retrying.",
    }.get(response.status, "The backend failed; retrying later may help." if response.status >= 500 else "")
    text = f"The backend answered {response.status} {response.reason} for {what}."
    if message:
        text += f" Its message: {message}"
    if hint:
        text += f" {hint}"
    return error_result(text)


def _cap(value: Any, max_items: int | None) -> tuple[Any, str]:
    if max_items is not None and isinstance(value, list) and len(value) > max_items:
        return value[:max_items], f"(first {max_items} of {len(value)} items)"
    return value, ""


_PREVIEW_CHARS = (None, 200, 60)  # first the items as they are, then strings clipped to these lengths


def model_text(value: Any, budget: int, narrowing: tuple[str, ...] = ()) -> str:
    """The JSON the model reads: all of `value` when it fits `budget` bytes, else a valid-JSON preview.

    The preview keeps the first items of every list (as many as fit) with long strings clipped, and says
    how large the answer is and which arguments page or filter it, so the model can ask for less.
    `structuredContent` still carries the whole answer.
    """
    text = compact_json(value)
    size = len(text.encode())
    if size <= budget:
        return text
    total = len(value) if isinstance(value, list) else None
    ask = f" To get less, use {', '.join(narrowing)}." if narrowing else ""
    widest = _widest(value)
    for chars in _PREVIEW_CHARS:
        items = max(1, widest * budget * 9 // (size * 10))  # about what fits; fewer while the preview does not
        while True:
            shown = f"the first {min(items, total)} of {total} items" if total is not None else \
                f"at most {items} items of each list"
            note = (f"The answer is {size:,} bytes, more than fits here; this preview shows {shown}, long texts "
                    f"clipped. The complete answer is in the structured result.{ask}")
            preview = compact_json({"truncated": True, "note": note, **({"count": total} if total else {}),
                                    "preview": _sample(value, items, chars) if chars else _cut(value, items)})
            if len(preview.encode()) <= budget:
                return preview
            if items == 1:
                break
            items = max(1, items * 2 // 3)
    note = f"The answer is {size:,} bytes; its beginning is shown as text. The complete answer is in the " \
           f"structured result.{ask}"
    room = max(budget - len(note) - 64, 0) // 2  # escaping the JSON text as a string can double its size
    beginning = text.encode()[:room].decode("utf-8", "ignore")
    return compact_json({"truncated": True, "note": note, "preview_text": beginning})


def _widest(value: Any) -> int:
    """The longest list at the top or one level down: what a preview's item count is measured against."""
    if isinstance(value, list):
        return len(value)
    if isinstance(value, dict):
        return max((len(v) for v in value.values() if isinstance(v, list)), default=1)
    return 1


def _cut(value: Any, items: int) -> Any:
    """The first `items` of the value's top-level lists, nothing else changed (a slice: no copying)."""
    if isinstance(value, list):
        return value[:items]
    if isinstance(value, dict):
        return {k: v[:items] if isinstance(v, list) else v for k, v in value.items()}
    return value


def _sample(value: Any, items: int, chars: int) -> Any:
    if isinstance(value, list):
        return [_sample(v, items, chars) for v in value[:items]]
    if isinstance(value, dict):
        return {k: _sample(v, items, chars) for k, v in value.items()}
    if isinstance(value, str) and len(value) > chars:
        return value[:chars] + "…"
    return value


def _empty_value(schema: Any) -> Any:
    """What an empty 2xx answer becomes when the tool promises structured output."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    kinds = kind if isinstance(kind, list) else [kind]
    if "object" in kinds:
        return {}
    if "array" in kinds:
        return []
    return None


def shape_json(tool: ToolSpec, value: Any, note: str, legacy: bool) -> types.CallToolResult:
    plan = tool.response
    if plan.select is not None:
        value = plan.select.search(value)
    whole = value
    value, capped = _cap(value, plan.max_items)
    if plan.check is not None:
        problems = plan.check(value)
        if problems:
            pointer, message = problems[0]
            return error_result(
                f"The backend's answer does not match the tool's declared output schema at {pointer}: {message}. "
                f"The answer was: {_clip(compact_json(value), 4000)}"
            )
    lines = [plan.summary(value)] if plan.summary is not None else []
    lines += [line for line in (capped, note.strip()) if line]
    lines.append(model_text(value, plan.max_text_bytes, plan.narrowing))
    structured = value
    if legacy and (plan.wrap or not isinstance(value, dict)):
        structured = {"result": value}
    elif value is None:
        structured = None if plan.output_schema is None else value
    result = text_result("\n".join(lines), structured=structured)
    if tool.widget is not None and capped:  # the widget shows more than the model sees; else it reads structuredContent
        result = result.model_copy(update={"meta": {WIDGET_DATA_META: whole}})
    return result


def shape(tool: ToolSpec, response: UpstreamResponse, *, legacy: bool) -> types.CallToolResult:
    """The tool result for a backend answer."""
    if not 200 <= response.status < 300:
        return _http_error(tool, response)
    media_type = _media_type(response)
    limit = tool.response.max_bytes
    if response.truncated:
        if _is_json(media_type) or tool.response.output_schema is not None:
            return error_result(
                f"The backend's answer is larger than the gateway's {limit:,}-byte limit, so it was not returned. "
                "Ask for less (a smaller page, a filter, fewer fields)."
            )
        note = f"\n[truncated: the answer is larger than {limit:,} bytes]"
    else:
        note = ""
    content = response.content
    if not content.strip():
        if tool.response.output_schema is not None:
            return shape_json(tool, _empty_value(tool.response.output_schema), "", legacy)
        return text_result(f"Done: the backend answered {response.status} {response.reason} with no content.")
    if is_json_lines(media_type):
        try:
            records = parse_json_lines(content, media_type)
        except ValueError as exc:
            return error_result(f"The backend answered {response.status} with {media_type} that is not line-"
                                f"delimited JSON: {exc}; its answer began: "
                                f"{_clip(content[:300].decode('utf-8', 'replace'), 300)}")
        return shape_json(tool, records, note, legacy)
    if _is_json(media_type) or (not media_type and content.lstrip()[:1] in (b"{", b"[")):
        try:
            value = parse_json(content)
        except ValueError as exc:
            return error_result(f"The backend answered {response.status} with invalid JSON ({exc}); "
                                f"its answer began: {_clip(content[:300].decode('utf-8', 'replace'), 300)}")
        if value is None and tool.response.output_schema is not None:
            value = _empty_value(tool.response.output_schema)  # JSON null: no data, like an empty body
        return shape_json(tool, value, note, legacy)
    if tool.response.output_schema is not None:
        return error_result(f"The backend answered {response.status} with {media_type or 'an unknown type'} "
                            "instead of the JSON the tool promises.")
    if is_xml(media_type) and tool.response.xml is not None and not response.truncated:
        try:
            root = xml.parse(content)
        except ValueError as exc:
            return error_result(f"The backend answered {response.status} with {media_type} that is not usable "
                                f"XML: {exc}.")
        try:
            value = xml.read(root, tool.response.xml)
        except xml.Unfaithful:
            value = None  # the answer has a shape its schema does not describe: the model reads the XML itself
        if value is not None:
            return shape_json(tool, value, note, legacy)
    if _is_text(media_type) or not media_type or _reads_as_text(media_type, content):
        return text_result(_clip(content.decode("utf-8", errors="replace"), MAX_TEXT) + note)
    blob = types.BlobResourceContents(
        uri=f"upstream://{tool.name}/response", mime_type=media_type, blob=base64.b64encode(content).decode()
    )
    return types.CallToolResult(
        content=[
            types.TextContent(type="text", text=f"The backend answered {len(content):,} bytes of {media_type}."),
            types.EmbeddedResource(type="resource", resource=blob),
        ]
    )
