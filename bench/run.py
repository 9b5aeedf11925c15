#!/usr/bin/env python3
"""Benchmark the gateway against FastMCP's OpenAPI mode and the direct backend call, in one run.

    python3 bench/run.py                 # the real run: 10 s per scenario, about 3 minutes
    python3 bench/run.py --quick         # a smoke run: 3 s per scenario
    python3 bench/run.py --write-results # also write our section of bench/RESULTS.md (machine, date, table)

Needs only the standard library to start: it installs nginx and wrk with apt-get when they are missing,
creates FastMCP's own venv under ~/.cache/semantic-adapter-gateway/bench/, and uses the checkout's
.venv (or a `gateway` on PATH) for the gateway. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NoReturn

from backend import SPEC_PATH, start_nginx, write_spec
from loadgen import RunResult, Scenario, Target, run
from processes import Processes, Server, StartError, free_port, mcp_request, tools_listed, tree_peak_rss_mb, wait_until
from report import ROWS, SCENARIOS, RowResult, figure_values, machine, machine_text, markdown_table, write_section

BENCH = Path(__file__).resolve().parent
CHECKOUT = BENCH.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "semantic-adapter-gateway" / "bench"
GITHUB_SPEC = CHECKOUT.parent / "shared" / "specs" / "github--api.github.com.json"
FASTMCP_REQUIREMENT = "fastmcp<4.1.6"  # 4.1.6 does not install here; 4.1.2+ do
START_TIMEOUT = 180.0
RESULTS_SECTION = "Load, latency and cold start"


@dataclass
class Toolchain:
    """The programs a run uses, resolved (and installed when missing) before anything starts."""

    nginx: str
    wrk: str
    gateway: list[str]
    gateway_python: str
    fastmcp_python: str
    gateway_workers: bool


def say(message: str) -> None:
    """Progress goes to stderr so that stdout holds just the machine description and the table."""
    print(message, file=sys.stderr, flush=True)


# -- setup ---------------------------------------------------------------------------------------------------

def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")


def ensure_system_tools() -> tuple[str, str]:
    """nginx (the fixed-answer backend) and wrk (the load generator): Debian's packages, apt-installed if absent."""
    missing = [name for name in ("nginx", "wrk") if _which(name) is None]
    if missing:
        if os.geteuid() != 0 or _which("apt-get") is None:
            sys.exit(f"bench: {' and '.join(missing)} missing; install them (apt-get install -y nginx wrk)")
        say(f"installing {' '.join(missing)} with apt-get ...")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "nginx", "wrk"], check=True, env=env)
    nginx, wrk = _which("nginx"), _which("wrk")
    assert nginx and wrk
    return nginx, wrk


def ensure_fastmcp_venv(venv: Path) -> str:
    """FastMCP in a venv of its own (its pins must not move the gateway's); created once, then reused."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import fastmcp, httpx2, yaml"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return str(python)
    say(f"creating FastMCP's venv at {venv} (pip install '{FASTMCP_REQUIREMENT}') ...")
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", FASTMCP_REQUIREMENT, "pyyaml"], check=True)
    return str(python)


def find_gateway(override: str | None) -> tuple[list[str], str]:
    """The gateway command and the Python it runs on: --gateway, the checkout's .venv, a `gateway` on PATH, or
    (fresh checkout) a new .venv with the checkout installed, as the README's quick start does."""
    candidates = [Path(override)] if override else [CHECKOUT / ".venv" / "bin" / "gateway"]
    if not override and shutil.which("gateway"):
        candidates.append(Path(shutil.which("gateway") or ""))
    for command in candidates:
        if command.is_file():
            return [str(command)], _python_of(command)
    if override:
        sys.exit(f"bench: --gateway {override}: no such file")
    venv = CHECKOUT / ".venv"
    say(f"no gateway found: creating {venv} with the checkout installed ...")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-e", str(CHECKOUT)], check=True)
    return [str(venv / "bin" / "gateway")], str(venv / "bin" / "python")


def _python_of(script: Path) -> str:
    """The interpreter a console script runs on (its sibling `python`, else its shebang)."""
    sibling = script.parent / "python"
    if sibling.exists():
        return str(sibling)
    first = script.read_text(errors="replace").splitlines()[0]
    return first[2:].strip() if first.startswith("#!") else sys.executable


def gateway_has_workers(gateway: list[str]) -> bool:
    """Whether `gateway serve` takes --workers (the 2-worker column is n/a until it does)."""
    out = subprocess.run([*gateway, "serve", "--help"], capture_output=True, text=True, timeout=60)
    return "--workers" in out.stdout


def toolchain(args: argparse.Namespace) -> Toolchain:
    nginx, wrk = ensure_system_tools()
    gateway, gateway_python = find_gateway(args.gateway)
    # An installed gateway (pip, the image) has its modules compiled; the checkout's editable install compiles
    # them on each start when the environment forbids writing bytecode (PYTHONDONTWRITEBYTECODE). Compile them
    # once, so cold starts measure what a deployment runs.
    subprocess.run([gateway_python, "-m", "compileall", "-q", str(CHECKOUT / "gateway"), str(CHECKOUT / "widgets")],
                   check=True)
    return Toolchain(nginx=nginx, wrk=wrk, gateway=gateway, gateway_python=gateway_python,
                     fastmcp_python=ensure_fastmcp_venv(Path(args.fastmcp_venv)),
                     gateway_workers=gateway_has_workers(gateway))


# -- servers -------------------------------------------------------------------------------------------------

@dataclass
class Launch:
    """How to start one server on a given port (and the token its readiness probe needs, if any)."""

    name: str
    argv: Callable[[str, int], list[str]]  # (spec path, port) -> argv
    token: str | None = None


def launches(tools: Toolchain, upstream: str, auth: tuple[str, str, int] | None) -> dict[str, Launch]:
    """The MCP servers of the table. `auth` is (issuer, a token, the port the JWT gateway must use)."""
    def gateway(*extra: str) -> Callable[[str, int], list[str]]:
        return lambda spec, port: [*tools.gateway, "serve", "--spec", spec, "--upstream", upstream,
                                   "--port", str(port), *extra]

    def fastmcp(spec: str, port: int) -> list[str]:
        return [tools.fastmcp_python, str(BENCH / "fastmcp_peer.py"), "--spec", spec, "--upstream", upstream,
                "--port", str(port)]

    servers = {"fastmcp": Launch("fastmcp", fastmcp), "gateway": Launch("gateway", gateway())}
    if auth is not None:
        issuer, token, port = auth
        resource = f"http://127.0.0.1:{port}/mcp"
        servers["gateway_jwt"] = Launch("gateway_jwt", gateway("--auth-issuer", issuer, "--resource-url", resource),
                                        token=token)
    if tools.gateway_workers:
        servers["gateway_2w"] = Launch("gateway_2w", gateway("--workers", "2"))
    return servers


def start_mcp(procs: Processes, launch: Launch, spec: Path, port: int | None = None,
              expect: str = "get_pet") -> tuple[Server, float]:
    """Start a server and poll tools/list until it answers; returns it and the seconds from spawn to answer."""
    port = port or free_port()
    started = time.monotonic()
    server = procs.start(launch.name, launch.argv(str(spec), port))
    server.url = f"http://127.0.0.1:{port}/mcp"
    wait_until(server, tools_listed(server.url, launch.token, expect), timeout=START_TIMEOUT)
    return server, time.monotonic() - started


def start_auth(procs: Processes, tools: Toolchain, workdir: Path) -> tuple[str, Path, int]:
    """The local authorization server, with tokens minted for the JWT gateway's resource URL (port fixed now)."""
    port = free_port()
    server = procs.start("authserver", [tools.gateway_python, str(BENCH / "authserver.py"), "--audience",
                                        f"http://127.0.0.1:{port}/mcp"], stdout=subprocess.PIPE)
    assert server.proc.stdout is not None
    line = server.proc.stdout.readline()  # blocks until it prints, or EOF when it dies
    if not line:
        server.proc.wait(10)
        raise server.fail(f"exited with status {server.proc.returncode} before printing its tokens")
    data = json.loads(line)
    tokens_file = workdir / "tokens.txt"
    tokens_file.write_text("\n".join(data["tokens"]) + "\n")
    return data["issuer"], tokens_file, port


def refuses_anonymous(url: str) -> bool:
    """Whether a tools/call without a token gets 401: the JWT column must measure checked tokens, not a
    gateway that ignores them."""
    try:
        mcp_request(url, "tools/call", {"name": "get_pet", "arguments": {"id": 1}})
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    return False


# -- phases --------------------------------------------------------------------------------------------------

IMPORT_FLOORS = {"fastmcp": "import fastmcp", "gateway": "import mcp.server.streamable_http, mcp_types"}
"""What each server cannot start without: its MCP framework's import, timed in a fresh process."""
FLOOR_PROBE = ("import time, sys; t = time.perf_counter(); exec(sys.argv[1]); dt = time.perf_counter() - t; "
               "print(dt, next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))")
FIRST_SEARCH = {"name": "search_tools", "arguments": {"query": "list the open issues of a repository"}}


def cold_starts(procs: Processes, servers: dict[str, Launch], results: dict[str, RowResult], runs: int,
                tools: Toolchain) -> None:
    """Spawn → first tools/list answer on GitHub's spec (723 tools), then VmHWM; median of `runs`. The gateway
    starts once per discovery mode: flat, and search, whose peak is read after the first search (the index is
    built in the background once the gateway serves). FastMCP has one mode, which lists every tool."""
    for row, code in IMPORT_FLOORS.items():
        python = tools.fastmcp_python if row == "fastmcp" else tools.gateway_python
        floors = [subprocess.run([python, "-c", FLOOR_PROBE, code], capture_output=True, text=True, check=True)
                  .stdout.split() for _ in range(runs)]
        results[row].import_floor_s = statistics.median(float(seconds) for seconds, _ in floors)
        results[row].import_floor_mb = statistics.median(int(kb) / 1024 for _, kb in floors)
        say(f"import floor {row:11} {results[row].import_floor_s:6.2f} s  peak RSS "
            f"{results[row].import_floor_mb:5.0f} MB  ({code})")
    if not GITHUB_SPEC.exists():
        for row in ("fastmcp", "gateway", "gateway_2w"):
            if row in servers:
                results[row].cold_start_note = f"cold start skipped: {GITHUB_SPEC} is missing"
        return
    for row in ("fastmcp", "gateway", "gateway_2w"):
        if row not in servers:
            continue
        try:
            if row == "fastmcp":
                seconds, peak, _ = _cold_start(procs, servers[row], runs)
                results[row].cold_start_s = results[row].cold_start_flat_s = seconds
                results[row].rss_cold_mb = results[row].rss_flat_mb = peak
            else:
                flat = _with_flags(servers[row], "--discovery", "flat")
                results[row].cold_start_flat_s, results[row].rss_flat_mb, _ = _cold_start(procs, flat, runs)
                search = _with_flags(servers[row], "--discovery", "search")
                results[row].cold_start_s, results[row].rss_cold_mb, results[row].first_search_s = _cold_start(
                    procs, search, runs, search_first=True)
        except StartError as exc:
            results[row].cold_start_note = f"cold start failed: {str(exc).splitlines()[0]}"
            say(str(exc))
            continue
        r = results[row]
        say(f"cold start  {row:12} flat {r.cold_start_flat_s:5.2f} s {r.rss_flat_mb:4.0f} MB; search "
            f"{r.cold_start_s:5.2f} s {r.rss_cold_mb:4.0f} MB"
            + (f", first search at {r.first_search_s:5.2f} s" if r.first_search_s is not None else ""))


def _with_flags(launch: Launch, *flags: str) -> Launch:
    return replace(launch, argv=lambda spec, port: [*launch.argv(spec, port), *flags])


def _cold_start(procs: Processes, launch: Launch, runs: int, search_first: bool = False
                ) -> tuple[float, float, float | None]:
    """Medians over `runs` of: spawn to tools/list, peak RSS, and (`search_first`) spawn to a search's answer."""
    times, peaks, searches = [], [], []
    for _ in range(runs):
        started = time.monotonic()
        server, seconds = start_mcp(procs, replace(launch, name=f"{launch.name}-cold"), GITHUB_SPEC, expect="")
        if search_first:
            answer = mcp_request(server.url, "tools/call", FIRST_SEARCH, timeout=120)
            if not answer.get("result", {}).get("structuredContent", {}).get("tools"):
                raise server.fail(f"search_tools found nothing: {str(answer)[:200]}")
            searches.append(time.monotonic() - started)
        peaks.append(tree_peak_rss_mb(server.pid))
        times.append(seconds)
        procs.stop(server)
    return statistics.median(times), statistics.median(peaks), statistics.median(searches) if searches else None


def warm_up(procs: Processes, wrk: str, targets: dict[str, Target], results: dict[str, RowResult],
            seconds: float) -> None:
    """A short load on each tool first (JIT-free Python still fills caches and pools), which doubles as a
    check: a server whose answers fail here gets an n/a column with the reason, not meaningless numbers."""
    for row, target in list(targets.items()):
        for tool in ("get_pet", "list_catalog"):
            result = run(procs, wrk, Scenario(tool, 8, 1, seconds), target)
            if result.failed:
                results[row].status = f"{result.failed} of {result.requests} answers failed the check in the " \
                                      f"warm-up ({tool}); first: {result.sample_failure[:200]}"
                say(f"{row}: {results[row].status}")
                del targets[row]
                break


def load_runs(procs: Processes, wrk: str, targets: dict[str, Target], results: dict[str, RowResult],
              args: argparse.Namespace) -> None:
    """Each scenario on every server back to back (interleaved), so that a noisy minute hits all columns; with
    --rounds N the whole sequence N times, and each figure comes from the round with the median calls/s."""
    scenarios = {"small_c1": Scenario("get_pet", 1, 1, args.duration),
                 "small_c32": Scenario("get_pet", 32, args.c32_threads, args.duration),
                 "catalog_c32": Scenario("list_catalog", 32, args.c32_threads, args.duration)}
    for round_number in range(1, args.rounds + 1):
        for key in SCENARIOS:
            for row, target in targets.items():
                result: RunResult = run(procs, wrk, scenarios[key], target)
                results[row].rounds.setdefault(key, []).append(result)
                cpu = result.cpu_us_per_call
                say(f"{round_number}/{args.rounds} {key:12} {row:12} {result.calls_per_s:9,.0f} calls/s  "
                    f"p50 {result.p50_us / 1000:7.2f} ms  p99 {result.p99_us / 1000:7.2f} ms  "
                    f"CPU {cpu or 0:7,.0f} µs/call  failed {result.failed}")
    for row, target in targets.items():
        for key, runs in results[row].rounds.items():
            results[row].runs[key] = sorted(runs, key=lambda r: r.calls_per_s)[(len(runs) - 1) // 2]
        results[row].rss_load_mb = tree_peak_rss_mb(target.pid)


def measure(args: argparse.Namespace, tools: Toolchain, procs: Processes, workdir: Path) -> dict[str, RowResult]:
    """The whole run: backend, cold starts, servers, warm-up, interleaved load; every column's results."""
    results = {row: RowResult() for row in ROWS}
    if not tools.gateway_workers:
        results["gateway_2w"].status = "`gateway serve` has no --workers flag"
    nginx = start_nginx(procs, tools.nginx, workdir)
    marker = f'"{nginx.extra["last_sku"]}"'
    tokens_file, auth = None, None
    try:
        issuer, tokens_file, jwt_port = start_auth(procs, tools, workdir)
        auth = (issuer, tokens_file.read_text().split()[0], jwt_port)
    except (StartError, ValueError, KeyError) as exc:
        results["gateway_jwt"].status = f"the authorization server did not start: {str(exc).splitlines()[0]}"
        say(str(exc))
    servers = launches(tools, nginx.url, auth)
    cold_starts(procs, servers, results, args.cold_runs, tools)
    targets = {"nginx": Target("rest", nginx.url, nginx.pid, marker)}
    for row, launch in servers.items():
        try:
            server, _ = start_mcp(procs, launch, SPEC_PATH, port=auth[2] if auth and row == "gateway_jwt" else None)
        except StartError as exc:
            results[row].status = f"did not start: {str(exc).splitlines()[0]}"
            say(str(exc))
            continue
        if row == "gateway_jwt" and not refuses_anonymous(server.url):
            results[row].status = "auth is not enforced: a tools/call without a token was answered"
            continue
        targets[row] = Target("mcp", server.url, server.pid, marker,
                              tokens_file if row == "gateway_jwt" else None)
    say(f"warm-up: {args.warmup:g} s per tool per server ...")
    warm_up(procs, tools.wrk, targets, results, args.warmup)
    say(f"load: {args.rounds} round(s) of {len(SCENARIOS)} scenarios x {len(targets)} servers, "
        f"{args.duration:g} s each ...")
    load_runs(procs, tools.wrk, targets, results, args)
    return results  # main() stops every server, the authorization server included


# -- output --------------------------------------------------------------------------------------------------

def write_outputs(args: argparse.Namespace, info: dict[str, object], results: dict[str, RowResult],
                  table: str, started: datetime.datetime) -> None:
    settings = {"duration_s": args.duration, "rounds": args.rounds, "warmup_s": args.warmup,
                "cold_runs": args.cold_runs, "c32_wrk_threads": args.c32_threads, "quick": args.quick}
    document = {"date": started.isoformat(timespec="seconds"), "machine": info, "settings": settings,
                "rows": {row: result.as_dict() for row, result in results.items()},
                "figures": figure_values(results)}
    Path(args.json).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    say(f"wrote {args.json}")
    if args.write_results:
        command = shlex.join(["python3", "bench/run.py", *args.argv])
        body = (f"{started:%Y-%m-%d %H:%M %Z}, `{command}` ({args.duration:g} s per scenario, {args.rounds} "
                f"round(s)). What each figure means: [README.md](README.md).\n\n{machine_text(info)}\n\n{table}\n")
        write_section(BENCH / "RESULTS.md", RESULTS_SECTION, body)
        say(f"wrote the {RESULTS_SECTION!r} section of {BENCH / 'RESULTS.md'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the gateway against FastMCP and the direct call.")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load scenario (default 10)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s per scenario, 1 s warm-up, 1 cold start")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up load per tool (default 2)")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold starts per server, median taken (default 3)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the interleaved load N times, median kept")
    parser.add_argument("--c32-threads", type=int, default=2, help="wrk threads for the c=32 runs (default 2)")
    parser.add_argument("--json", default=str(BENCH / "results.json"), help="where to write the figures as JSON")
    parser.add_argument("--write-results", action="store_true", help="also write our section of bench/RESULTS.md")
    parser.add_argument("--gateway", help="the gateway command (default: the checkout's .venv, else PATH)")
    parser.add_argument("--fastmcp-venv", default=str(CACHE / "fastmcp-venv"), help="FastMCP's venv (created)")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (nginx config, server logs)")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.duration, args.warmup, args.cold_runs = min(args.duration, 3.0), min(args.warmup, 1.0), 1
    elif args.duration < 10:
        say(f"note: {args.duration:g} s per scenario is a smoke test; the reference run uses ≥ 10 s")
    return args


def _terminate(signum: int, _frame: object) -> NoReturn:
    """SIGTERM/SIGHUP end the run like Ctrl-C does: through the finally that stops every server."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tools = toolchain(args)
    write_spec()
    started = datetime.datetime.now().astimezone()
    info = machine(tools.gateway_python, tools.fastmcp_python, tools.nginx, tools.wrk)
    print(f"## Machine ({started:%Y-%m-%d %H:%M %Z})\n\n{machine_text(info)}\n", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="sag-bench-"))
    (workdir / "logs").mkdir()
    procs = Processes(workdir / "logs")
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also as a background job, where SIGINT starts ignored
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    try:
        results = measure(args, tools, procs, workdir)
    except (StartError, RuntimeError) as exc:
        say(f"bench: {exc}")
        return 1
    except KeyboardInterrupt:
        say("bench: interrupted")
        return 130
    finally:
        procs.stop_all()
        if args.keep_tmp:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    table = markdown_table(results)
    print(f"## Figures ({args.duration:g} s per scenario)\n\n{table}", flush=True)
    write_outputs(args, info, results, table, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
