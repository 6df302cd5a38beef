"""The emulated prompt cache: entries per workspace and prefix digest, lookback, TTLs, billing.

Sans-IO: the caller passes the clock. Rules (docs/wire.md#anthropic-prompt-caching): breakpoints,
lookback, availability, minimum length, TTLs and per-workspace isolation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate

from gateway.emulator.anthropic.prompt import Prompt, Ttl

TTL_SECONDS: dict[Ttl, float] = {"5m": 300.0, "1h": 3600.0}


@dataclass(frozen=True, slots=True)
class CacheUsage:
    input_tokens: int  # after the last written breakpoint, plus the request overhead
    cache_read_input_tokens: int
    cache_creation_5m: int
    cache_creation_1h: int

    @property
    def cache_creation_input_tokens(self) -> int:
        return self.cache_creation_5m + self.cache_creation_1h

    @property
    def uncached_tokens(self) -> int:
        """Prefilled like fresh input: all but the cache reads (writes are prefilled too)."""
        return self.input_tokens + self.cache_creation_input_tokens

    @property
    def cached_tokens(self) -> int:
        return self.cache_read_input_tokens


@dataclass(slots=True)
class _Entry:
    ttl: Ttl
    expires_at: float  # the last use's request start plus the TTL
    available_at: float  # when the writing response began


class PromptCache:
    """Prefix entries keyed by (workspace, cumulative digest), least recently used evicted."""

    def __init__(self, lookback_blocks: int = 20, max_entries: int = 100_000) -> None:
        self.lookback_blocks = lookback_blocks
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, bytes], _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def apply(
        self,
        workspace: str,
        prompt: Prompt,
        min_cacheable_tokens: int,
        now: float,
        response_start: Callable[[CacheUsage], float],
    ) -> CacheUsage:
        """Read the longest usable prefix, write the breakpoints beyond it, and bill the request.

        `response_start(usage)` says when this request's response begins (it depends on how
        much was read): the entries it writes become readable only from then.
        """
        blocks = prompt.blocks
        prefix = list(accumulate(block.tokens for block in blocks))
        breakpoints = [(i, ttl) for i, block in enumerate(blocks) if (ttl := block.ttl) is not None]
        hit = -1
        for position, _ in breakpoints:
            # Walking back stops at the best hit so far: only a longer prefix can improve it.
            for candidate in range(position, max(position - self.lookback_blocks, hit), -1):
                entry = self._live((workspace, blocks[candidate].digest), now)
                if entry is not None and entry.available_at <= now:
                    entry.expires_at = max(entry.expires_at, now + TTL_SECONDS[entry.ttl])
                    self._entries.move_to_end((workspace, blocks[candidate].digest))
                    hit = candidate
                    break
        read = prefix[hit] if hit >= 0 else 0
        writes = [
            (i, ttl) for i, ttl in breakpoints if i > hit and prefix[i] >= min_cacheable_tokens
        ]
        written = prefix[writes[-1][0]] if writes else read
        # Mixed TTLs: from the hit to the last 1h breakpoint bills as 1h, the rest as 5m.
        hour_end = max((prefix[i] for i, ttl in writes if ttl == "1h"), default=read)
        usage = CacheUsage(
            input_tokens=prompt.total_tokens - written,
            cache_read_input_tokens=read,
            cache_creation_5m=written - hour_end,
            cache_creation_1h=hour_end - read,
        )
        available_at = response_start(usage)
        for i, ttl in writes:
            self._write((workspace, blocks[i].digest), ttl, now, available_at)
        return usage

    def _live(self, key: tuple[str, bytes], now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at <= now:
            del self._entries[key]
            return None
        return entry

    def _write(self, key: tuple[str, bytes], ttl: Ttl, now: float, available_at: float) -> None:
        expires_at = now + TTL_SECONDS[ttl]
        entry = self._live(key, now)
        if entry is None:
            self._entries[key] = _Entry(ttl, expires_at, available_at)
        else:
            # A parallel request already writing the same prefix: keep its earlier start.
            entry.available_at = min(entry.available_at, available_at)
            if expires_at >= entry.expires_at:
                entry.ttl, entry.expires_at = ttl, expires_at
            self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
