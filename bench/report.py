"""Turn the runs into the figures, the targets and the markdown table (and describe the machine).

The table has one row per figure and one column per server, then the gateway's ratio to FastMCP, the
target and whether the gateway meets it. Targets are checked against the "gateway" column, except the
JWT cost, which only the "gateway + JWT" column has.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadgen import RunResult

ROWS = {  # key -> column heading, in table order
    "nginx": "nginx (direct)",
    "fastmcp": "FastMCP",
    "gateway": "gateway",
    "gateway_jwt": "gateway + JWT",
    "gateway_2w": "gateway, 2 workers",
}
SCENARIOS = ("small_c1", "small_c32", "catalog_c32")


@dataclass
class RowResult:
    """Everything measured for one server. `status` is "ok", or why the column shows n/a."""

    status: str = "ok"
    runs: dict[str, RunResult] = field(default_factory=dict)  # per scenario: the median round's run
    rounds: dict[str, list[RunResult]] = field(default_factory=dict)  # per scenario: every round's run
    cold_start_s: float | None = None  # search mode (FastMCP: its only mode, listing every tool)
    rss_cold_mb: float | None = None  # search mode, after the first search answered (the index built)
    first_search_s: float | None = None  # spawn to the first search_tools answer
    cold_start_flat_s: float | None = None
    rss_flat_mb: float | None = None
    import_floor_s: float | None = None  # the MCP SDK's own import, in a fresh process of the server's Python
    import_floor_mb: float | None = None
    rss_load_mb: float | None = None
    cold_start_note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "runs": {k: v.as_dict() for k, v in self.runs.items()},
                "rounds": {k: [run.as_dict() for run in v] for k, v in self.rounds.items()},
                "cold_start_s": _round(self.cold_start_s, 3), "rss_cold_mb": _round(self.rss_cold_mb, 1),
                "first_search_s": _round(self.first_search_s, 3),
                "cold_start_flat_s": _round(self.cold_start_flat_s, 3), "rss_flat_mb": _round(self.rss_flat_mb, 1),
                "import_floor_s": _round(self.import_floor_s, 3), "import_floor_mb": _round(self.import_floor_mb, 1),
                "rss_after_load_mb": _round(self.rss_load_mb, 1), "cold_start_note": self.cold_start_note}


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


Results = dict[str, RowResult]
Getter = Callable[[Results, str], float | None]


def _run(scenario: str, attr: str) -> Getter:
    def get(results: Results, row: str) -> float | None:
        run = results[row].runs.get(scenario)
        return None if run is None else getattr(run, attr)
    return get


def _ms(scenario: str, attr: str) -> Getter:
    def get(results: Results, row: str) -> float | None:
        value = _run(scenario, attr)(results, row)
        return None if value is None else value / 1000
    return get


def _p50_overhead(results: Results, row: str) -> float | None:
    """The server's p50 at c=1 minus the direct call's: what putting the MCP server in the path costs."""
    own, floor = _ms("small_c1", "p50_us")(results, row), _ms("small_c1", "p50_us")(results, "nginx")
    return None if row == "nginx" or own is None or floor is None else own - floor


def _jwt_cost(results: Results, row: str) -> float | None:
    """Throughput lost by checking a JWT on every call: 1 - (gateway + JWT) / gateway calls/s at c=32."""
    if row != "gateway_jwt":
        return None
    with_auth, without = _run("small_c32", "calls_per_s")(results, row), _run("small_c32", "calls_per_s")(
        results, "gateway")
    return None if not with_auth or not without else (1 - with_auth / without) * 100


def _attr(name: str) -> Getter:
    return lambda results, row: getattr(results[row], name)


def _failed(results: Results, row: str) -> float | None:
    """Failures over every round, not just the median ones: none may hide."""
    rounds = results[row].rounds
    return float(sum(run.failed for runs in rounds.values() for run in runs)) if rounds else None


@dataclass
class Figure:
    """One table row: how to read it per server, how to print it, and the target (a check on the values)."""

    key: str
    label: str
    unit: str
    get: Getter
    digits: int
    target: str = "—"
    check: Callable[[dict[str, float | None]], bool | None] | None = None


def _at_most(limit: float, row: str = "gateway") -> Callable[[dict[str, float | None]], bool | None]:
    return lambda v: None if v.get(row) is None else v[row] <= limit  # type: ignore[operator]


def _times_fastmcp(factor: float) -> Callable[[dict[str, float | None]], bool | None]:
    def check(v: dict[str, float | None]) -> bool | None:
        ours, peer = v.get("gateway"), v.get("fastmcp")
        return None if ours is None or not peer else ours >= factor * peer
    return check


FIGURES = [
    Figure("calls_c1", "get_pet throughput, c=1", "calls/s", _run("small_c1", "calls_per_s"), 0),
    Figure("calls_c32", "get_pet throughput, c=32", "calls/s", _run("small_c32", "calls_per_s"), 0,
           "≥ 8x FastMCP", _times_fastmcp(8)),
    Figure("p50_c1", "p50 latency, c=1", "ms", _ms("small_c1", "p50_us"), 3),
    Figure("p99_c1", "p99 latency, c=1", "ms", _ms("small_c1", "p99_us"), 2, "≤ 3 ms", _at_most(3)),
    Figure("p50_overhead", "p50 overhead over the direct call, c=1", "ms", _p50_overhead, 3, "≤ 0.4 ms",
           _at_most(0.4)),
    Figure("p50_c32", "p50 latency, c=32", "ms", _ms("small_c32", "p50_us"), 1),
    Figure("p99_c32", "p99 latency, c=32", "ms", _ms("small_c32", "p99_us"), 1),
    Figure("cpu_per_call", "CPU per call, c=32", "µs", _run("small_c32", "cpu_us_per_call"), 0, "≤ 400 µs",
           _at_most(400)),
    Figure("catalog_c32", "list_catalog (50 KB) throughput, c=32", "calls/s", _run("catalog_c32", "calls_per_s"), 0,
           "≥ 6x FastMCP", _times_fastmcp(6)),
    Figure("jwt_cost", "JWT auth throughput cost, c=32", "%", _jwt_cost, 1, "≤ 15 % (gateway + JWT)",
           _at_most(15, "gateway_jwt")),
    Figure("cold_start_flat", "cold start, GitHub spec, flat (spawn to tools/list)", "s", _attr("cold_start_flat_s"),
           2, "≤ 0.6 s", _at_most(0.6)),
    Figure("rss_flat", "peak RSS, GitHub spec, flat", "MB", _attr("rss_flat_mb"), 0, "≤ 100 MB", _at_most(100)),
    Figure("cold_start", "cold start, GitHub spec, search (spawn to tools/list)", "s", _attr("cold_start_s"), 2,
           "≤ 0.6 s", _at_most(0.6)),
    Figure("first_search", "spawn to the first search_tools answer, GitHub spec", "s", _attr("first_search_s"), 2),
    Figure("rss_cold", "peak RSS, GitHub spec, search (index built)", "MB", _attr("rss_cold_mb"), 0, "≤ 100 MB",
           _at_most(100)),
    Figure("import_floor", "the MCP SDK's import alone (floor of any SDK server)", "s", _attr("import_floor_s"), 2),
    Figure("import_floor_rss", "peak RSS of the MCP SDK's import alone", "MB", _attr("import_floor_mb"), 0),
    Figure("rss_load", "peak RSS after the load runs", "MB", _attr("rss_load_mb"), 0, "≤ 100 MB", _at_most(100)),
    Figure("failed", "failed answers (all load runs)", "", _failed, 0),
]


def figure_values(results: Results) -> list[dict[str, Any]]:
    """Every figure for every server, with the gateway ÷ FastMCP ratio and the target verdict."""
    table = []
    for fig in FIGURES:
        values = {row: (fig.get(results, row) if results[row].status == "ok" else None) for row in ROWS}
        ours, peer = values.get("gateway"), values.get("fastmcp")
        ratio = ours / peer if ours is not None and peer else None
        met = fig.check(values) if fig.check else None
        table.append({"key": fig.key, "label": fig.label, "unit": fig.unit, "values": values, "digits": fig.digits,
                      "ratio_to_fastmcp": ratio, "target": fig.target, "met": met})
    return table


def _cell(value: float | None, digits: int, available: bool) -> str:
    if not available:
        return "n/a"
    return "—" if value is None else f"{value:,.{digits}f}"


def markdown_table(results: Results) -> str:
    """The one table: figures down, servers across, then ratio, target, verdict."""
    header = ["figure", *ROWS.values(), "gateway ÷ FastMCP", "target", "met?"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for fig in figure_values(results):
        label = f"{fig['label']} ({fig['unit']})" if fig["unit"] else fig["label"]
        cells = [_cell(fig["values"][row], fig["digits"], results[row].status == "ok") for row in ROWS]
        ratio = "—" if fig["ratio_to_fastmcp"] is None else f"{fig['ratio_to_fastmcp']:.2f}x"
        met = {True: "met", False: "not met", None: "—" if fig["target"] == "—" else "n/a"}[fig["met"]]
        lines.append("| " + " | ".join([label, *cells, ratio, fig["target"], met]) + " |")
    notes = [f"- {ROWS[row]}: n/a ({result.status})" for row, result in results.items() if result.status != "ok"]
    notes += [f"- {ROWS[row]}: {result.cold_start_note}" for row, result in results.items() if result.cold_start_note]
    return "\n".join(lines + (["", *notes] if notes else []))


# -- the machine ---------------------------------------------------------------------------------------------

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


PACKAGES = ("mcp", "fastmcp", "uvicorn", "httpx2", "starlette")
_VERSIONS_SNIPPET = (
    "import importlib.metadata as m, json, platform\n"
    "def v(name):\n"
    "    try:\n"
    "        return m.version(name)\n"
    "    except m.PackageNotFoundError:\n"
    "        return None\n"
    f"print(json.dumps({{'python': platform.python_version(), **{{n: v(n) for n in {PACKAGES!r}}}}}))\n"
)


def package_versions(python: str) -> dict[str, str | None]:
    """The Python and package versions inside one venv (the gateway's and FastMCP's differ)."""
    out = subprocess.run([python, "-c", _VERSIONS_SNIPPET], capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr.strip()[-300:]}


def _tool_version(argv: list[str]) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def machine(gateway_python: str, fastmcp_python: str, nginx: str, wrk: str) -> dict[str, Any]:
    """What the numbers were measured on: they only compare within one machine and one run."""
    return {
        "cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gb": round(_mem_total_gb(), 1),
        "kernel": f"{platform.system()} {platform.release()}", "harness_python": platform.python_version(),
        "gateway_venv": package_versions(gateway_python), "fastmcp_venv": package_versions(fastmcp_python),
        "nginx": _tool_version([nginx, "-v"]), "wrk": _tool_version([wrk, "-v"]),
    }


def machine_text_short() -> str:
    """The machine without the load-test tools (for benchmarks that run none)."""
    return (f"- CPU: {_cpu_model()}, {os.cpu_count()} cores; memory {round(_mem_total_gb(), 1)} GB; "
            f"{platform.system()} {platform.release()}; Python {platform.python_version()}")


def machine_text(info: dict[str, Any]) -> str:
    def versions(venv: dict[str, Any]) -> str:
        return ", ".join(f"{name} {value}" for name, value in venv.items() if value)

    return "\n".join([
        f"- CPU: {info['cpu']}, {info['cores']} cores; memory {info['memory_gb']} GB; {info['kernel']}",
        f"- gateway venv: {versions(info['gateway_venv'])}",
        f"- FastMCP venv: {versions(info['fastmcp_venv'])}",
        f"- {info['nginx']}; {info['wrk'].split(' Copyright')[0]}; harness Python {info['harness_python']}",
    ])


def write_section(path: Path, title: str, body: str) -> None:
    """Replace (or add) the `## title` section of RESULTS.md between its markers, keeping the other sections
    (bench/run.py and bench/discovery.py each write their own)."""
    start, end = f"<!-- {title}: start -->", f"<!-- {title}: end -->"
    section = f"{start}\n## {title}\n\n{body}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    if start in text and end in text:
        text = text[:text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")
