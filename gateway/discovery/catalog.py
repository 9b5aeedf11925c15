"""What each MCP endpoint serves: its tools, how clients discover them, and the search index.

The gateway serves one endpoint for all tools (`server.path`) and one per toolset beneath it. Each is
either *flat* (`tools/list` lists every tool) or *search* (`tools/list` lists `search_tools`,
`call_tool` and the pinned tools; the rest are found by meaning and called through `call_tool`).
`auto` picks flat while an endpoint has at most `server.discovery.max_flat_tools` tools: past a few
dozen, models choose tools worse and the listing alone can exceed their context.

Catalogs are built once at start-up, index included; serving only reads them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from gateway.config import DiscoverySettings
from gateway.discovery.toolsets import Toolset
from gateway.mapping.model import DiscoveryMode
from gateway.tools.model import ToolSpec

if TYPE_CHECKING:  # the index's modules (BM25, numpy, the embedding model) load with the first index only
    from gateway.discovery.index import SearchHit, ToolIndex

SEARCH_TOOL = "search_tools"
CALL_TOOL = "call_tool"
META_TOOLS = (SEARCH_TOOL, CALL_TOOL)


@dataclass(frozen=True, slots=True)
class Discovery:
    """The mode an endpoint serves, and why (for the start-up log)."""

    mode: Literal["flat", "search"]
    reason: str


def choose_discovery(requested: DiscoveryMode, count: int, max_flat_tools: int) -> Discovery:
    if requested != "auto":
        return Discovery(requested, f"mode {requested} was configured")
    if count <= max_flat_tools:
        return Discovery("flat", f"auto: {count} tools, at most max_flat_tools ({max_flat_tools})")
    return Discovery("search", f"auto: {count} tools, more than max_flat_tools ({max_flat_tools})")


@dataclass(frozen=True, slots=True)
class Catalog:
    """One MCP endpoint. `key` is the toolset's (None for the endpoint serving every tool).

    `index` (search mode only) holds the tools in the order of `tools`; `names` maps its hits back.
    """

    key: str | None
    path: str
    name: str
    instructions: str | None
    tools: Mapping[str, ToolSpec]
    discovery: Discovery
    index: LazyIndex | None = field(default=None, compare=False, repr=False)
    names: tuple[str, ...] = ()

    @property
    def search(self) -> bool:
        return self.discovery.mode == "search"

    def listed(self) -> list[ToolSpec]:
        """The tools `tools/list` shows beside any meta-tools: all of them, or in search mode the pinned ones."""
        return [tool for tool in self.tools.values() if tool.pinned or not self.search]


class LazyIndex:
    """A catalog's search index, built the first time it is needed.

    Building it (the embedding model, every tool's words and vectors) is a good part of a large API's
    start-up, and nothing but a search needs it: the server warms it in a worker thread once it serves
    (`warm`), so the first search rarely waits and `tools/list` never does.
    """

    def __init__(self, tools: Sequence[ToolSpec]) -> None:
        self._tools = tuple(tools)
        self._index: ToolIndex | None = None
        self._lock = threading.Lock()

    def warm(self) -> ToolIndex:
        if self._index is None:
            with self._lock:
                if self._index is None:
                    from gateway.discovery.documents import ToolDocument
                    from gateway.discovery.index import ToolIndex

                    self._index = ToolIndex.build([ToolDocument.from_tool(tool) for tool in self._tools])
        return self._index

    def search(self, query: str, limit: int, *, allowed: Callable[[int], bool] | None = None) -> list[SearchHit]:
        return self.warm().search(query, limit, allowed=allowed)

    def __len__(self) -> int:
        return len(self._tools)


def build_catalog(key: str | None, path: str, name: str, instructions: str | None, tools: Mapping[str, ToolSpec],
                  discovery: Discovery) -> Catalog:
    if discovery.mode == "flat":
        return Catalog(key, path, name, instructions, tools, discovery)
    names = tuple(tools)
    return Catalog(key, path, name, instructions, tools, discovery, LazyIndex([tools[n] for n in names]), names)


def build_catalogs(tools: Mapping[str, ToolSpec], toolsets: Sequence[Toolset], *, path: str, name: str,
                   instructions: str | None, settings: DiscoverySettings) -> tuple[Catalog, ...]:
    """The main endpoint's catalog, then one per toolset at `<path>/<key>`."""
    catalogs = [build_catalog(None, path, name, instructions, tools,
                              choose_discovery(settings.mode, len(tools), settings.max_flat_tools))]
    for toolset in toolsets:
        chosen = {n: tools[n] for n in toolset.tools}
        discovery = choose_discovery(toolset.discovery or settings.mode, len(chosen), settings.max_flat_tools)
        catalogs.append(build_catalog(toolset.key, f"{path.rstrip('/')}/{toolset.key}",
                                      toolset.name or f"{name} ({toolset.key})",
                                      toolset.instructions or instructions, chosen, discovery))
    return tuple(catalogs)
