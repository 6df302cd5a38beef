"""Every call to the state store goes through here: bounded in time, counted when it fails.

Three waits, each with its own limit:

- a free connection: at most `max_connections` calls run at once; the others queue for up
  to `pool_wait_s`. A full pool is load, not an outage: past the wait a call fails with
  `StoreBusy`, and the store is not judged unreachable.
- the call itself: `timeout_s`, from the moment it has a connection (the queue does not
  count against it). A call past it fails with `StoreSlow` while the store is not judged
  unreachable: its caller may try again, and must not fail open.
- the outage signal: the store is judged unreachable after a connection error (refused,
  reset), or once calls have failed for `outage_after_s` without one success between (a
  frozen or unroutable server). Slow calls under load do not make an outage while others succeed.
  While unreachable, calls fail at once for a second (no request waits on a dead server
  each time), then are let through to probe; the first success ends the outage. The log
  says so once when it starts, at most once per interval while it lasts, and once when it
  ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

T = TypeVar("T")
LOG = logging.getLogger("gateway.state")
PROBE_EVERY_S = 1.0


class StoreUnreachable(Exception):
    """The state store did not answer (in time): the caller applies its outage policy."""


class StoreSlow(StoreUnreachable):
    """This call failed (timed out) but the store is not judged unreachable: a caller may
    try again (an idempotent call), or apply its outage policy to this call alone."""


class StoreBusy(StoreUnreachable):
    """No connection was free within the pool wait: the store is up, this replica is over
    its connection budget. Not an outage: callers must not fail open on it."""


class StateHealth:
    def __init__(
        self,
        errors: Any,
        timeout_s: float,
        log_interval_s: float = 30.0,
        *,
        max_connections: int = 64,
        pool_wait_s: float = 1.0,
        outage_after_s: float = 1.0,
    ) -> None:
        self.errors = errors  # gateway_state_errors_total
        self.timeout_s = timeout_s
        self.log_interval_s = log_interval_s
        self.pool_wait_s = pool_wait_s
        self.outage_after_s = outage_after_s
        # Created on first use: it belongs to the event loop that runs the calls.
        self._slots: asyncio.Semaphore | None = None
        self._max_connections = max_connections
        self._down_since: float | None = None
        self._probe_at = 0.0
        self._logged_at = 0.0
        self._failed_since_log = 0
        self._failing_since: float | None = None  # the first failure since a success

    @property
    def degraded(self) -> bool:
        return self._down_since is not None

    async def run(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        if self._down_since is not None and time.monotonic() < self._probe_at:
            self._failed(operation, None)
            raise StoreUnreachable(operation)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_connections)
        slots = self._slots
        try:
            async with asyncio.timeout(self.pool_wait_s):
                await slots.acquire()
        except TimeoutError:
            self.errors.labels(operation).inc()
            raise StoreBusy(operation) from None
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await call()
        except (RedisError, OSError, TimeoutError, RuntimeError) as error:
            if isinstance(error, RuntimeError) and not _transport_closed(error):
                raise
            down = self._failed(operation, error)
            raise (StoreUnreachable if down else StoreSlow)(operation) from None
        finally:
            slots.release()
        self._failing_since = None
        if self._down_since is not None:
            LOG.warning(
                "state store reachable again after %.1f s; enforcing budgets and rate limits",
                max(0.0, time.monotonic() - self._down_since),
            )
            self._down_since = None
        return result

    def _failed(self, operation: str, error: BaseException | None) -> bool:
        """Counts a failed call; True when the store is (now) judged unreachable."""
        now = time.monotonic()
        self.errors.labels(operation).inc()
        self._failed_since_log += 1
        if error is None:  # skipped during an outage
            if now - self._logged_at >= self.log_interval_s:
                self._log(now, "state store still unreachable")
            return True
        refused = isinstance(error, RedisConnectionError | ConnectionError | RuntimeError)
        if self._failing_since is None:
            self._failing_since = now
        quiet = now - self._failing_since >= self.outage_after_s
        if self._down_since is None and not refused and not quiet:
            return False  # slow, not gone: others still get answers
        self._probe_at = now + PROBE_EVERY_S
        if self._down_since is None:
            self._down_since = now
            self._log(now, f"state store unreachable ({operation}: {_describe(error)})")
        elif now - self._logged_at >= self.log_interval_s:
            self._log(now, "state store still unreachable")
        return True

    def _log(self, now: float, what: str) -> None:
        LOG.warning(
            "%s; %d operations failed since the last report; budgets and rate limits follow"
            " each key's last known state and on_outage policy until it is back",
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


def _transport_closed(error: RuntimeError) -> bool:
    """A reset connection that redis-py still writes to: the event loop refuses with a
    RuntimeError ("unable to perform operation on <TCPTransport closed=True ...>; the
    handler is closed", uvloop) instead of an OSError. The store went away; nothing else."""
    return "closed" in str(error)
