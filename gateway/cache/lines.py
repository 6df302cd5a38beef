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

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from itertools import compress, count
from typing import cast

from gateway.cache.bounded import BoundedDict, LearnedState, LearnedTable
from gateway.rewrite.snapshot import LinesSeen

MAX_LINES = 2_000  # distinct lines counted per family
# A family's record, each line it counts (its key, its count, a dict node), and each line of
# the set it counted last (a slot of the set, its key where not one counts holds, and a slot
# of `low` where it is below the floor): measured with tracemalloc, rounded up.
FAMILY_BYTES = 400
LINE_BYTES = 160
LAST_LINE_BYTES = 88


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
    low: tuple[int, ...] = ()  # the lines of `last` counted below `low_at`, `pending` aside
    low_at: float = -math.inf  # (none asked for since `last` came)

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

    def below(self, threshold: float) -> tuple[int, ...]:
        """The lines of `last` counted below `threshold` in `counts` (`pending` aside). Their
        counts stay as they are while `last` repeats, and a repeat's threshold falls (the
        floor rises by the share, the owed counts by one), so those found below a threshold
        as high are the only candidates: a call looks at the few lines below the floor, and
        only the first call after a set came passes over all its lines (in C)."""
        peek = self.counts.peek_or
        if threshold > self.low_at:
            keys: Collection[int] = self.last or ()
            self.low = tuple(compress(keys, map(threshold.__gt__, peek(keys, 0))))
        elif threshold < self.low_at:
            self.low = tuple(compress(self.low, map(threshold.__gt__, peek(self.low, 0))))
        self.low_at = threshold
        return self.low


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
            return _indexes(lines, stats.below(floor - pending))  # those below: kept
        # A judgement, not a use: learn() refreshes them. Most calls of a known family find
        # every line at or above the floor: the least count (in C) says so (237 lines of
        # Claude Code's prompt: ~26 -> ~6 us).
        counts = stats.counts
        if not pending:
            if min(counts.peek_or(lines, 0), default=floor) >= floor:
                return set()
            return set(compress(count(), map(floor.__gt__, counts.peek_or(lines, 0))))
        # Another set than the one owed counts (a prompt of the family that differs in a
        # line or two): its lines the last set lacks count as counted, each it shares is
        # owed `pending` more, and only those of the last set's below the floor can be below.
        last = stats.last or frozenset()
        fresh = tuple(distinct.difference(last))
        low = list(compress(fresh, map(floor.__gt__, counts.peek_or(fresh, 0))))
        if stats.least + pending < floor:
            low += [key for key in stats.below(floor - pending) if key in distinct]
        return _indexes(lines, low)

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
        counted.low, counted.low_at = (), -math.inf  # another set's: found again when asked
        self._families.put(seen.tenant, seen.family, counted, counted.size)


# Up to this many keys are found by a scan each (tuple.index, in C; ~1.7 us over 210 lines):
# more by one pass over the lines testing each against the set (~4.6 us).
FEW = 2


def _indexes(lines: Sequence[int], keys: Collection[int]) -> set[int]:
    """The indexes of `keys` among `lines` (each key may be more than one line's)."""
    if len(keys) > FEW:
        wanted = frozenset(keys)
        return set(compress(count(), map(wanted.__contains__, lines)))
    found = set()
    for key in keys:
        at = -1
        try:
            while True:
                at = lines.index(key, at + 1)
                found.add(at)
        except ValueError:
            pass  # no more of it
    return found
