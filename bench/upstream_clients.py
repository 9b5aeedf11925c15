"""Micro-benchmark: the upstream HTTP client of the call path, on its own.

Starts Debian's nginx on loopback with its own config in a temporary folder (`apt-get install -y nginx`
if it is missing; without it, a tiny asyncio server in a subprocess stands in), answering
`GET /pets/{id}` with a small fixed JSON object and `GET /catalog` with ~50 KB of JSON. Then it sends
N requests at concurrency 1 and 32 through each client variant:

* httpx2: one pooled `httpx2.AsyncClient`, used as the gateway's Backend used it (build_request, send
  with stream=True, aiter_bytes with a size cap);
* aiohttp: one `aiohttp.ClientSession` with a TCPConnector (limit, keep-alive), reading in chunks with a
  size cap, an overall deadline per request (ClientTimeout(total=...));
* gateway: `gateway.calls.forward.Backend.send`, the real call path's forwarder (whatever client it uses).

It reports requests/s and CPU microseconds per request of this process (utime + stime from
`resource.getrusage`; the server runs in another process). The machine may be shared and noisy: each
variant runs `--rounds` times, interleaved, and the table gives the median of each and its ratio to httpx2
within the same run.

    .venv/bin/python bench/upstream_clients.py [--requests 4000] [--rounds 3] [--concurrency 1 32]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CAP = 10 * 1024 * 1024
PET = json.dumps({"id": 1, "name": "Rex", "tag": "dog", "status": "available"}, separators=(",", ":"))
CATALOG = json.dumps([{"id": i, "name": f"item {i}", "description": "x" * 60, "price": i * 1.5, "tags": ["a", "b"]}
                      for i in range(400)], separators=(",", ":"))  # ~50 KB


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, proc: subprocess.Popen, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the benchmark server exited early ({proc.returncode})")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise SystemExit("the benchmark server did not start")


NGINX_CONF = """\
{user}
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{port};
        location ~ ^/pets/[^/]+$ {{
            default_type application/json;
            return 200 '{pet}';
        }}
        location = /catalog {{
            default_type application/json;
            alias {dir}/catalog.json;
        }}
    }}
}}
"""

FALLBACK_SERVER = textwrap.dedent("""
    import asyncio, sys
    port, pet, catalog = int(sys.argv[1]), sys.argv[2].encode(), open(sys.argv[3], "rb").read()

    def answer(body):
        return (b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: "
                + str(len(body)).encode() + b"\\r\\n\\r\\n" + body)

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\\r\\n\\r\\n")
                path = head.split(b" ", 2)[1]
                writer.write(answer(catalog if path == b"/catalog" else pet))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        await server.serve_forever()

    asyncio.run(main())
""")


@contextlib.contextmanager
def upstream() -> Iterator[tuple[str, str]]:
    """The base URL of a running server, and what it is."""
    folder = Path(tempfile.mkdtemp(prefix="upstream-bench-"))
    (folder / "catalog.json").write_text(CATALOG)
    port = free_port()
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx:
        user = "user root root;" if os.geteuid() == 0 else ""  # workers read the temp folder (mode 0700)
        conf = folder / "nginx.conf"
        conf.write_text(NGINX_CONF.format(user=user, dir=folder, port=port, pet=PET))
        command = [nginx, "-p", str(folder), "-c", str(conf)]
        what = "nginx (1 worker)"
    else:
        command = [sys.executable, "-c", FALLBACK_SERVER, str(port), PET, str(folder / "catalog.json")]
        what = "asyncio fallback server (nginx not installed)"
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(port, proc)
        yield f"http://127.0.0.1:{port}", what
    finally:
        proc.terminate()
        proc.wait(5)
        shutil.rmtree(folder, ignore_errors=True)


Send = Callable[[str], Awaitable[int]]


async def httpx2_client(base: str, limit: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    import httpx2

    client = httpx2.AsyncClient(
        timeout=httpx2.Timeout(30.0, connect=5.0),
        limits=httpx2.Limits(max_connections=limit, max_keepalive_connections=limit),
        follow_redirects=False, headers={"User-Agent": "semantic-adapter-gateway"}, trust_env=False)
    base_url = httpx2.URL(base)

    async def send(path: str) -> int:
        request = client.build_request("GET", base_url.copy_with(raw_path=path.encode("ascii")),
                                       headers=[("Accept", "application/json")],
                                       timeout=httpx2.Timeout(30.0, connect=5.0))
        response = await client.send(request, stream=True)
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > CAP:
                    break
        finally:
            await response.aclose()
        return len(body)

    return send, client.aclose


async def aiohttp_client(base: str, limit: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    import aiohttp
    import yarl

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, keepalive_timeout=30),
        headers={"User-Agent": "semantic-adapter-gateway"}, trust_env=False, auto_decompress=True)
    timeout = aiohttp.ClientTimeout(total=30.0, connect=5.0)

    async def send(path: str) -> int:
        url = yarl.URL(base + path, encoded=True)
        async with session.request("GET", url, headers=[("Accept", "application/json")], allow_redirects=False,
                                   timeout=timeout) as response:
            body = bytearray()
            async for chunk in response.content.iter_any():
                body += chunk
                if len(body) > CAP:
                    break
        return len(body)

    return send, session.close


async def gateway_backend(base: str, limit: int) -> tuple[Send, Callable[[], Awaitable[None]]]:
    from gateway.calls.forward import Backend
    from gateway.calls.request import UpstreamRequest

    backend = Backend("bench", base, max_connections=limit)
    accept = (("Accept", "application/json"),)

    async def send(path: str) -> int:
        response = await backend.send(UpstreamRequest("GET", path, "", accept), timeout=30.0, max_bytes=CAP)
        return len(response.content)

    return send, backend.aclose


VARIANTS = {"httpx2": httpx2_client, "aiohttp": aiohttp_client, "gateway": gateway_backend}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_one(variant: str, base: str, path: Callable[[int], str], total: int, concurrency: int,
                  expected: int) -> tuple[float, float]:
    """(requests/s, CPU µs per request) for `total` requests, `concurrency` at a time."""
    send, close = await VARIANTS[variant](base, max(concurrency, 1))
    try:
        for i in range(min(concurrency, 8) * 4):  # warm up the pool
            await send(path(i))
        counter = iter(range(total))

        async def worker() -> None:
            for i in counter:
                size = await send(path(i))
                if size != expected:
                    raise SystemExit(f"{variant}: got {size} bytes, expected {expected}")

        cpu, started = cpu_seconds(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    finally:
        await close()
    return total / wall, cpu / total * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000, help="requests per run (default 4000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs of each variant (default 3)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    bodies = {"small": (lambda i: f"/pets/{i % 100}", len(PET)), "50KB": (lambda _: "/catalog", len(CATALOG))}
    with upstream() as (base, what):
        print(f"server: {what} at {base}; {args.requests} requests per run, {args.rounds} interleaved rounds, "
              f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}")
        print(f"bodies: small = {len(PET)} B, 50KB = {len(CATALOG):,} B\n")
        print(f"{'body':6} {'conc':>4}  {'client':8} {'req/s':>8} {'CPU µs/req':>11}  {'req/s ÷ httpx2':>14} "
              f"{'CPU ÷ httpx2':>12}  runs (req/s)")
        for body, (path, expected) in bodies.items():
            for concurrency in args.concurrency:
                results: dict[str, list[tuple[float, float]]] = {v: [] for v in args.variants}
                for _ in range(args.rounds):
                    for variant in args.variants:
                        results[variant].append(await run_one(variant, base, path, args.requests, concurrency,
                                                              expected))
                medians = {v: (statistics.median(r for r, _ in runs), statistics.median(c for _, c in runs))
                           for v, runs in results.items()}
                ref = medians.get("httpx2")
                for variant, (rate, cpu) in medians.items():
                    ratio = f"{rate / ref[0]:14.2f} {cpu / ref[1]:12.2f}" if ref else f"{'':14} {'':12}"
                    runs = " ".join(f"{r:.0f}" for r, _ in results[variant])
                    print(f"{body:6} {concurrency:>4}  {variant:8} {rate:8.0f} {cpu:11.0f}  {ratio}  {runs}")
                print()


if __name__ == "__main__":
    asyncio.run(main())
