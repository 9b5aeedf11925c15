"""The serving process's life: live reload without a restart, and a graceful drain on SIGTERM.

`ReloadingApp` is the ASGI app uvicorn serves. It holds the current gateway app and swaps it for a new
one on `reload()` (SIGHUP, or a changed file with `server.reload: watch`): the new gateway is loaded and
checked completely in a worker thread, off the serving path, then started and swapped in with one
assignment. Requests already running finish on the old app, which is stopped when its last one ends. A
broken file leaves the old gateway serving and logs the error with its file:line.

`GatewayServer` is uvicorn's server with the gateway's signals: SIGTERM first turns `/readyz` to 503
(load balancers stop sending new calls) and keeps serving for `server.drain_seconds`, then stops
accepting connections and lets calls in flight finish for up to `server.shutdown_grace_seconds`
(uvicorn's graceful shutdown) before the pools close; the process exits 0. SIGHUP reloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import GatewayError

log = logging.getLogger("gateway.lifecycle")

ReloadListener = Callable[[str], None]
"""Told each reload's result: `ok` or `failed` (metrics count them)."""


@dataclass(slots=True)
class _Running:
    """One started gateway app, its lifespan and its requests in flight."""

    app: ASGIApp
    stack: contextlib.AsyncExitStack
    in_flight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)


class ReloadingApp:
    """ASGI app over a gateway app that `build()` makes (blocking: it loads files), swapped on `reload()`."""

    def __init__(self, build: Callable[[], ASGIApp], first: ASGIApp, *,
                 on_reload: Iterable[ReloadListener] = ()) -> None:
        self.build = build
        self.first = first
        self.on_reload = tuple(on_reload)
        self.draining = False
        self._current: _Running | None = None
        self._lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if self.draining and scope["type"] == "http" and scope["path"] == "/readyz":
            await JSONResponse({"status": "draining"}, status_code=503)(scope, receive, send)
            return
        running = self._current
        assert running is not None, "the lifespan starts the first app before any request"
        running.in_flight += 1
        running.idle.clear()
        try:
            await running.app(scope, receive, send)
        finally:
            running.in_flight -= 1
            if not running.in_flight:
                running.idle.set()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        try:
            self._current = await _start(self.first)
        except Exception as exc:
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            raise
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        async with self._lock:
            if self._current is not None:
                await self._current.stack.aclose()
        await send({"type": "lifespan.shutdown.complete"})

    async def reload(self) -> bool:
        """Load the files again and swap the new gateway in; False (old one kept) when they are broken."""
        async with self._lock:
            try:
                app = await asyncio.to_thread(self.build)
                started = await _start(app)
            except GatewayError as exc:
                log.error("reload failed; still serving the previous tools:\n%s", exc)
                self._tell("failed")
                return False
            except Exception:
                log.exception("reload failed; still serving the previous tools")
                self._tell("failed")
                return False
            old, self._current = self._current, started
        log.info("reloaded: new calls use the new tools")
        self._tell("ok")
        if old is not None:
            asyncio.get_running_loop().create_task(_retire(old))
        return True

    def _tell(self, result: str) -> None:
        for listener in self.on_reload:
            listener(result)


async def _start(app: ASGIApp) -> _Running:
    """Enter `app`'s lifespan (a Starlette app's: session managers, upstream pools)."""
    stack = contextlib.AsyncExitStack()
    router = getattr(app, "router", None)
    if router is not None:
        await stack.enter_async_context(router.lifespan_context(app))
    running = _Running(app, stack)
    running.idle.set()
    return running


async def _retire(old: _Running) -> None:
    """Stop a swapped-out app once its last request has finished."""
    await old.idle.wait()
    await old.stack.aclose()


async def watch(paths: Iterable[Path], reload: Callable[[], Awaitable[bool]]) -> None:
    """Reload whenever one of `paths` changes (`server.reload: watch`); editors' bursts of writes count once."""
    import watchfiles

    folders = {p.parent for p in paths}
    names = {p.resolve() for p in paths}
    async for changes in watchfiles.awatch(*folders, debounce=300, recursive=False):
        if any(Path(changed).resolve() in names for _, changed in changes):
            await reload()


class GatewayServer(uvicorn.Server):
    """uvicorn's server with SIGTERM as a drain (then exit 0) and SIGHUP as a reload."""

    def __init__(self, config: uvicorn.Config, app: ReloadingApp, *, drain_seconds: float) -> None:
        super().__init__(config)
        self.gateway = app
        self.drain_seconds = drain_seconds
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Like uvicorn's, without re-raising SIGTERM at the end: a drained shutdown is a clean exit."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        loop = self._loop
        if sig == signal.SIGHUP and loop is not None:
            loop.call_soon_threadsafe(lambda: loop.create_task(self.gateway.reload()))
        elif sig == signal.SIGTERM and not self.gateway.draining and loop is not None:
            self.gateway.draining = True
            log.info("SIGTERM: /readyz answers 503; serving for %g s more, then finishing the calls in flight",
                     self.drain_seconds)
            loop.call_soon_threadsafe(loop.call_later, self.drain_seconds, self._stop)
        else:
            super().handle_exit(sig, frame)

    def _stop(self) -> None:
        self.should_exit = True
