"""Which system-prompt lines of a prompt family vary between requests: learned, not guessed.

Per tenant and family (keyed by the system prompt's first line and the tools), count how
many requests carried each line. Once a family has been seen `min_requests` times, a line
present in fewer than `stable_share` of its requests — a user's name, company, plan —
is volatile. Bounded: at most MAX_LINES lines per family, and families in the learned
state's bytes (state/bounded.py), forgotten least recently used first; a tenant's
requests count only in its own families, so no caller can make another's lines volatile.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.cache.bounded import BoundedDict, LearnedState, LearnedTable

MAX_LINES = 2_000  # distinct lines counted per family
# A family's record, and each line it counts (an 8-byte digest, its count, a dict node):
# measured with tracemalloc, rounded up.
FAMILY_BYTES = 400
LINE_BYTES = 160


@dataclass(slots=True)
class FamilyLines:
    requests: int = 0
    counts: BoundedDict[bytes, int] = field(default_factory=lambda: BoundedDict(MAX_LINES))

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

    def observe(
        self, tenant: bytes, family: bytes, lines: list[str]
    ) -> tuple[set[int], Callable[[], None]]:
        """The indexes of this request's lines learned to be volatile, judged with this
        request counted; and the lesson that counts it, once the provider has accepted it."""
        stats = self._families.get(tenant, family) or FamilyLines()
        keys = [hashlib.blake2b(line.encode(), digest_size=8).digest() for line in lines]
        distinct = set(keys)

        def learn() -> None:
            counted = self._families.get(tenant, family) or FamilyLines()
            before = len(counted.counts)
            counted.requests += 1
            for key in distinct:
                counted.counts[key] = (counted.counts.get(key) or 0) + 1
            if counted.requests == 1 or len(counted.counts) != before:
                self._families.put(tenant, family, counted, counted.size)

        requests = stats.requests + 1
        if requests < self.min_requests:
            return set(), learn
        floor = self.stable_share * requests - 1  # this request counted: one more each
        return {
            i
            for i, (line, key) in enumerate(zip(lines, keys, strict=True))
            if line.strip() and (stats.counts.get(key) or 0) < floor
        }, learn
