"""Which system-prompt lines of a prompt family vary between requests: learned, not guessed.

Per family (keyed by the system prompt's first line and the tools), count how many
requests carried each line. Once a family has been seen `min_requests` times, a line
present in fewer than `stable_share` of its requests — a user's name, company, plan —
is volatile. Bounded: families and lines are forgotten least recently used first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from gateway.state.bounded import BoundedDict


@dataclass(slots=True)
class FamilyLines:
    requests: int = 0
    counts: BoundedDict[bytes, int] = field(default_factory=lambda: BoundedDict(2_000))


class LineStats:
    def __init__(
        self, min_requests: int = 5, stable_share: float = 0.5, max_families: int = 10_000
    ) -> None:
        self.min_requests = min_requests
        self.stable_share = stable_share
        self._families: BoundedDict[bytes, FamilyLines] = BoundedDict(max_families)

    def observe(self, family: bytes, lines: list[str]) -> set[int]:
        """Counts this request's lines; returns the indexes of those learned to be volatile."""
        stats = self._families.setdefault(family, FamilyLines())
        stats.requests += 1
        keys = [hashlib.blake2b(line.encode(), digest_size=8).digest() for line in lines]
        for key in set(keys):
            stats.counts[key] = (stats.counts.get(key) or 0) + 1
        if stats.requests < self.min_requests:
            return set()
        floor = self.stable_share * stats.requests
        return {
            i
            for i, (line, key) in enumerate(zip(lines, keys, strict=True))
            if line.strip() and (stats.counts.get(key) or 0) < floor
        }
