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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from gateway.cache.bounded import BoundedDict, LearnedState, LearnedTable
from gateway.rewrite.snapshot import LinesSeen

MAX_LINES = 2_000  # distinct lines counted per family
# A family's record, each line it counts (its key, its count, a dict node), and each line of
# the set it counted last (a slot of the set, its key where not one counts holds): measured
# with tracemalloc, rounded up.
FAMILY_BYTES = 400
LINE_BYTES = 160
LAST_LINE_BYTES = 80


@dataclass(slots=True)
class FamilyLines:
    """A family's line counts. The calls of a family mostly send one system prompt again and
    again: the set of lines counted last (`last`, the very set a call sends where the rule
    looked it up, system_lines.py) is counted once when it comes, and each call after it
    that carries it again only adds to `pending`, the counts it owes each of those lines,
    paid into `counts` when another set comes. Its lines are the most recent in `counts`
    already, so the counts and their order are what counting each call would make, and a
    repeated prompt costs O(1) to learn and, while none of its lines is below the floor
    (`least`), to judge."""

    requests: int = 0
    counts: BoundedDict[int, int] = field(default_factory=lambda: BoundedDict(MAX_LINES))
    last: frozenset[int] | None = None
    pending: int = 0  # requests carrying `last` since it came, not yet in `counts`
    least: int = 0  # the least count in `counts` of a line of `last`, `pending` aside

    @property
    def size(self) -> int:
        held = len(self.last) if self.last is not None else 0
        return FAMILY_BYTES + LINE_BYTES * len(self.counts) + LAST_LINE_BYTES * held

    def repeats(self, lines: frozenset[int]) -> bool:
        """Whether `lines` is the set counted last (by identity, else compared), and owed
        counts may wait: each of its lines is held (a set larger than the bound is not)."""
        last = self.last
        if last is None:
            return False
        return lines is last or (len(lines) == len(last) and lines == last)


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

    def varying(
        self, tenant: bytes, family: bytes, lines: Sequence[int], distinct: frozenset[int]
    ) -> set[int]:
        """The indexes of a request's lines (their keys; `distinct`: as a set) learned to be
        volatile, judged with this request counted."""
        stats = self._families.get(tenant, family)
        requests = (stats.requests if stats is not None else 0) + 1
        if stats is None or requests < self.min_requests:
            return set()
        floor = self.stable_share * requests - 1  # this request counted: one more each
        pending = stats.pending
        if stats.repeats(distinct):  # the set counted last: its least count says (O(1))
            if stats.least + pending >= floor:
                return set()
        # A judgement, not a use: learn() refreshes them. Most calls of a known family find
        # every line at or above the floor: the least count (in C) says so (237 lines of
        # Claude Code's prompt: ~26 -> ~6 us).
        elif not pending and min(stats.counts.peek_or(lines, 0), default=floor) >= floor:
            return set()
        counts = stats.counts.peek_or(lines, 0)
        if pending:  # owed to the lines of the set counted last
            last = stats.last or frozenset()
            counts = map(lambda key, c: c + pending if key in last else c, lines, counts)
        return {i for i, count in enumerate(counts) if count < floor}

    def learn(self, seen: LinesSeen) -> None:
        """Counts a request's lines in its family, once the provider has accepted it."""
        counted = self._families.get(seen.tenant, seen.family) or FamilyLines()
        counted.requests += 1
        if counted.repeats(seen.lines):
            counted.pending += 1  # nothing held changes: the table's size neither
            # An equal set, another object (calls in flight derived their own): the newest
            # is the one the memo holds, so the next calls are recognized by identity.
            counted.last = seen.lines
            return
        counts = counted.counts
        if counted.pending:
            counts.add(cast(frozenset[int], counted.last), counted.pending)
        counts.count(seen.lines)
        fits = len(seen.lines) <= counts.max_entries  # else some of its lines are not held
        counted.last = seen.lines if fits else None
        counted.pending = 0
        counted.least = min(counts.peek_or(seen.lines, 0), default=0)
        self._families.put(seen.tenant, seen.family, counted, counted.size)
