"""Which system-prompt lines of a prompt family vary between requests: learned, not guessed.

Per tenant and prompt family (as the volatile rule knows it before its lines are judged,
rewrite/volatile.py), count how many accepted requests carried each line. Once a family has
been seen `min_requests` times, a line present in fewer than `stable_share` of its requests
— a user's name, company, plan — is volatile. Bounded: at most MAX_LINES lines per family,
and families in the learned state's bytes (bounded.py), forgotten least recently used
first; a tenant's requests count only in its own families, so no caller can make another's
lines volatile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.cache.bounded import BoundedDict, LearnedState, LearnedTable
from gateway.rewrite.snapshot import LinesSeen

MAX_LINES = 2_000  # distinct lines counted per family
# A family's record, and each line it counts (its key, its count, a dict node):
# measured with tracemalloc, rounded up.
FAMILY_BYTES = 400
LINE_BYTES = 160


@dataclass(slots=True)
class FamilyLines:
    requests: int = 0
    counts: BoundedDict[int, int] = field(default_factory=lambda: BoundedDict(MAX_LINES))

    @property
    def size(self) -> int:
        return FAMILY_BYTES + LINE_BYTES * len(self.counts)


class LineStats:
    def __init__(
        self,
        min_requests: int = 5,
        stable_share: float = 0.5,
        state: LearnedState | None = None,
    ) -> None:
        self.min_requests = min_requests
        self.stable_share = stable_share
        state = LearnedState.default() if state is None else state
        self._families: LearnedTable[bytes, FamilyLines] = LearnedTable(state, "lines")

    def varying(self, tenant: bytes, family: bytes, lines: list[int]) -> set[int]:
        """The indexes of a request's lines (their keys) learned to be volatile, judged
        with this request counted."""
        stats = self._families.get(tenant, family)
        requests = (stats.requests if stats is not None else 0) + 1
        if stats is None or requests < self.min_requests:
            return set()
        floor = self.stable_share * requests - 1  # this request counted: one more each
        # A judgement, not a use: learn() refreshes them. Most calls of a known family find
        # every line at or above the floor: the least count (in C) says so (237 lines of
        # Claude Code's prompt: ~26 -> ~6 us).
        if min(stats.counts.peek_or(lines, 0), default=floor) >= floor:
            return set()
        counts = stats.counts.peek(lines)
        return {i for i, count in enumerate(counts) if (count or 0) < floor}

    def learn(self, seen: LinesSeen) -> None:
        """Counts a request's lines in its family, once the provider has accepted it."""
        counted = self._families.get(seen.tenant, seen.family) or FamilyLines()
        before = len(counted.counts)
        counted.requests += 1
        counted.counts.count(seen.lines)
        if counted.requests == 1 or len(counted.counts) != before:
            self._families.put(seen.tenant, seen.family, counted, counted.size)
