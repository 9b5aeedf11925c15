"""Tool search quality, measured as a model meets it: through a served gateway and the SDK's `Client`.

    .venv/bin/python bench/discovery.py [--queries ../shared/discovery/queries.jsonl] [--write-results]

Each spec named in the queries file is served in search mode (no mapping, a dead upstream: nothing is
called) and every query is sent to `search_tools` (limit 20) over Streamable HTTP. Printed per spec, per
kind of request and overall: recall@1, recall@5 and MRR (over the top 20), and the `tools/list` bytes in
flat and in search mode. `bench/discovery_offline.py` breaks the ranking down by signal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import httpx2
from mcp import Client
from report import machine_text_short, write_section

from adapters.devauth.server import ServerThread
from gateway.config import config_from_args
from gateway.runtime import load_gateway
from gateway.server import create_app

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
KINDS = ("direct", "indirect", "paraphrase")
TARGETS = {"R@1": 0.60, "R@5": 0.85}
DEAD_UPSTREAM = "http://127.0.0.1:9"
LIMIT = 20


def figures(ranks: Sequence[int | None]) -> dict[str, float]:
    """recall@1, recall@5 and MRR of 0-based ranks (None: not in the top LIMIT)."""
    n = len(ranks) or 1
    return {"R@1": sum(r == 0 for r in ranks) / n,
            "R@5": sum(r is not None and r < 5 for r in ranks) / n,
            "MRR": sum(1 / (r + 1) for r in ranks if r is not None) / n}


async def listing_bytes(url: str) -> int:
    """The bytes of a `tools/list` answer on the wire (stateless JSON, protocol 2025-11-25)."""
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    async with httpx2.AsyncClient(timeout=60) as http:
        answer = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=headers)
    answer.raise_for_status()
    return len(answer.content)


async def measure_spec(spec: Path, queries: list[dict]) -> tuple[list[tuple[dict, int | None]], dict[str, int]]:
    sizes = {}
    ranks = []
    for mode in ("flat", "search"):
        gw = load_gateway(config_from_args(spec=str(spec), upstream=DEAD_UPSTREAM, discovery=mode))
        routes = {t.name: f"{t.operation.method.upper()} {t.operation.path}" for t in gw.tools.values()}
        with ServerThread(create_app(gw)) as server:
            url = f"{server.url}/mcp"
            sizes[mode] = await listing_bytes(url)
            if mode == "search":
                async with Client(url) as client:
                    for query in queries:
                        result = await client.call_tool("search_tools", {"query": query["query"], "limit": LIMIT})
                        found = [routes[t["name"]] for t in result.structured_content["tools"]]
                        rank = next((i for i, route in enumerate(found) if route in query["expect"]), None)
                        ranks.append((query, rank))
    return ranks, sizes


def table(rows: list[tuple[str, dict[str, float], int]]) -> list[str]:
    lines = ["| requests | n | recall@1 | recall@5 | MRR |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {name} | {n} | {f['R@1']:.0%} | {f['R@5']:.0%} | {f['MRR']:.2f} |" for name, f, n in rows]
    return lines


async def run(queries: list[dict], specs: Path) -> list[str]:
    by_spec: dict[str, list[dict]] = defaultdict(list)
    for query in queries:
        by_spec[query["spec"]].append(query)
    every: list[tuple[dict, int | None]] = []
    spec_rows, size_rows = [], []
    for name, spec_queries in sorted(by_spec.items()):
        ranks, sizes = await measure_spec(specs / name, spec_queries)
        every += ranks
        spec_rows.append((name, figures([r for _, r in ranks]), len(ranks)))
        size_rows.append(f"| {name} | {sizes['flat']:,} | {sizes['search']:,} |")
    kind_rows = []
    for kind in KINDS:
        ranks = [r for q, r in every if q["kind"] == kind]
        kind_rows.append((kind, figures(ranks), len(ranks)))
    overall = figures([r for _, r in every])
    met = all(f[k] >= target for _, f, _ in kind_rows for k, target in TARGETS.items())
    lines = ["By kind of request (targets: recall@5 ≥ 85% and recall@1 ≥ 60% for each kind):", "",
             *table([*kind_rows, ("all", overall, len(every))]), "", f"Targets met: {'yes' if met else 'no'}.", "",
             "By spec:", "", *table(spec_rows), "",
             "`tools/list` bytes (protocol 2025-11-25, no mapping):", "", "| spec | flat | search |", "|---|---:|---:|",
             *size_rows]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=Path, default=SHARED / "discovery" / "queries.jsonl")
    parser.add_argument("--specs", type=Path, default=SHARED / "specs")
    parser.add_argument("--write-results", action="store_true", help="replace the section in bench/RESULTS.md")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    queries = [json.loads(line) for line in args.queries.read_text(encoding="utf-8").splitlines() if line.strip()]
    lines = asyncio.run(run(queries, args.specs))
    text = "\n".join([f"Measured {date.today()}, {len(queries)} requests from {args.queries.name}, on:", "",
                      machine_text_short(), "", *lines])
    print(text)
    if args.write_results:
        write_section(ROOT / "bench" / "RESULTS.md", "Tool search", text)


if __name__ == "__main__":
    main()
