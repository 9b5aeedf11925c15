"""Call limits: rate limits per caller (and per caller and tool), and a cap on upstream calls in flight.

Rate limits use the `limits` library's moving-window strategy: a caller may make at most N calls in
any period of the stated length. Like a token bucket of N tokens it allows a burst of N, but it never
lets 2N calls through around a window boundary as a fixed window does, and the wait it reports is
exact (when the oldest counted call leaves the window). Its cost, one timestamp per counted call, is
small at the rates a tool gateway sees. Counters live in memory (one replica) or in Redis, shared by
every replica (`pip install 'limits[redis]'`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from gateway.auth.settings import RateLimits
from gateway.errors import ConfigError

if TYPE_CHECKING:  # `limits` loads with the first rate limiter: most gateways configure none
    from limits import RateLimitItem

log = logging.getLogger("gateway.limits")
_REDIS_SCHEMES = ("redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster")


@dataclass(frozen=True, slots=True)
class RateLimited:
    """A refused call: which limit it hit (`at most 60 per minute per caller`) and when to retry."""

    limit: str
    retry_after: int  # whole seconds, at least 1


@dataclass(frozen=True, slots=True)
class _Rule:
    item: RateLimitItem
    scope: str  # "caller" or "tool": what the counter is keyed by
    text: str


def _describe(item: RateLimitItem, per: str) -> str:
    unit = item.GRANULARITY.name
    period = unit if item.multiples == 1 else f"{item.multiples} {unit}s"
    return f"at most {item.amount} per {period} {per}"


def _rules(text: str | None, scope: str, per: str, where: str) -> list[_Rule]:
    if not text:
        return []
    from limits import parse_many

    try:
        items = parse_many(text)
    except ValueError:
        raise ConfigError(where, f"invalid rate limit {text!r}: write e.g. \"60/minute\" or "
                                 "\"5/second; 100/hour\"") from None
    return [_Rule(item, scope, _describe(item, per)) for item in items]


def _storage_uri(uri: str) -> tuple[str, dict[str, str]]:
    """`limits`' async storage URI for a configured one ("memory://", "redis://host:6379/0", ...)."""
    scheme = urlsplit(uri).scheme.lower()
    if scheme.startswith("async+"):
        return uri, {}
    options = {"implementation": "redispy"} if scheme in _REDIS_SCHEMES else {}
    return f"async+{uri}", options  # redis-py (limits[redis]) rather than limits' default async client


class RateLimiter:
    """Checks and counts calls against `RateLimits` (`server.rate_limits`).

    `per_caller` counts every call of a caller, whatever the tool; `per_tool` counts a caller's calls of
    one tool. A call passes only when every limit has room, and only a passing call is counted.
    """

    def __init__(self, settings: RateLimits, where: str = "server.rate_limits") -> None:
        self._rules = [*_rules(settings.per_caller, "caller", "per caller", f"{where}.per_caller"),
                       *_rules(settings.per_tool, "tool", "per caller for this tool", f"{where}.per_tool")]
        from limits.aio.strategies import MovingWindowRateLimiter
        from limits.errors import ConfigurationError, StorageError
        from limits.storage import storage_from_string

        uri, options = _storage_uri(settings.storage)
        self._storage_errors = (StorageError, TimeoutError)
        try:
            self._storage = storage_from_string(uri, wrap_exceptions=True, **options)
        except ConfigurationError as exc:
            hint = " (install it with: pip install 'limits[redis]')" if "redis" in uri else ""
            raise ConfigError(f"{where}.storage", f"cannot use rate limit storage {settings.storage!r}: "
                                                  f"{exc}{hint}") from None
        self._strategy = MovingWindowRateLimiter(self._storage)
        self._fail_closed = settings.on_storage_error == "fail_closed"
        self._timeout = settings.storage_timeout_seconds

    async def check(self, identity_key: str, tool: str) -> RateLimited | None:
        """None when the call may go ahead (and it is counted); else the limit it hit and the wait.

        If the storage cannot be reached or does not answer within `storage_timeout_seconds` (Redis down or
        slow), `on_storage_error` decides: fail_open (the default: a broken counter store must not take every
        tool down with it) lets the call go ahead with a warning, fail_closed refuses it.
        """
        keyed = [(rule, (rule.scope, identity_key) if rule.scope == "caller" else (rule.scope, identity_key, tool))
                 for rule in self._rules]
        try:
            async with asyncio.timeout(self._timeout):
                for rule, key in keyed:
                    if not await self._strategy.test(rule.item, *key):
                        return await self._refusal(rule, key)
                for rule, key in keyed:
                    if not await self._strategy.hit(rule.item, *key):  # another call took the last room meanwhile
                        return await self._refusal(rule, key)
        except self._storage_errors as exc:
            problem = str(exc) or f"no answer within {self._timeout:g} s"
            if self._fail_closed:
                log.warning("rate limit storage unavailable, call refused (on_storage_error: fail_closed): %s",
                            problem)
                return RateLimited(STORE_UNAVAILABLE, STORE_RETRY_SECONDS)
            log.warning("rate limit storage unavailable, call allowed unchecked: %s", problem)
        return None

    async def _refusal(self, rule: _Rule, key: tuple[str, ...]) -> RateLimited:
        stats = await self._strategy.get_window_stats(rule.item, *key)
        return RateLimited(rule.text, max(1, math.ceil(stats.reset_time - time.time())))


STORE_UNAVAILABLE = "the rate-limit counter store is unavailable and calls are refused until it answers"
STORE_RETRY_SECONDS = 5


class Busy(Exception):
    """No upstream slot became free in time."""

    def __init__(self, backend: str, in_flight: int) -> None:
        super().__init__(f"backend {backend!r} is busy ({in_flight} calls in flight)")
        self.backend = backend
        self.in_flight = in_flight


class ConcurrencyCap:
    """At most `limit` calls in flight to one backend; later calls queue (in order) for a free slot.

    It protects the backend from a burst the gateway would otherwise multiply, and keeps the gateway's
    own sockets and memory bounded. A call that cannot get a slot within its wait becomes `Busy`.
    """

    def __init__(self, backend: str, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"backend {backend!r}: max_concurrency must be at least 1, got {limit}")
        self.backend = backend
        self.limit = limit
        self.in_flight = 0
        self._slots = asyncio.Semaphore(limit)

    def slot(self, wait: float) -> _Slot:
        """`async with cap.slot(wait):` holds one slot for the block; Busy when none is free within `wait`."""
        return _Slot(self, wait)


class _Slot:
    """One held slot of a `ConcurrencyCap` (a plain class: this runs on every call)."""

    __slots__ = ("cap", "wait")

    def __init__(self, cap: ConcurrencyCap, wait: float) -> None:
        self.cap = cap
        self.wait = wait

    async def __aenter__(self) -> None:
        cap = self.cap
        if cap._slots.locked():  # only a call that has to queue needs a deadline (and its timer)
            try:
                async with asyncio.timeout(self.wait):
                    await cap._slots.acquire()
            except TimeoutError:
                raise Busy(cap.backend, cap.in_flight) from None
        else:
            await cap._slots.acquire()  # free and nobody waiting: returns at once
        cap.in_flight += 1

    async def __aexit__(self, *exc_info: object) -> None:
        self.cap.in_flight -= 1
        self.cap._slots.release()
