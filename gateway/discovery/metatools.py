"""The search-mode meta-tools: `search_tools` finds tools by meaning, `call_tool` calls one of them.

With them a model can use an API of hundreds of operations through two listed tools. `search_tools`
answers with the same descriptors flat mode would list (widget `_meta` included), limited to the tools
the caller may call. `call_tool` only resolves its target: the server hands the target `ToolSpec` to
the ordinary call path, so validation, scopes, rate limits, redaction and the audit line are exactly a
direct call's. The HTTP guard reads `call_tool`'s target too, so a missing scope is the same 403.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import mcp_types as types

from gateway.auth.settings import Identity
from gateway.calls.shape import compact_json, error_result
from gateway.discovery.catalog import CALL_TOOL, SEARCH_TOOL, Catalog
from gateway.tools.model import ToolSpec

DEFAULT_LIMIT = 5
MAX_LIMIT = 20
_LINE = 120  # characters of a tool's one-line description in the text listing
_TOPICS = 24  # tags named in search_tools' description

SEARCH_INPUT = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "minLength": 1,
                  "description": "What the user wants done, in natural language (e.g. \"open a pull request\")."},
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT,
                  "description": "How many tools to return, best match first."},
    },
    "required": ["query"],
    "additionalProperties": False,
}
SEARCH_OUTPUT = {
    "type": "object",
    "properties": {"tools": {"type": "array", "items": {"type": "object"}}},
    "required": ["tools"],
}
CALL_INPUT = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "description": "The tool's name, as search_tools gave it."},
        "arguments": {"type": "object", "default": {},
                      "description": "The tool's arguments, as its inputSchema (from search_tools) describes."},
    },
    "required": ["name"],
    "additionalProperties": False,
}


@dataclass(frozen=True, slots=True)
class CallTarget:
    """What a valid `call_tool` call asks for: the target tool and its own arguments."""

    tool: ToolSpec
    arguments: Mapping[str, Any]


Permits = Callable[[str, Identity], bool]
"""Whether the caller may call the named tool (its scopes); without inbound auth, always."""


class MetaTools:
    """The two meta-tools of one search-mode endpoint.

    `describe(name, legacy)` gives a tool's wire descriptor for a protocol era (legacy True for
    2025-11-25), as flat mode would list it.
    """

    def __init__(self, catalog: Catalog, describe: Callable[[str, bool], dict[str, Any]], permits: Permits) -> None:
        assert catalog.index is not None, "meta-tools serve search-mode catalogs"
        self.catalog = catalog
        self.index = catalog.index
        self.describe = describe
        self.permits = permits

    def tools(self, security_schemes: Mapping[str, list[dict[str, Any]]] | None = None) -> list[types.Tool]:
        """The descriptors of `search_tools` and `call_tool`; `security_schemes` by meta-tool with inbound auth."""
        count = len(self.catalog.tools)
        tags = list(dict.fromkeys(tag for t in self.catalog.tools.values() for tag in t.operation.tags))
        topics = f" Topics: {', '.join(tags[:_TOPICS])}{', ...' if len(tags) > _TOPICS else ''}." if tags else ""
        search = types.Tool(
            name=SEARCH_TOOL,
            title="Search tools",
            description=(f"Find the tools of {self.catalog.name} for a task: {count} tools, searched by meaning. "
                         "Send what the user wants done in plain words; you get the best matches with their "
                         f"input schemas. Then call one with {CALL_TOOL}.{topics}"),
            input_schema=SEARCH_INPUT,
            output_schema=SEARCH_OUTPUT,
            annotations=types.ToolAnnotations(title="Search tools", read_only_hint=True, destructive_hint=False,
                                              idempotent_hint=True, open_world_hint=False),
        )
        call = types.Tool(
            name=CALL_TOOL,
            title="Call a tool",
            description=(f"Call one of the tools that {SEARCH_TOOL} found: `name` is its name, `arguments` its "
                         "arguments as its inputSchema describes. The answer is that tool's own answer."),
            input_schema=CALL_INPUT,
            annotations=self._call_annotations(),
        )
        if security_schemes is not None:
            search = search.model_copy(update={"meta": {"securitySchemes": security_schemes[SEARCH_TOOL]}})
            call = call.model_copy(update={"meta": {"securitySchemes": security_schemes[CALL_TOOL]}})
        return [search, call]

    def _call_annotations(self) -> types.ToolAnnotations:
        """The least permissive hints of the tools `call_tool` reaches: a client must be as careful with it."""
        hints = [tool.annotations for tool in self.catalog.tools.values()]
        return types.ToolAnnotations(
            title="Call a tool",
            read_only_hint=all(h.get("readOnlyHint") is True for h in hints),
            destructive_hint=any(h.get("destructiveHint") is True for h in hints),
            idempotent_hint=all(h.get("idempotentHint") is True for h in hints),
            open_world_hint=any(h.get("openWorldHint") is not False for h in hints),
        )

    def search(self, arguments: Mapping[str, Any] | None, *, legacy: bool, identity: Identity
               ) -> types.CallToolResult:
        """The best tools for the query that the caller may call, best first."""
        args = dict(arguments or {})
        query, limit = args.get("query"), args.get("limit", DEFAULT_LIMIT)
        unknown = sorted(set(args) - {"query", "limit"})
        if unknown:
            return error_result(f"{SEARCH_TOOL} takes `query` and `limit`, not {', '.join(map(repr, unknown))}.")
        if not isinstance(query, str) or not query.strip():
            return error_result(f"{SEARCH_TOOL} needs `query`: say in a few words what the user wants done, "
                                "e.g. {\"query\": \"list the open issues of a repository\"}.")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            return error_result(f"`limit` must be a whole number from 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}), "
                                f"not {compact_json(limit)}.")
        names = self.catalog.names
        hits = self.index.search(query, limit, allowed=lambda i: self.permits(names[i], identity))
        found = [self.describe(names[hit.index], legacy) for hit in hits]
        return types.CallToolResult(content=[types.TextContent(type="text", text=_listing(query, found))],
                                    structured_content={"tools": found})

    def target(self, arguments: Mapping[str, Any] | None) -> CallTarget | types.CallToolResult:
        """The tool `call_tool` asks for, or an error result saying what is wrong (nothing was called)."""
        args = dict(arguments or {})
        name, inner = args.get("name"), args.get("arguments", {})
        unknown = sorted(set(args) - {"name", "arguments"})
        if unknown:
            return error_result(f"{CALL_TOOL} takes `name` and `arguments`, not {', '.join(map(repr, unknown))}; "
                                "put the tool's own arguments inside `arguments`.")
        if not isinstance(name, str) or not name:
            return error_result(f"{CALL_TOOL} needs `name`: a tool name from {SEARCH_TOOL}.")
        if not isinstance(inner, dict):
            return error_result(f"`arguments` must be an object with the tool's arguments, not {compact_json(inner)}.")
        tool = self.catalog.tools.get(name)
        if tool is None:
            close = self.closest(name)
            hint = f" The closest names: {', '.join(close)}." if close else ""
            return error_result(f"There is no tool {name!r} here.{hint} Use {SEARCH_TOOL} to find the right one.")
        return CallTarget(tool, inner)

    def closest(self, name: str, count: int = 5) -> list[str]:
        """Tool names like `name`: spelt alike first, then found by searching for its words."""
        close = difflib.get_close_matches(name, self.catalog.names, n=count, cutoff=0.6)
        words = name.replace("_", " ").replace("-", " ")
        for hit in self.index.search(words, count):
            candidate = self.catalog.names[hit.index]
            if candidate not in close and len(close) < count:
                close.append(candidate)
        return close


def _listing(query: str, found: list[dict[str, Any]]) -> str:
    """The text the model reads: each tool's name, arguments and one-line description."""
    if not found:
        return f"No tool you may call matches {query!r}."
    lines = [f"{len(found)} tools for {query!r}, best first. Call one with {CALL_TOOL} "
             "{\"name\": ..., \"arguments\": {...}}; each tool's inputSchema is in the structured result."]
    for tool in found:
        schema = tool.get("inputSchema", {})
        required = set(schema.get("required", ()))
        arguments = ", ".join(f"{a}{'*' if a in required else ''}" for a in schema.get("properties", {}))
        about = " ".join((tool.get("title") or tool.get("description") or "").split())
        if len(about) > _LINE:
            about = about[:_LINE - 1].rstrip() + "…"
        lines.append(f"- {tool['name']}({arguments}): {about}")
    return "\n".join(lines) + "\n(* = required)"
