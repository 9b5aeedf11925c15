"""Start, watch, measure and stop the benchmark's server processes.

Every process the harness starts goes through `Processes`, which puts it in its own session (so one
signal reaches the process and every child it forks, e.g. uvicorn workers) and kills all of them on
exit, whatever ended the run. CPU and memory are read from /proc for the whole process tree, because a
server with workers spends its time in children that the root's own counters do not show.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MCP_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-11-25",
}


class StartError(RuntimeError):
    """A server did not come up; the message carries its log tail so the cause is visible at once."""


def free_port() -> int:
    """A loopback port nobody listens on right now (chosen at run time so parallel runs do not collide)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 25) -> str:
    """The last lines of a server's log, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


@dataclass
class Server:
    """A started process: its name (for messages), its Popen handle and the file its output goes to."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def fail(self, why: str) -> StartError:
        """An error naming the server and showing what it logged."""
        return StartError(f"{self.name}: {why}\n--- last lines of {self.log} ---\n{log_tail(self.log)}")


class Processes:
    """Registry of every process the harness started; `stop_all` kills them (also after Ctrl-C)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Server] = []

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None,
              stdout: int | None = None) -> Server:
        """Spawn `argv` in its own session with stderr (and stdout unless piped) going to a log file."""
        log = self.log_dir / f"{name}.log"
        handle = log.open("ab")
        try:
            proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=handle if stdout is None else stdout,
                                    stderr=handle, env={**os.environ, **(env or {})}, start_new_session=True)
        finally:
            handle.close()
        server = Server(name, proc, log)
        self.started.append(server)
        return server

    def stop(self, server: Server, grace: float = 5.0) -> None:
        """SIGTERM the server's whole session, then SIGKILL what is left after `grace` seconds."""
        if server.proc.poll() is None:
            _signal_group(server.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.proc.wait(grace)
        _signal_group(server.pid, signal.SIGKILL)  # children that outlived their parent, too
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.proc.wait(grace)
        if server.proc.stdout is not None:
            server.proc.stdout.close()
        if server in self.started:
            self.started.remove(server)

    def stop_all(self) -> None:
        for server in reversed(list(self.started)):
            self.stop(server)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


# -- readiness -----------------------------------------------------------------------------------------------

def mcp_request(url: str, method: str, params: Mapping[str, Any] | None = None, *, token: str | None = None,
                timeout: float = 30.0) -> dict[str, Any]:
    """One stateless JSON-RPC request over Streamable HTTP (no initialize: both servers run stateless)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": dict(params or {})}).encode()
    headers = dict(MCP_HEADERS)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read())


def http_get(url: str, timeout: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return answer.read()


def wait_until(server: Server, probe: Callable[[], bool], timeout: float, interval: float = 0.01) -> float:
    """Poll `probe` until it returns True; the seconds that took. Raises with the log tail when the process
    dies or the deadline passes (a probe that raises a connection error just means "not yet")."""
    start = time.monotonic()
    last_error = "never answered"
    while time.monotonic() - start < timeout:
        if not server.alive():
            raise server.fail(f"exited with status {server.proc.returncode} before answering")
        try:
            if probe():
                return time.monotonic() - start
            last_error = "answered, but not as expected"
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        time.sleep(interval)
    raise server.fail(f"not ready after {timeout:.0f} s ({last_error})")


def tools_listed(url: str, token: str | None = None, expect: str = "") -> Callable[[], bool]:
    """A probe: does `tools/list` answer with a tool list (containing `expect`, when given)?"""
    def probe() -> bool:
        answer = mcp_request(url, "tools/list", token=token, timeout=120)
        tools = answer.get("result", {}).get("tools")
        return bool(tools) and (not expect or any(t.get("name") == expect for t in tools))
    return probe


# -- /proc measurements --------------------------------------------------------------------------------------

def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may contain spaces and parentheses)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()


def process_tree(root: int) -> list[int]:
    """The root pid and every live descendant (uvicorn/nginx workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def tree_cpu_seconds(root: int) -> float:
    """utime+stime of every live process in the tree plus the children they already reaped (cutime/cstime)."""
    ticks = 0
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / CLOCK_TICKS


def tree_peak_rss_mb(root: int) -> float:
    """VmHWM (peak resident set) summed over the tree, in MB: what the server as a whole needed at its peak."""
    total_kb = 0
    for pid in process_tree(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024
