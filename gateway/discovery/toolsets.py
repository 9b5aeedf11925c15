"""Toolsets: named groups of an API's served tools, each served at its own MCP endpoint.

A team can register one focused app per toolset (`/mcp/issues`, `/mcp/billing`) instead of one that
carries the whole API. The rules are the mapping's `select` rules, applied to the tools the mapping
serves; `from_tags: true` adds one toolset per tag. A toolset that matches nothing is an error at its
line: it would be an empty endpoint, which is never what was meant.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.errors import Diagnostic
from gateway.mapping.model import DiscoveryMode, ToolMapping, ToolsetEntry
from gateway.tools.model import ToolSpec
from gateway.yamlfile import config_error, did_you_mean


@dataclass(frozen=True, slots=True)
class Toolset:
    """One toolset, resolved: its endpoint key and its tools' names in listing order.

    `name`/`instructions` None take the server's; `discovery` None takes `server.discovery.mode`.
    """

    key: str
    where: str
    tools: tuple[str, ...]
    name: str | None = None
    instructions: str | None = None
    discovery: DiscoveryMode | None = None


def tag_key(tag: str) -> str:
    """The endpoint key of a tag's toolset: `Pull Requests` -> `pull-requests`."""
    return re.sub(r"[^a-z0-9]+", "-", tag.lower()).strip("-")[:63].rstrip("-")


def resolve_toolsets(mapping: ToolMapping, tools: Sequence[ToolSpec]) -> list[Toolset]:
    """The toolsets of one backend's mapping over the tools it serves.

    Raises `ConfigError` for a named toolset whose rules match none of the served tools. Tags that
    slug to the same key (`Issues`, `issues`) share one toolset; a named toolset replaces the tag
    toolset of the same key.
    """
    problems: list[Diagnostic] = []
    named = {entry.key: _named(entry, tools, problems) for entry in mapping.toolsets.entries}
    if problems:
        raise config_error(problems)
    found: dict[str, Toolset] = {}
    if mapping.toolsets.from_tags:
        by_tag: dict[str, list[str]] = {}
        for tool in tools:
            for key in dict.fromkeys(tag_key(tag) for tag in tool.operation.tags):
                if key:
                    by_tag.setdefault(key, []).append(tool.name)
        for key, names in by_tag.items():
            found[key] = Toolset(key, mapping.toolsets.where, tuple(names))
    found.update(named)
    return list(found.values())


def _named(entry: ToolsetEntry, tools: Sequence[ToolSpec], problems: list[Diagnostic]) -> Toolset:
    chosen = tuple(
        tool.name for tool in tools
        if any(rule.matches(tool.operation) for rule in entry.include)
        and not any(rule.matches(tool.operation) for rule in entry.exclude)
    )
    if not chosen:
        tags = sorted({tag for tool in tools for tag in tool.operation.tags})
        asked = [rule.tag for rule in entry.include if rule.tag]
        hint = did_you_mean(asked[0], tags) if asked else ""
        problems.append(Diagnostic(entry.where, f"toolsets.{entry.key}: its rules match none of the {len(tools)} "
                                   f"tools this mapping serves{hint}; a toolset needs at least one tool"))
    return Toolset(entry.key, entry.where, chosen, entry.name, entry.instructions, entry.discovery)
