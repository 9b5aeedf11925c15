"""The `gateway` command: init, check, tools, serve, demo, preview, doctor."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.errors import GatewayError
from gateway.observability.logs import setup_logging

if TYPE_CHECKING:
    from gateway.config import GatewayConfig

log = logging.getLogger("gateway")


def _add_source(parser: argparse.ArgumentParser) -> None:
    """The flags that say what to serve: a spec (and mapping, upstream, auth), or a config file."""
    parser.add_argument("--spec", help="OpenAPI/Swagger document: a file path or an http(s) URL")
    parser.add_argument("--mapping", help="YAML mapping (default: every non-deprecated operation becomes a tool)")
    parser.add_argument("--config", help="gateway config with several backends (instead of the flags here)")
    parser.add_argument("--upstream", help="backend base URL; overrides the spec's servers")
    parser.add_argument("--auth-issuer", metavar="ISSUER_URL",
                        help="check callers' OAuth tokens: the authorization server's issuer URL (JWKS discovered)")
    parser.add_argument("--resource-url", metavar="PUBLIC_MCP_URL",
                        help="the public URL of this MCP endpoint, the audience tokens must be issued for")
    parser.add_argument("--required-scopes", metavar="A,B", help="scopes every request needs (comma-separated)")
    parser.add_argument("--no-auth", action="store_true",
                        help="serve without checking tokens (needed to listen beyond loopback without --auth-issuer)")
    parser.add_argument("--discovery", choices=("flat", "search", "auto"),
                        help="list every tool (flat), or serve search_tools + call_tool (search); auto (the "
                             "default) searches above server.discovery.max_flat_tools (40)")


def _config(args: argparse.Namespace) -> GatewayConfig:
    from gateway.config import config_from_args, load_config

    if args.config:
        flags = ("spec", "mapping", "upstream", "auth_issuer", "resource_url", "required_scopes", "no_auth")
        if any(getattr(args, flag) for flag in flags):
            raise SystemExit("gateway: with --config, give the backends and auth settings in the file")
        return load_config(args.config, host=getattr(args, "host", None), port=getattr(args, "port", None),
                           discovery=args.discovery)
    if not args.spec:
        raise SystemExit("gateway: --spec (or --config) is required")
    scopes = args.required_scopes
    return config_from_args(
        spec=args.spec, mapping=args.mapping, upstream=args.upstream,
        host=getattr(args, "host", None), port=getattr(args, "port", None),
        auth_issuer=args.auth_issuer, resource_url=args.resource_url,
        required_scopes=tuple(s.strip() for s in scopes.split(",") if s.strip()) if scopes else (),
        no_auth=args.no_auth,
        discovery=args.discovery,
    )


def cmd_init(args: argparse.Namespace) -> int:
    from gateway.mapping import scaffold_mapping
    from gateway.spec import load_spec

    sys.stdout.write(scaffold_mapping(load_spec(args.spec)))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from gateway.runtime import load_gateway

    gw = load_gateway(_config(args))
    for warning in gw.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for backend in gw.backends:
        print(f"{backend.config.name}: {backend.api.title} ({backend.api.spec_version}), "
              f"{len(backend.api.operations)} operations -> {len(backend.tools)} tools")
    print(f"ok: {len(gw.tools)} tools, {len(gw.warnings)} warnings")
    return 0


def cmd_tools(args: argparse.Namespace) -> int:
    from gateway.runtime import load_gateway
    from gateway.server import scope_policy
    from gateway.serving.endpoint import EndpointTools

    gw = load_gateway(_config(args))
    catalogs = {catalog.key: catalog for catalog in gw.catalogs}
    if args.toolset is not None and args.toolset not in catalogs:
        names = ", ".join(k for k in catalogs if k) or "none (the mapping defines no toolsets)"
        raise SystemExit(f"gateway: no toolset {args.toolset!r}; the toolsets: {names}")
    catalog = catalogs[args.toolset]
    if args.json:
        served = EndpointTools.build(gw, catalog, scope_policy(gw, catalog), gw.widgets)
        json.dump(served.listing_json(args.legacy), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    listed = "every tool" if not catalog.search else \
        f"search_tools, call_tool and {sum(t.pinned for t in catalog.tools.values())} pinned tools"
    print(f"# {catalog.path}: {catalog.discovery.mode} discovery ({catalog.discovery.reason}); tools/list serves "
          f"{listed}", file=sys.stderr)
    for tool in catalog.tools.values():
        first_line = tool.description.splitlines()[0] if tool.description else ""
        pin = "pinned " if catalog.search and tool.pinned else ""
        print(f"{tool.name:40} {tool.request.method:6} {tool.request.path}  {pin}{first_line[:60]}")
    return 0


GC_GEN0_THRESHOLD = 10_000
"""Allocations between two youngest-generation collections while serving (CPython's default is 700)."""

WORKER_ARGV = "GATEWAY_WORKER_ARGV"
"""Environment variable that hands `gateway serve`'s command line to the worker processes of `--workers`."""


def run_async(coro: Any) -> Any:
    """Run `coro` on uvloop when it is installed (uvicorn's fast loop), else on asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _app(config: GatewayConfig, metrics: Any = None, tracing: Any = None) -> Any:
    from gateway.runtime import load_gateway
    from gateway.server import create_app

    gw = load_gateway(config, lint=False)
    for warning in gw.warnings:
        log.warning("%s", warning)
    settings = config.server
    log.info("serving %d tools at http://%s:%d%s", len(gw.tools), settings.host, settings.port, settings.path)
    app = create_app(gw, metrics=metrics, tracing=tracing)
    # What start-up built lives as long as the process: moved out of the collector's view, it is not
    # scanned again by every collection the calls trigger. A call's objects are freed by reference
    # counting, not by the collector; collecting after every 700 allocations (the default) instead of
    # GC_GEN0_THRESHOLD cost ~5% of a small call's CPU under load.
    _collect_from_now_on()
    return app


def _collect_from_now_on() -> None:
    """End of start-up: freeze what it built and turn the collector (off since `cmd_serve` began) back on.

    Start-up builds a few hundred thousand objects that live as long as the process (the SDK's models, a
    large API's tools and widgets); collections while they are built free almost nothing and cost a tenth of
    it, and so would a full collection before the freeze, for the few thousand objects of cyclic garbage
    loading leaves."""
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
    gc.enable()


def worker_app() -> Any:
    """The app of one worker process of `gateway serve --workers N`, from the command line the parent passed."""
    gc.disable()  # until `_app` has built the gateway
    args = build_parser().parse_args(json.loads(os.environ[WORKER_ARGV]))
    config = _config(args)
    setup_logging(config.server.log_level, config.server.log_format)
    return _app(config)


def _serve_http(args: argparse.Namespace, config: GatewayConfig) -> None:
    import uvicorn

    from gateway.serving.lifecycle import GatewayServer, ReloadingApp, watch

    settings = config.server
    # No `server: uvicorn` header: an answer need not name the software behind it. No logging config of
    # uvicorn's own: its lines go through the gateway's handler, in the gateway's format.
    options = {"host": settings.host, "port": settings.port, "log_level": "warning", "access_log": False,
               "log_config": None,
               "lifespan": "on", "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
               "server_header": False}
    if args.workers > 1:
        # Each worker builds its own gateway from the same files; uvicorn's supervisor binds the port once,
        # shares the socket with every worker, restarts one that dies, and restarts them all on SIGHUP.
        os.environ[WORKER_ARGV] = json.dumps(list(args.argv))
        uvicorn.run("gateway.cli:worker_app", factory=True, workers=args.workers, **options)
        return
    metrics = _metrics(settings)
    tracing = None
    if settings.tracing.enabled:
        from gateway.observability.tracing import Tracing

        tracing = Tracing.configure()
    app = ReloadingApp(lambda: _app(_config(args), metrics, tracing), _app(config, metrics, tracing),
                       on_reload=_reload_listeners(metrics))
    server = GatewayServer(uvicorn.Config(app, **options), app, drain_seconds=settings.drain_seconds)

    async def serve() -> None:
        watcher = None
        if settings.reload == "watch":
            watcher = asyncio.get_running_loop().create_task(watch(_watched(args, config), app.reload))
        try:
            await server.serve()
        finally:
            if watcher is not None:
                watcher.cancel()
            if tracing is not None:
                tracing.shutdown()

    run_async(serve())


def _metrics(settings: Any) -> Any:
    """The process's metrics when `server.metrics` asks for them; with a port of their own, served from here."""
    if not settings.metrics.enabled:
        return None
    from prometheus_client import start_http_server

    from gateway.observability.metrics import Metrics

    metrics = Metrics()
    if settings.metrics.port is not None:
        start_http_server(settings.metrics.port, addr=settings.host, registry=metrics.registry)
        log.info("metrics at http://%s:%d/metrics", settings.host, settings.metrics.port)
    return metrics


def _reload_listeners(metrics: Any) -> list[Any]:
    return [lambda result: metrics.reloads.labels(result).inc()] if metrics is not None else []


def _watched(args: argparse.Namespace, config: GatewayConfig) -> list[Path]:
    """The files `server.reload: watch` follows: the config file, and every spec and mapping that is a file."""
    files = [Path(args.config)] if args.config else []
    for backend in config.backends:
        if not backend.spec.startswith(("http://", "https://")):
            files.append(Path(backend.spec))
        if backend.mapping is not None:
            files.append(backend.mapping)
    return files


def cmd_serve(args: argparse.Namespace) -> int:
    gc.disable()  # until the gateway is built (`_collect_from_now_on`)
    config = _config(args)
    setup_logging(config.server.log_level, config.server.log_format)
    if args.stdio:
        from gateway.runtime import load_gateway
        from gateway.server import serve_stdio

        if args.workers > 1:
            raise SystemExit("gateway: --workers serves HTTP; stdio serves one client in one process")
        gw = load_gateway(config, lint=False)
        _collect_from_now_on()
        run_async(serve_stdio(gw))
    else:
        if args.workers > 1:
            from gateway.runtime import load_gateway

            load_gateway(config, lint=False)  # every problem is reported once, here, before any worker starts
            gc.enable()  # this process only supervises the workers
        _serve_http(args, config)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    setup_logging("info")
    run_async(run_demo(host=args.host, port=args.port, backend_port=args.backend_port, auth=args.auth,
                         auth_port=args.auth_port))
    return 0


def cmd_preview(args: argparse.Namespace) -> int:
    from gateway.preview import serve_preview

    config = _config(args)
    setup_logging(config.server.log_level, config.server.log_format)
    run_async(serve_preview(config, args.port))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from gateway.doctor import diagnose, diagnose_config, exit_code, url_advice

    sources = ("spec", "config", "mapping", "upstream", "auth_issuer", "resource_url", "required_scopes", "no_auth")
    if args.url and any(getattr(args, flag) for flag in sources):
        raise SystemExit("gateway: doctor checks either a running gateway (--url) or a config (--spec/--config)")
    if args.url:
        checks = [url_advice(args.url), *asyncio.run(diagnose(args.url, token=args.token))]
    elif args.spec or args.config:
        logging.basicConfig(level="ERROR", stream=sys.stderr)  # the in-process gateway's start-up lines are noise here
        checks = asyncio.run(diagnose_config(_config(args), token=args.token))
    else:
        raise SystemExit("gateway: doctor needs --url (a running gateway) or --spec/--config")
    for check in checks:
        print(check)
    counts = {status: sum(c.status == status for c in checks) for status in ("ok", "warn", "FAIL")}
    print(", ".join(f"{n} {status}" for status, n in counts.items()))
    return exit_code(checks)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="Serve a REST API's OpenAPI operations as MCP tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="print a commented starting mapping for a spec")
    p.add_argument("--spec", required=True, help="OpenAPI/Swagger document: a file path or an http(s) URL")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("check", help="load a spec and mapping (or a config) and report problems")
    _add_source(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("tools", help="list the tools that would be served")
    _add_source(p)
    p.add_argument("--json", action="store_true", help="print the descriptors exactly as tools/list serves them")
    p.add_argument("--legacy", action="store_true", help="with --json: as served to 2025-11-25 clients")
    p.add_argument("--toolset", help="the tools of one toolset's endpoint (default: the endpoint serving every tool)")
    p.set_defaults(func=cmd_tools)

    p = sub.add_parser("serve", help="serve the tools over Streamable HTTP (or stdio)")
    _add_source(p)
    p.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default 8080)")
    p.add_argument("--stdio", action="store_true", help="serve one client over stdin/stdout instead of HTTP")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="serve with N processes on one port (default 1); each loads the gateway itself")

    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="run the bundled petstore backend and the gateway in front of it")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="gateway port (default 8080)")
    p.add_argument("--backend-port", type=int, default=9000, help="petstore backend port (default 9000)")
    p.add_argument("--auth", action="store_true",
                   help="also run a local authorization server; the gateway then checks tokens and prints one")
    p.add_argument("--auth-port", type=int, default=9100, help="authorization server port (default 9100)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("preview", help="serve the tools plus a development page at /preview that renders their "
                                       "widgets (loopback only)")
    _add_source(p)
    p.add_argument("--port", type=int, default=8090, help="port on 127.0.0.1 (default 8090)")
    p.set_defaults(func=cmd_preview)

    p = sub.add_parser("doctor", help="check that a gateway gives ChatGPT what it needs to show the app and widgets")
    p.add_argument("--url", help="MCP endpoint of a running gateway, e.g. https://gw.example.com/mcp")
    p.add_argument("--token", help="bearer token to send where the gateway asks for one")
    _add_source(p)
    p.set_defaults(func=cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except GatewayError as exc:
        print(f"gateway: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
