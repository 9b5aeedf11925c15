"""Offline evaluation of tool search: recall@1, recall@5 and MRR per kind of request, and the index's costs.

    .venv/bin/python bench/discovery_offline.py [--queries ../shared/discovery/queries.jsonl] [--verbose]

Each line of the queries file is {"spec": path under the specs folder, "query": ..., "expect": ["METHOD /path",
...], "kind": "direct" | "indirect" | "paraphrase"}. Every signal set is scored over the same tools: lexical
alone, semantic alone, both. The costs are measured on the largest spec (model load once, index build,
query latency over 1,000 tools, resident memory the model adds).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from gateway.config import config_from_args
from gateway.discovery.documents import ToolDocument
from gateway.discovery.index import SIGNALS, ToolIndex
from gateway.runtime import load_gateway

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
KINDS = ("direct", "indirect", "paraphrase")
SIGNAL_SETS: tuple[tuple[str, ...], ...] = (("lexical",), ("semantic",), SIGNALS)


def load_tools(spec: Path) -> tuple[list[ToolDocument], list[str]]:
    """The documents of a spec's tools and their routes ("METHOD /path"), in listing order."""
    tools = load_gateway(config_from_args(spec=str(spec), upstream="http://127.0.0.1:1")).tools.values()
    routes = [f"{t.operation.method.upper()} {t.operation.path}" for t in tools]
    return [ToolDocument.from_tool(t) for t in tools], routes


def rank_of(index: ToolIndex, routes: Sequence[str], query: str, expect: Sequence[str]) -> int | None:
    """0-based rank of the first expected operation, None when it is not found at all."""
    hits = index.search(query, len(routes))
    return next((rank for rank, hit in enumerate(hits) if routes[hit.index] in expect), None)


def summary(ranks: Sequence[int | None]) -> str:
    n = len(ranks) or 1
    at1 = sum(r is not None and r < 1 for r in ranks) / n
    at5 = sum(r is not None and r < 5 for r in ranks) / n
    mrr = sum(1 / (r + 1) for r in ranks if r is not None) / n
    return f"R@1 {at1:.2f}  R@5 {at5:.2f}  MRR {mrr:.2f}  (n={len(ranks)})"


def evaluate(queries: list[dict], specs: Path, verbose: bool) -> None:
    by_spec: dict[str, list[dict]] = defaultdict(list)
    for q in queries:
        by_spec[q["spec"]].append(q)
    ranks: dict[tuple[str, ...], dict[str, list[int | None]]] = {s: defaultdict(list) for s in SIGNAL_SETS}
    for spec, spec_queries in sorted(by_spec.items()):
        documents, routes = load_tools(specs / spec)
        for signals in SIGNAL_SETS:
            index = ToolIndex.build(documents, signals=signals)
            for q in spec_queries:
                rank = rank_of(index, routes, q["query"], q["expect"])
                ranks[signals][q["kind"]].append(rank)
                ranks[signals]["all"].append(rank)
                if verbose and signals == SIGNALS and (rank is None or rank >= 5):
                    print(f"  miss ({rank}) {spec}: {q['query']}")
    for signals, per_kind in ranks.items():
        print("+".join(signals))
        for kind in (*KINDS, "all"):
            print(f"  {kind:<11} {summary(per_kind[kind])}")


MODEL_LOAD = """
import time
from gateway.discovery import semantic
def rss(): return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
before, started = rss(), time.perf_counter()
semantic.load_model()
print(f"model load (fresh process): {1000 * (time.perf_counter() - started):.0f} ms, RSS +{rss() - before:.0f} MiB")
"""


def measure(specs: Path) -> None:
    """Costs on GitHub's spec; the model load in a fresh process (loading the gateway has already loaded it)."""
    subprocess.run([sys.executable, "-c", MODEL_LOAD], check=True, cwd=ROOT)
    documents, _ = load_tools(specs / "github--api.github.com.json")
    for signals in SIGNAL_SETS:
        builds = []
        for _ in range(5):
            started = time.perf_counter()
            ToolIndex.build(documents, signals=signals)
            builds.append(time.perf_counter() - started)
        print(f"build over {len(documents)} tools ({'+'.join(signals)}): {1000 * min(builds):.0f} ms (best of 5)")
    thousand = (documents * 2)[:1000]
    index = ToolIndex.build(thousand)
    requests = ["list the open pull requests", "add a label to an issue", "who starred this repository",
                "delete a webhook", "cancel the running workflow", "invite someone to the organization"]
    latencies = []
    for _ in range(50):
        for query in requests:
            started = time.perf_counter()
            index.search(query, 10)
            latencies.append(time.perf_counter() - started)
    latencies.sort()
    print(f"search over 1000 tools: median {1000 * statistics.median(latencies):.2f} ms, "
          f"p95 {1000 * latencies[int(0.95 * len(latencies))]:.2f} ms")


# (name, weights): each set's weights were fixed before scoring, the existing lexical/semantic split kept
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=Path, default=SHARED / "discovery" / "queries.jsonl")
    parser.add_argument("--specs", type=Path, default=SHARED / "specs")
    parser.add_argument("--verbose", action="store_true", help="print the requests missed in the top 5")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    queries = [json.loads(line) for line in args.queries.read_text(encoding="utf-8").splitlines() if line.strip()]
    measure(args.specs)
    evaluate(queries, args.specs, args.verbose)


if __name__ == "__main__":
    main()
