"""OpenAI's automatic prefix cache: entries per workspace, cache key and prefix digest.

Sans-IO: the caller passes the clock. Rules (docs/wire.md), by the model's caching generation:
- `rounded` (before GPT-5.6): every request caches its prefix at each block boundary, free;
  a read is the longest cached boundary, rounded down to a multiple of 128, and only from
  1,024 tokens. Retention `in_memory` keeps an entry 5 minutes idle (the low end of the
  documented 5–10) and at most an hour; `24h` keeps it 30 idle minutes (the documented
  typical case) and at most 24 hours.
- `exact` (GPT-5.6 and later): writes happen at breakpoints only (the last block in implicit
  mode, plus the explicitly marked ones), are billed from the read to the last breakpoint, and
  keep the entry 30 minutes after its last write or read (`ttl: "12h"`: 12 hours); a read
  reports the exact boundary.
Both: an entry is readable only once the response that writes it has begun (parallel requests
on a new prefix all miss), and never across workspaces or `prompt_cache_key`s — a key
separates groups of requests, whatever their prefixes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Literal

from gateway.catalog import ModelSpec
from gateway.emulator.openai.prompt import Prompt
from gateway.emulator.openai.validation import invalid

Retention = Literal["in_memory", "24h", "30m", "12h"]
GRANULARITY = 128
MAX_EXPLICIT_BREAKPOINTS = 4
# (idle seconds, at most this long after the write)
RETENTION_SECONDS: dict[Retention, tuple[float, float]] = {
    "in_memory": (300.0, 3600.0),
    "24h": (1800.0, 86_400.0),
    "30m": (1800.0, float("inf")),
    "12h": (43_200.0, float("inf")),
}


@dataclass(frozen=True, slots=True)
class CacheUsage:
    prompt_tokens: int  # everything, cached and written included (as OpenAI reports it)
    cached_tokens: int
    cache_write_tokens: int  # billed writes; always 0 before GPT-5.6
    long_ttl: bool = False  # the writes are 12-hour ones

    @property
    def uncached_tokens(self) -> int:
        return self.prompt_tokens - self.cached_tokens


@dataclass(slots=True)
class _Entry:
    retention: Retention
    expires_at: float
    hard_expiry: float
    available_at: float


Scope = tuple[str, str | None]  # workspace, prompt_cache_key


class PrefixCache:
    def __init__(self, min_tokens: int = 1024, max_entries: int = 100_000) -> None:
        self.min_tokens = min_tokens
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[Scope, bytes], _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def apply(
        self,
        scope: Scope,
        prompt: Prompt,
        *,
        exact: bool,
        retention: Retention,
        breakpoints: frozenset[int],
        now: float,
        response_start: Callable[[CacheUsage], float],
    ) -> CacheUsage:
        """Read the longest cached prefix, write what this request caches, and bill it.

        `breakpoints` (block indexes) matter only when `exact`; `response_start(usage)` says
        when this response begins: what it writes is readable from then on.
        """
        prefix = list(accumulate(block.tokens for block in prompt.blocks))
        hit = -1
        for index in range(len(prompt.blocks) - 1, -1, -1):
            if prefix[index] < self.min_tokens:
                break
            entry = self._live((scope, prompt.blocks[index].digest), now)
            if entry is not None and entry.available_at <= now:
                idle, _ = RETENTION_SECONDS[entry.retention]
                entry.expires_at = min(max(entry.expires_at, now + idle), entry.hard_expiry)
                self._entries.move_to_end((scope, prompt.blocks[index].digest))
                hit = index
                break
        read = prefix[hit] if hit >= 0 else 0
        if not exact:
            read -= read % GRANULARITY
            writes = [i for i in range(hit + 1, len(prefix)) if prefix[i] >= self.min_tokens]
            written = 0
        else:
            writes = sorted(i for i in breakpoints if i > hit and prefix[i] >= self.min_tokens)
            written = prefix[writes[-1]] - read if writes else 0
        usage = CacheUsage(prompt.total_tokens, read, written, long_ttl=retention == "12h")
        available_at = response_start(usage)
        for index in writes:
            self._write((scope, prompt.blocks[index].digest), retention, now, available_at)
        return usage

    def _live(self, key: tuple[Scope, bytes], now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at <= now:
            del self._entries[key]
            return None
        return entry

    def _write(
        self, key: tuple[Scope, bytes], retention: Retention, now: float, available_at: float
    ) -> None:
        idle, most = RETENTION_SECONDS[retention]
        entry = self._live(key, now)
        if entry is None:
            self._entries[key] = _Entry(
                retention, min(now + idle, now + most), now + most, available_at
            )
        else:
            # A parallel request already writing the same prefix: keep its earlier start.
            entry.available_at = min(entry.available_at, available_at)
            if now + idle >= entry.expires_at:
                entry.retention = retention
                entry.hard_expiry = max(entry.hard_expiry, now + most)
                entry.expires_at = min(now + idle, entry.hard_expiry)
            self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def requested_caching(
    body: Mapping[str, Any], spec: ModelSpec, prompt: Prompt
) -> tuple[Retention, frozenset[int]]:
    """The retention a request's entries get, and (GPT-5.6+) the breakpoints its writes
    happen at; a request asking what its model does not offer is refused (400)."""
    if spec.openai_cache != "exact":
        retention = body.get("prompt_cache_retention")
        if retention == "24h" and not spec.extended_retention:
            raise invalid(
                f"prompt_cache_retention '24h' is not supported with model {spec.id}.",
                "prompt_cache_retention",
            )
        # 24h is the default where the model offers it (for organizations without zero
        # data retention, which the emulator does not model).
        default: Retention = "24h" if spec.extended_retention else "in_memory"
        return (retention or default), frozenset()
    options = body.get("prompt_cache_options") or {}
    marked = [i for i, block in enumerate(prompt.blocks) if block.breakpoint]
    explicit = options.get("mode") == "explicit"
    allowed = MAX_EXPLICIT_BREAKPOINTS if explicit else MAX_EXPLICIT_BREAKPOINTS - 1
    if len(marked) > allowed:
        raise invalid(
            f"A maximum of {allowed} explicit prompt_cache_breakpoint markers may be "
            f"provided in {'explicit' if explicit else 'implicit'} mode. Found {len(marked)}.",
            "prompt_cache_options.mode",
        )
    points = set(marked)
    if not explicit and prompt.blocks:
        points.add(len(prompt.blocks) - 1)
    ttl: Retention = "12h" if options.get("ttl") == "12h" else "30m"
    return ttl, frozenset(points)
