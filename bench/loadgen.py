"""Run one load scenario with wrk and turn its report into numbers.

wrk drives the load from C (so the load generator is not the bottleneck on a small machine) and
bench/mcp_call.lua checks every answer; calls/s counts only the answers that passed the check.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from processes import Processes, tree_cpu_seconds

LUA_SCRIPT = Path(__file__).resolve().parent / "mcp_call.lua"


@dataclass
class Scenario:
    """What one wrk run does: which tool, at what concurrency, with how many wrk threads, how long."""

    tool: str  # "get_pet" or "list_catalog"
    connections: int
    threads: int
    duration: float


@dataclass
class Target:
    """Where the load goes: "mcp" (a tools/call endpoint) or "rest" (the backend itself)."""

    mode: str
    url: str
    pid: int  # root of the process tree whose CPU the run is charged to
    marker: str  # what a complete catalog answer contains
    tokens_file: Path | None = None


@dataclass
class RunResult:
    """One scenario's figures. `ok_calls` are answers that passed the check; latencies are wrk's, in µs."""

    requests: int
    failed: int
    seconds: float
    p50_us: float
    p99_us: float
    cpu_seconds: float
    sample_failure: str

    @property
    def ok_calls(self) -> int:
        return max(self.requests - self.failed, 0)

    @property
    def calls_per_s(self) -> float:
        return self.ok_calls / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_call(self) -> float | None:
        return self.cpu_seconds * 1e6 / self.ok_calls if self.ok_calls else None

    def as_dict(self) -> dict[str, object]:
        return {"requests": self.requests, "failed": self.failed, "seconds": round(self.seconds, 3),
                "calls_per_s": round(self.calls_per_s, 1), "p50_ms": round(self.p50_us / 1000, 3),
                "p99_ms": round(self.p99_us / 1000, 3), "cpu_seconds": round(self.cpu_seconds, 3),
                "cpu_us_per_call": None if self.cpu_us_per_call is None else round(self.cpu_us_per_call, 1),
                "sample_failure": self.sample_failure}


def wrk_command(wrk: str, scenario: Scenario, target: Target) -> list[str]:
    """The wrk argv: a generous timeout so that a slow server's answers are measured, not dropped."""
    url = target.url if target.mode == "mcp" else target.url + "/"
    return [wrk, f"-t{scenario.threads}", f"-c{scenario.connections}", f"-d{scenario.duration:g}s", "--timeout", "30s",
            "-s", str(LUA_SCRIPT), url, "--", target.mode, scenario.tool, target.marker,
            str(target.tokens_file or "")]


def parse_report(stdout: str) -> dict[str, object]:
    """The `BENCH_JSON` line mcp_call.lua's done() prints."""
    for line in stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line.removeprefix("BENCH_JSON "))
    raise RuntimeError(f"wrk printed no BENCH_JSON line:\n{stdout[-2000:]}")


def run(procs: Processes, wrk: str, scenario: Scenario, target: Target) -> RunResult:
    """Run wrk once, charging the target process tree's CPU over the run to it."""
    cpu_before = tree_cpu_seconds(target.pid)
    loader = procs.start("wrk", wrk_command(wrk, scenario, target), stdout=subprocess.PIPE)
    try:
        stdout, _ = loader.proc.communicate(timeout=scenario.duration + 120)
    finally:
        procs.stop(loader)
    cpu = tree_cpu_seconds(target.pid) - cpu_before
    if loader.proc.returncode != 0:
        raise loader.fail(f"wrk exited with status {loader.proc.returncode}")
    report = parse_report(stdout.decode(errors="replace"))
    socket_errors = sum(int(report[k]) for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return RunResult(requests=int(report["requests"]), failed=int(report["check_failures"]) + socket_errors,
                     seconds=int(report["duration_us"]) / 1e6, p50_us=float(report["p50_us"]),
                     p99_us=float(report["p99_us"]), cpu_seconds=cpu, sample_failure=str(report["sample_failure"]))
