"""Cold-prefix coalescing: concurrent calls on an uncached prefix wait for the first one.

A provider makes a cache entry readable only once the response that writes it has begun,
so N parallel calls on a new prefix all pay to write it. With coalescing the first call
goes upstream at once and the others wait (bounded) until its response has begun, then
go and read. Opt-in per step: waiting trades a little latency for the cache read.
"""

from __future__ import annotations

import asyncio
import contextlib


class Coalescer:
    def __init__(self, max_wait_s: float) -> None:
        self.max_wait_s = max_wait_s
        self._leaders: dict[bytes, asyncio.Event] = {}

    async def join(self, prefix: bytes) -> asyncio.Event | None:
        """The leader gets an event to `release` once its response begins; a follower waits
        for the leader (at most `max_wait_s`) and gets None."""
        leader = self._leaders.get(prefix)
        if leader is None:
            started = self._leaders[prefix] = asyncio.Event()
            return started
        # A slow leader must not hold its followers without end: they go after max_wait_s.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(leader.wait(), self.max_wait_s)
        return None

    def release(self, prefix: bytes, started: asyncio.Event) -> None:
        started.set()
        if self._leaders.get(prefix) is started:
            del self._leaders[prefix]
