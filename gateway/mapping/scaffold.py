"""`gateway init`: a commented starting mapping for any spec.

The file lists every operation as an explicit `select.include` rule, so trimming the tool list is a
matter of deleting or commenting lines. Deprecated operations are there but commented out. Settings
appear as commented examples: uncommenting the `tools:` block gives a valid mapping for the same spec.
The output always loads back with `load_mapping`.
"""

from __future__ import annotations

import re
from collections import Counter

import yaml

from gateway.spec.model import ApiModel, Operation

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]+")
_GLOB_SPECIAL = {"*": "[*]", "?": "[?]", "[": "[[]"}
_COMMENT_COLUMN = 48
_EXAMPLES = 2

_HEADER = """\
# Mapping for {title}, written by `gateway init` from {source}.
#
# It decides which operations of the API become MCP tools, and how the model sees them.
# Check it with: gateway check --spec SPEC --mapping THIS_FILE   (gateway tools ... lists the result)
# Reference: docs/mapping.md; JSON Schema: config/mapping.schema.json.
#
#   server     name and instructions MCP clients get for this API
#   defaults   timeout (seconds per upstream call), max_response_bytes, include_deprecated
#   select     include / exclude rules; a rule matches when all its fields match:
#              operationId (exact), tag (exact), method (any case), path (glob: * ? [abc])
#   tools      settings per operation, keyed by operationId or "METHOD /path" as in the spec:
#              name, title, description, annotations, timeout, max_response_bytes,
#              parameters (by spec name: default, fixed, hidden, description, allow_slash),
#              response (select: JMESPath, max_items, summary: "text with {{JMESPath}} parts")
"""


def scaffold_mapping(api: ApiModel) -> str:
    """A commented mapping selecting every non-deprecated operation of `api`, ready to edit."""
    counts = Counter(op.operation_id for op in api.operations if op.operation_id)
    keyed_by_id = {op.operation_id for op in api.operations if op.operation_id and counts[op.operation_id] == 1}
    title = _comment_text(f"{api.title or 'an API'} {api.version}".strip())
    lines = [
        _HEADER.format(title=title, source=_comment_text(api.source)),
        "version: 1",
        "",
        "# server:",
        f"#   name: {_scalar(_slug(api.title) or 'api')}",
        '#   instructions: "What these tools are for, and how the model should use them."',
        "",
        "defaults:",
        "  # timeout: 30                # seconds per upstream call; default: the backend's timeout_read",
        "  max_response_bytes: 1000000  # larger upstream answers are refused",
        "  include_deprecated: false    # deprecated operations are selected only by an operationId rule",
        "",
        *_select_block(api.operations, keyed_by_id),
        "",
        *_tools_block(api.operations, keyed_by_id),
    ]
    return "\n".join(lines) + "\n"


def _select_block(operations: tuple[Operation, ...], keyed_by_id: set[str | None]) -> list[str]:
    rules = [_rule_line(op, keyed_by_id) for op in operations]
    active = sum(not op.deprecated for op in operations)
    if not operations:
        lines = ["  include: []  # the spec has no operations"]
    elif not active:
        lines = ["  include: []  # every operation is deprecated: uncomment the ones to serve", *rules]
    else:
        lines = [f"  include:  # {active} of {len(operations)} operations", *rules]
    return [
        "select:",
        *lines,
        "  # exclude:  # applied after include",
        "  #   - method: DELETE",
    ]


def _rule_line(operation: Operation, keyed_by_id: set[str | None]) -> str:
    route = f"{operation.method.upper()} {operation.path}"
    if operation.operation_id in keyed_by_id:
        rule = f"- operationId: {_scalar(operation.operation_id or '')}"
        note = route
    else:
        rule = f"- {{method: {operation.method.upper()}, path: {_scalar(_glob_escape(operation.path))}}}"
        note = "no operationId" if not operation.operation_id else f"operationId {operation.operation_id} is not unique"
    summary = _first_line(operation.summary)
    note += f": {summary}" if summary else ""
    note += " (deprecated)" if operation.deprecated else ""
    prefix = "    # " if operation.deprecated else "    "
    return f"{prefix}{rule}".ljust(_COMMENT_COLUMN) + f"  # {_comment_text(note)}"


def _tools_block(operations: tuple[Operation, ...], keyed_by_id: set[str | None]) -> list[str]:
    examples = [op for op in operations if not op.deprecated][:_EXAMPLES] or list(operations[:_EXAMPLES])
    if not examples:
        return []
    lines = ["tools:  # examples: uncomment and edit; remove what you do not need"]
    names: set[str] = set()
    for operation in examples:
        route = f"{operation.method.upper()} {operation.path}"
        key = operation.operation_id if operation.operation_id in keyed_by_id else route
        name = _tool_name(operation.operation_id or f"{operation.method}_{operation.path}", names)
        lines.append(f"  {_scalar(key or route)}:".ljust(_COMMENT_COLUMN) + f"  # {_comment_text(route)}")
        lines.append(f"    name: {name}")
        summary = _first_line(operation.summary)
        if summary:
            lines.append(f"    title: {_scalar(summary)}")
        lines.append('    # description: "Replaces the description generated from the spec."')
        lines.append("    timeout: 30")
        if operation.parameters:
            parameter = min(operation.parameters, key=lambda p: p.location in ("header", "cookie"))
            text = _first_line(parameter.description) or f"What the model should know about {parameter.name}."
            lines += ["    parameters:", f"      {_scalar(parameter.name)}: {{description: {_scalar(text)}}}"]
        lines += ["    response:", "      max_items: 50                # caps a list answer"]
    return ["# " + line for line in lines]


def _scalar(text: str) -> str:
    """`text` as a YAML scalar: plain when that reads back as the same string, else double-quoted."""
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return yaml.safe_dump(text, default_style='"', allow_unicode=True, width=2**31).strip()


def _glob_escape(path: str) -> str:
    """A `path` rule matching exactly this path template, whatever glob characters it contains."""
    return "".join(_GLOB_SPECIAL.get(char, char) for char in path)


def _tool_name(raw: str, taken: set[str]) -> str:
    base = _NOT_NAME.sub("_", raw).strip("_")[:60] or "tool"
    name, suffix = base, 2
    while name in taken:
        name, suffix = f"{base}_{suffix}", suffix + 1
    taken.add(name)
    return name


def _slug(title: str) -> str:
    return _NOT_NAME.sub("-", title.lower()).strip("-")[:64]


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    first = lines[0].strip() if lines else ""
    return first if len(first) <= 72 else first[:69] + "..."


def _comment_text(text: str) -> str:
    """Text safe inside a YAML comment: one line of printable characters."""
    return "".join(char if char.isprintable() else " " for char in text.replace("\n", " "))
