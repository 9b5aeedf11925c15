"""Soak with faults: the gateway (a real process) in front of a misbehaving backend, under hostile concurrent load.

    .venv/bin/python bench/soak.py --minutes 10 [--clients 32] [--no-auth] [--write-results]
    .venv/bin/python bench/soak.py --seconds 60          # a short run

`bench/badbackend.py` runs as its own process (normal JSON, slow, trickled, gzip bomb, 500 + HTML, reset,
truncated, 100 MB, redirect, invalid UTF-8, lying Content-Length); the gateway runs as
`.venv/bin/python -m gateway serve --spec ... --mapping ... --upstream ...` with inbound OAuth on (the repo's
development authorization server, `adapters.devauth`, in this process), so its RSS, fds and sockets are
its own. `--clients` asyncio clients (each its own httpx2 client: stateless JSON-RPC POSTs with protocol
2025-11-25 headers) call for the whole run, each call drawn from `CASES` by weight: every backend route,
valid and invalid arguments, unknown tools, malformed JSON-RPC, requests above `server.max_request_bytes`,
and missing, expired and forged tokens.

Every answer is checked against what its case deserves (`Case.check`): the right `isError` reason, `-32602`,
401 with a challenge, 413, 400. A wrong answer is anything else, including a client-side timeout (a hang), a
5xx from the gateway and a JSON-RPC internal error. Figures (markdown, to stdout): calls per second by case
and outcome, wrong answers (must be 0), the gateway's peak RSS at 1, 5 and 10 minutes (or at a third, two
thirds and the end of a shorter run), open fds and sockets to the backend at the start and the end (after
idle connections have had time to close), and whether the gateway process stayed the same. `--write-results`
also writes them to a section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for entry in (str(ROOT), str(BENCH)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import httpx2  # noqa: E402
from badbackend import spec as backend_spec  # noqa: E402

from adapters.devauth.server import free_port  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
           "MCP-Protocol-Version": "2025-11-25"}
MAX_REQUEST_BYTES = 1_048_576  # the gateway's default server.max_request_bytes
CLIENT_TIMEOUT = 20.0  # an answer slower than this is a hang (the slowest tool times out after 2 s)
# Idle pooled connections close after gateway.calls.forward.KEEPALIVE_SECONDS (5 s), but aiohttp sweeps the pool
# once per keep-alive period, so one released just after a sweep closes up to two periods later. The figures wait
# for the idle state up to this long; a leak never gets back to it, however long the wait.
RETURN_LIMIT_SECONDS = 30.0
MAPPING = """
version: 1
defaults:
  timeout: 2
  max_response_bytes: 200000
tools:
  slow: {timeout: 1}
  trickle: {timeout: 1}
"""


# -- the cases ---------------------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: bytes
    headers: httpx2.Headers

    def json(self) -> Any:
        return json.loads(self.body)

    def result(self) -> dict[str, Any]:
        message = self.json()
        return message.get("result") if isinstance(message, dict) else None

    def text(self) -> str:
        result = self.result() or {}
        return " ".join(c.get("text", "") for c in result.get("content") or [])


Check = Callable[[Answer], str | None]
"""None when the answer is right for its case, else what is wrong."""


def _tool_error(*phrases: str) -> Check:
    def check(answer: Answer) -> str | None:
        if answer.status != 200:
            return f"status {answer.status}"
        result = answer.result()
        if not isinstance(result, dict) or result.get("isError") is not True:
            return f"not a tool error: {answer.body[:200]!r}"
        text = answer.text()
        if "internal error" in text:
            return f"an internal error: {text[:200]}"
        missing = [p for p in phrases if p not in text]
        return f"missing {missing} in {text[:300]!r}" if missing else None

    return check


def _success(check_content: Callable[[dict[str, Any]], bool]) -> Check:
    def check(answer: Answer) -> str | None:
        if answer.status != 200:
            return f"status {answer.status}: {answer.body[:200]!r}"
        result = answer.result()
        if not isinstance(result, dict) or result.get("isError"):
            return f"not a success: {answer.body[:300]!r}"
        return None if check_content(result.get("structuredContent") or {}) else f"wrong content {result!r:.300}"

    return check


def _rpc_error(*codes: int, status: tuple[int, ...] = (200, 400)) -> Check:
    def check(answer: Answer) -> str | None:
        if answer.status not in status:
            return f"status {answer.status}"
        try:
            error = answer.json().get("error") or {}
        except (ValueError, AttributeError):
            return f"not JSON-RPC: {answer.body[:200]!r}"
        return None if error.get("code") in codes else f"error {error!r:.200}, wanted one of {codes}"

    return check


def _unknown_tool(answer: Answer) -> str | None:
    """An unknown tool: the SDK's JSON-RPC -32602, or a tool error naming it."""
    if _rpc_error(-32602)(answer) is None:
        return None
    return _tool_error("nope_not_a_tool")(answer)


def _status(code: int, challenge: bool = False) -> Check:
    def check(answer: Answer) -> str | None:
        if answer.status != code:
            return f"status {answer.status}, wanted {code}: {answer.body[:200]!r}"
        if challenge and "Bearer" not in answer.headers.get("www-authenticate", ""):
            return "no WWW-Authenticate challenge"
        return None

    return check


@dataclass
class Case:
    name: str
    weight: float
    body: Callable[[int], bytes]  # request id -> the POST body
    check: Check
    token: str = "valid"  # valid | none | expired | forged-* (which Authorization header to send)
    forwards: bool = True  # whether the backend should see it


def _call(tool: str, arguments: dict[str, Any] | None = None) -> Callable[[int], bytes]:
    def body(request_id: int) -> bytes:
        return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                           "params": {"name": tool, "arguments": arguments or {}}}).encode()

    return body


def _raw(text: bytes) -> Callable[[int], bytes]:
    return lambda request_id: text


def _oversized(request_id: int) -> bytes:
    return _call("echo", {"id": 1, "tag": "a", "pad": "x" * (MAX_REQUEST_BYTES + 1000)})(request_id)


def cases(auth: bool) -> list[Case]:
    found = [
        Case("normal", 30, _call("normal"), _success(lambda s: s.get("ok") is True and isinstance(s.get("n"), int))),
        Case("echo", 8, _call("echo", {"id": 7, "tag": "b"}), _success(lambda s: s.get("target") == "/echo/7?tag=b")),
        Case("slow", 3, _call("slow"), _tool_error("timed out"), ),
        Case("trickle", 3, _call("trickle"), _tool_error("timed out")),
        Case("bomb", 3, _call("bomb"), _tool_error("200,000-byte limit")),
        Case("html500", 3, _call("html500"), _tool_error("500 Internal Server Error")),
        Case("reset", 3, _call("reset"), _tool_error("broke off")),
        Case("truncated", 3, _call("truncated"), _tool_error("broke off")),
        Case("huge", 2, _call("huge"), _tool_error("200,000-byte limit")),
        Case("redirect", 3, _call("redirect"), _tool_error("302", "does not follow")),
        Case("badutf8", 3, _call("badutf8"), _tool_error("invalid JSON")),
        Case("lying", 3, _call("lying"), _tool_error("broke off")),
        Case("invalid_args", 6, _call("echo", {"id": "seven", "tag": "z"}), _tool_error("Invalid arguments"),
             forwards=False),
        Case("unknown_tool", 4, _call("nope_not_a_tool"), _unknown_tool, forwards=False),
        Case("malformed_json", 3, _raw(b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {'),
             _rpc_error(-32700, status=(400,)), forwards=False),
        Case("malformed_rpc", 3, _raw(b'{"jsonrpc": "1.0", "id": {}, "method": 5}'),
             _rpc_error(-32600, -32700, -32602, status=(400,)), forwards=False),
        Case("oversized", 2, _oversized, _status(413), forwards=False),
    ]
    if auth:
        found += [
            Case("no_token", 2, _call("normal"), _status(401, challenge=True), token="none", forwards=False),
            Case("expired_token", 3, _call("normal"), _status(401, challenge=True), token="expired", forwards=False),
            Case("forged_alg_none", 2, _call("normal"), _status(401, challenge=True), token="forged-none",
                 forwards=False),
            Case("forged_hs256", 2, _call("normal"), _status(401, challenge=True), token="forged-hs256",
                 forwards=False),
            Case("forged_signature", 2, _call("normal"), _status(401, challenge=True), token="forged-signature",
                 forwards=False),
            Case("wrong_audience", 1, _call("normal"), _status(401, challenge=True), token="wrong-audience",
                 forwards=False),
        ]
    return found


# -- processes and /proc ----------------------------------------------------------------------------------------


def rss_kb(pid: int, field_name: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def sockets_to(pid: int, port: int) -> int:
    """The process's TCP sockets whose remote port is `port` (in any state but LISTEN), from /proc."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                columns = row.split()
                remote_port = int(columns[2].rsplit(":", 1)[1], 16)
                if remote_port == port and columns[9] in inodes:
                    count += 1
    return count


@dataclass
class Stack:
    """The running backend, authorization server and gateway."""

    folder: Path
    backend: subprocess.Popen
    backend_port: int
    gateway: subprocess.Popen
    url: str
    tokens: dict[str, str | None]
    auth: Any = None
    log: Path | None = None

    def close(self) -> None:
        for proc in (self.gateway, self.backend):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        if self.auth is not None:
            self.auth.__exit__(None, None, None)


def _forge_tokens(auth: Any, resource: str) -> dict[str, str | None]:
    valid = auth.issue(subject="soak", expires_in=6 * 3600)
    head, payload, signature = valid.split(".")
    flipped = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    return {
        "valid": valid, "none": None,
        "expired": auth.issue(subject="soak", expires_in=-600, issued_at=int(time.time()) - 1200),
        "forged-none": auth.issue(subject="soak", alg="none"),
        "forged-hs256": auth.issue(subject="soak", alg="HS256"),
        "forged-signature": f"{head}.{payload}.{flipped}",
        "wrong-audience": auth.issue(subject="soak", audience="http://127.0.0.1:1/other"),
    }


def start(folder: Path, auth: bool = True) -> Stack:
    """Write the spec and mapping, start the bad backend and the gateway (and, with `auth`, the auth server)."""
    (folder / "soak-openapi.yaml").write_text(yaml.safe_dump(backend_spec(), sort_keys=False), encoding="utf-8")
    (folder / "soak-mapping.yaml").write_text(MAPPING, encoding="utf-8")
    backend = subprocess.Popen([PYTHON, str(BENCH / "badbackend.py")], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)
    backend_port = json.loads(backend.stdout.readline())["port"]
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    argv = [PYTHON, "-m", "gateway", "serve", "--spec", str(folder / "soak-openapi.yaml"),
            "--mapping", str(folder / "soak-mapping.yaml"), "--upstream", f"http://127.0.0.1:{backend_port}",
            "--port", str(port), "--discovery", "flat"]
    tokens: dict[str, str | None] = {"valid": None}
    server = None
    if auth:
        from adapters.devauth import AuthServer

        server = AuthServer(audience=url).__enter__()
        tokens = _forge_tokens(server, url)
        argv += ["--auth-issuer", server.url, "--resource-url", url]
    log = folder / "gateway.log"
    with log.open("ab") as handle:
        gateway = subprocess.Popen(argv, cwd=ROOT, stdout=handle, stderr=handle, stdin=subprocess.DEVNULL,
                                   start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    stack = Stack(folder, backend, backend_port, gateway, url, tokens, server, log)
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(httpx2.HTTPError):
            if httpx2.get(url.rsplit("/", 1)[0] + "/readyz", timeout=2).status_code == 200:
                return stack
        if gateway.poll() is not None or time.monotonic() > deadline:
            stack.close()
            raise RuntimeError(f"the gateway did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)


# -- the load ---------------------------------------------------------------------------------------------------


@dataclass
class Figures:
    seconds: float = 0.0
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (case, "right" | "wrong")
    wrong: list[str] = field(default_factory=list)  # the first wrong answers, described
    forwarded_expected: Counter[str] = field(default_factory=Counter)
    rss_marks: list[tuple[float, float, float]] = field(default_factory=list)  # (s, VmRSS MB, VmHWM MB)
    fds_start: int = 0
    fds_end: int = 0
    upstream_start: int = 0
    upstream_end: int = 0
    returned_after: float = 0.0  # seconds after the load until fds and backend sockets were back at the start
    same_process: bool = True
    backend_hits: dict[str, int] = field(default_factory=dict)

    def idle_again(self) -> bool:
        """Open fds and sockets to the backend are back where they were before the load."""
        return (self.fds_end, self.upstream_end) == (self.fds_start, self.upstream_start)

    def forwarding_problems(self, warmup: int = 20) -> list[str]:
        """Routes whose backend hits differ from the calls that should have reached it (the warm-up included):
        a refused call (bad arguments, token, size) that was forwarded anyway, or a call that was lost."""
        expected = Counter(self.forwarded_expected)
        expected["normal"] += warmup
        return [f"{route}: {self.backend_hits.get(route, 0)} hits for {expected[route]} calls"
                for route in sorted(set(expected) | set(self.backend_hits))
                if self.backend_hits.get(route, 0) != expected[route]]

    @property
    def wrong_count(self) -> int:
        return sum(n for (_, verdict), n in self.outcomes.items() if verdict == "wrong")

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())


async def _client(stack: Stack, plan: list[Case], weights: list[float], stop: float, figures: Figures,
                  rng: random.Random, first_id: int) -> None:
    request_id = first_id
    async with httpx2.AsyncClient(timeout=CLIENT_TIMEOUT) as http:
        while time.monotonic() < stop:
            case = rng.choices(plan, weights)[0]
            request_id += 1
            headers = dict(HEADERS)
            token = stack.tokens.get(case.token) if case.token != "none" else None
            if token:
                headers["Authorization"] = f"Bearer {token}"
            try:
                response = await http.post(stack.url, content=case.body(request_id), headers=headers)
                problem = case.check(Answer(response.status_code, response.content, response.headers))
                if response.status_code >= 500:
                    problem = problem or f"a {response.status_code} from the gateway"
            except httpx2.TimeoutException:
                problem = f"no answer within {CLIENT_TIMEOUT} s (a hang)"
            except httpx2.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            verdict = "wrong" if problem else "right"
            figures.outcomes[(case.name, verdict)] += 1
            if problem and len(figures.wrong) < 20:
                figures.wrong.append(f"{case.name}: {problem}")
            if case.forwards:
                figures.forwarded_expected[case.name] += 1


async def _monitor(stack: Stack, started: float, stop: float, marks: list[float], figures: Figures) -> None:
    pending = sorted(marks)
    pid = stack.gateway.pid
    while time.monotonic() < stop + 0.5:
        if stack.gateway.poll() is not None:
            figures.same_process = False
            return
        elapsed = time.monotonic() - started
        while pending and elapsed >= pending[0]:
            figures.rss_marks.append((pending.pop(0), rss_kb(pid) / 1024, rss_kb(pid, "VmHWM") / 1024))
        await asyncio.sleep(0.25)
    for mark in pending:  # a mark at the very end
        figures.rss_marks.append((mark, rss_kb(pid) / 1024, rss_kb(pid, "VmHWM") / 1024))


async def _warm(stack: Stack) -> None:
    headers = {**HEADERS, **({"Authorization": f"Bearer {stack.tokens['valid']}"} if stack.tokens["valid"] else {})}
    async with httpx2.AsyncClient(timeout=CLIENT_TIMEOUT) as http:
        for n in range(20):
            answer = await http.post(stack.url, content=_call("normal")(n), headers=headers)
            assert answer.status_code == 200 and not answer.json()["result"].get("isError"), answer.text


def run_load(stack: Stack, seconds: float, clients: int = 32, seed: int = 1) -> Figures:
    """Warm up, take the baseline (fds, backend sockets) once idle, load for `seconds`, wait for idle again."""
    figures = Figures()
    asyncio.run(_warm(stack))
    pid = stack.gateway.pid
    deadline = time.monotonic() + RETURN_LIMIT_SECONDS
    while True:  # the baseline is the idle gateway: the warm-up's pooled connection closed
        figures.fds_start, figures.upstream_start = open_fds(pid), sockets_to(pid, stack.backend_port)
        if figures.upstream_start == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    plan = cases(auth=stack.auth is not None)
    weights = [case.weight for case in plan]
    marks = [m for m in (60.0, 300.0, 600.0) if m < seconds] if seconds > 120 else [seconds / 3, 2 * seconds / 3]
    marks.append(seconds)

    async def load() -> None:
        started = time.monotonic()
        stop = started + seconds
        rng = random.Random(seed)
        tasks = [_client(stack, plan, weights, stop, figures, random.Random(rng.random()), n * 10_000_000)
                 for n in range(clients)]
        await asyncio.gather(_monitor(stack, started, stop, marks, figures), *tasks)
        figures.seconds = time.monotonic() - started

    asyncio.run(load())
    ended = time.monotonic()
    figures.same_process = figures.same_process and stack.gateway.poll() is None
    stats = httpx2.get(f"http://127.0.0.1:{stack.backend_port}/__stats", timeout=10).json()
    figures.backend_hits = {route: n for route, n in stats.items() if route != "__stats"}
    while figures.same_process:
        figures.fds_end, figures.upstream_end = open_fds(pid), sockets_to(pid, stack.backend_port)
        figures.returned_after = time.monotonic() - ended
        if figures.idle_again() or figures.returned_after > RETURN_LIMIT_SECONDS:
            break
        time.sleep(0.5)
    return figures


def soak(seconds: float, clients: int = 32, auth: bool = True) -> Figures:
    with tempfile.TemporaryDirectory(prefix="gateway-soak-") as folder:
        stack = start(Path(folder), auth)
        try:
            return run_load(stack, seconds, clients)
        finally:
            stack.close()


# -- the report -------------------------------------------------------------------------------------------------


def report(figures: Figures, clients: int, auth: bool) -> str:
    by_case: dict[str, Counter[str]] = {}
    for (case, verdict), n in figures.outcomes.items():
        by_case.setdefault(case, Counter())[verdict] += n
    rows = ["| case | calls | calls/s | right | wrong |", "|---|---|---|---|---|"]
    for case in sorted(by_case, key=lambda c: -sum(by_case[c].values())):
        counts = by_case[case]
        total = sum(counts.values())
        rows.append(f"| {case} | {total} | {total / figures.seconds:.1f} | {counts['right']} | {counts['wrong']} |")
    rows.append(f"| **all** | {figures.total} | {figures.total / figures.seconds:.1f} | "
                f"{figures.total - figures.wrong_count} | {figures.wrong_count} |")
    rss = ", ".join(f"{mark / 60:.1f} min: {now:.1f} MB (peak {peak:.1f} MB)" for mark, now, peak in figures.rss_marks)
    peaks = [peak for _, _, peak in figures.rss_marks]
    growth = (peaks[-1] / peaks[0] - 1) * 100 if peaks and peaks[0] else 0.0
    returned = (f"idle again {figures.returned_after:.1f} s after the load" if figures.idle_again()
                else f"NOT idle again within {RETURN_LIMIT_SECONDS:.0f} s of the load")
    lines = [
        f"{clients} clients for {figures.seconds:.0f} s, inbound auth {'on' if auth else 'off'}; "
        f"{figures.total} calls, {figures.total / figures.seconds:.1f}/s.",
        "",
        *rows,
        "",
        f"- wrong answers: **{figures.wrong_count}**" + (f" (first: {'; '.join(figures.wrong[:5])})"
                                                         if figures.wrong else ""),
        f"- gateway RSS: {rss}; peak growth from the first mark to the last: {growth:+.1f} %",
        f"- open fds: {figures.fds_start} at the start, {figures.fds_end} at the end; sockets to the backend: "
        f"{figures.upstream_start} at the start, {figures.upstream_end} at the end ({returned})",
        f"- calls that reached the backend: {sum(figures.backend_hits.values())}; "
        + (f"mismatched: {'; '.join(figures.forwarding_problems())}" if figures.forwarding_problems()
           else "exactly the calls that should have (none of the refused ones)"),
        f"- gateway process: {'the same one throughout (no restart)' if figures.same_process else 'DIED or restarted'}",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=None, help="how long to load (default 10)")
    parser.add_argument("--seconds", type=float, default=None, help="how long to load, in seconds")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--no-auth", action="store_true", help="serve without inbound OAuth (no token cases)")
    parser.add_argument("--write-results", action="store_true", help="write a section of bench/RESULTS.md")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else 60 * (args.minutes if args.minutes is not None else 10)
    figures = soak(seconds, args.clients, auth=not args.no_auth)
    body = report(figures, args.clients, not args.no_auth)
    print(body)
    if args.write_results:
        from report import write_section

        write_section(BENCH / "RESULTS.md", "Soak with faults (bench/soak.py)", body)
    ok = figures.wrong_count == 0 and figures.same_process and not figures.forwarding_problems() \
        and figures.idle_again()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
