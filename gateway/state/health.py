"""Every call to the state store goes through here: bounded in time, counted when it fails.

While the store is unreachable, calls fail at once for a second (no request waits on a
dead server each time), then one is let through to probe; the first success ends the
outage. The log says so once when it starts, at most once per interval while it lasts,
and once when it ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.exceptions import RedisError

T = TypeVar("T")
LOG = logging.getLogger("gateway.state")
PROBE_EVERY_S = 1.0


class StoreUnreachable(Exception):
    """The state store did not answer (in time): the caller applies its outage policy."""


class StateHealth:
    def __init__(self, errors: Any, timeout_s: float, log_interval_s: float = 30.0) -> None:
        self.errors = errors  # gateway_state_errors_total
        self.timeout_s = timeout_s
        self.log_interval_s = log_interval_s
        self._down_since: float | None = None
        self._probe_at = 0.0
        self._logged_at = 0.0
        self._failed_since_log = 0

    @property
    def degraded(self) -> bool:
        return self._down_since is not None

    async def run(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        now = time.monotonic()
        if self._down_since is not None and now < self._probe_at:
            self._failed(operation, now, None)
            raise StoreUnreachable(operation)
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await call()
        except (RedisError, OSError, TimeoutError) as error:
            self._failed(operation, time.monotonic(), error)
            raise StoreUnreachable(operation) from None
        if self._down_since is not None:
            LOG.warning(
                "state store reachable again after %.1f s; enforcing budgets and rate limits",
                now - self._down_since,
            )
            self._down_since = None
        return result

    def _failed(self, operation: str, now: float, error: BaseException | None) -> None:
        self.errors.labels(operation).inc()
        self._failed_since_log += 1
        if error is not None:
            self._probe_at = now + PROBE_EVERY_S
        if self._down_since is None:
            self._down_since = now
            self._log(now, f"state store unreachable ({operation}: {_describe(error)})")
        elif now - self._logged_at >= self.log_interval_s:
            self._log(now, "state store still unreachable")

    def _log(self, now: float, what: str) -> None:
        LOG.warning(
            "%s; %d operations failed since the last report; budgets and rate limits follow"
            " each key's on_outage policy until it is back",
            what,
            self._failed_since_log,
        )
        self._logged_at = now
        self._failed_since_log = 0


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "skipped"
    if isinstance(error, TimeoutError):
        return "timed out"
    return f"{type(error).__name__}: {error}"
