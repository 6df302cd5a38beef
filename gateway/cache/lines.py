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
from collections import OrderedDict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import compress, count, repeat

from gateway.cache.bounded import LearnedState, LearnedTable
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
    again, or a few that differ in a line or two (a user's name, a project's folder): the
    set of lines counted last (`last`, the very set a call sends where the rule looked it
    up, system_lines.py) runs, each of its lines counted `pending` more than `counts` holds
    for it. A call that carries it again adds one to `pending`; another set pays what is
    owed to the lines it lacks, and its own new lines start running (held less `pending`):
    its lines shared with the last stay as they are. So a repeated prompt costs O(1) to
    learn and, while none of its lines is below the floor (`least`), to judge, and another
    set costs its differences (and a pass or two over its lines in C).

    The order of `counts` is what counting each call would make where it matters, for the
    lines forgotten first: a line stops running as the most recent of those that do not
    run (in the order of the last set that held it, as each call's lines were made most
    recent in the order of its set), and a running line, among the most recent, is never
    forgotten while the set fits the bound (those past it are forgotten first)."""

    requests: int = 0
    # Each line's count (a line of `last`: less `pending`), least recent first but for the
    # lines of `last`, which sit anywhere (they count as the most recent).
    counts: OrderedDict[int, int] = field(default_factory=OrderedDict)
    last: frozenset[int] | None = None
    pending: int = 0  # what each line of `last` counts beyond what `counts` holds
    # At most the least count in `counts` of a line of `last`, `pending` aside: the least of
    # the last sets' new lines (those shared keep their counts).
    least: int = 0
    low: tuple[int, ...] = ()  # the lines of `last` counted below `low_at`, `pending` aside
    low_at: float = -math.inf  # (none asked for yet)

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

    def peek(self, keys: Iterable[int]) -> Iterator[int]:
        """What `counts` holds for each key (0 for one it does not), `pending` aside."""
        return map(self.counts.get, keys, repeat(0))

    def count(self, lines: frozenset[int]) -> None:
        """One more for each of `lines`, another set than `last`: what the two sets share
        stays as it is (their differences by set operations in C, then one step each)."""
        counts, last, pending = self.counts, self.last or frozenset(), self.pending
        if len(lines) > MAX_LINES:  # past the bound: each line counted, the oldest forgotten
            self._count_each(lines)
            return
        gone = last - lines  # stop running: paid, the most recent of those not running
        for key in filter(gone.__contains__, last) if len(gone) > 1 else gone:
            counts[key] += pending
            counts.move_to_end(key)
        pending += 1  # this call, for each of `lines`
        least = self.least if last else math.inf
        low = [key for key in self.low if key in lines]  # the shared lines below `low_at`
        for key in lines - last:  # start running (where they sit is no matter)
            held = counts[key] = counts.get(key, 0) + 1 - pending
            least = min(least, held)
            if held < self.low_at:
                low.append(key)
        while len(counts) > MAX_LINES:  # the oldest of those not running
            key = next(iter(counts))
            if key in lines:
                counts.move_to_end(key)  # running: where it sits is no matter
            else:
                del counts[key]
        self.last, self.pending, self.low = lines, pending, tuple(low)
        self.least = 0 if least == math.inf else int(least)

    def _count_each(self, lines: frozenset[int]) -> None:
        """Counts each line as counting each call did, the running ones paid first: a set past
        the bound does not run. (Where they sit is no matter: every line not in `lines` is
        forgotten, as the oldest.)"""
        counts, last = self.counts, self.last or frozenset()
        for key in last:
            counts[key] += self.pending
        for key in lines:
            counts[key] = counts.get(key, 0) + 1
            counts.move_to_end(key)
        while len(counts) > MAX_LINES:
            counts.popitem(last=False)
        self.last, self.pending, self.least = None, 0, 0
        self.low, self.low_at = (), -math.inf

    def below(self, threshold: float) -> tuple[int, ...]:
        """The lines of `last` counted below `threshold` in `counts` (`pending` aside). A line
        keeps its count in `counts` while it runs, and each call learned adds one to
        `pending` and the share to the floor: the threshold (floor less `pending`) only falls
        (a share above 1 aside). So the lines found below a threshold as high, kept in `low`
        (count() keeps the shared ones and adds the new ones below), are the only
        candidates: a call looks at the few lines below the floor, and only the first call
        of a family passes over all its lines (in C).
        """
        if threshold > self.low_at:
            keys: Collection[int] = self.last or ()
            self.low = tuple(compress(keys, map(threshold.__gt__, self.peek(keys))))
        elif threshold < self.low_at:
            self.low = tuple(compress(self.low, map(threshold.__gt__, self.peek(self.low))))
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
        # Claude Code's prompt: ~26 -> ~6 us). No count owed: no set runs (none came yet
        # that fits the bound), `counts` holds each line's.
        if not pending:
            if min(stats.peek(lines), default=floor) >= floor:
                return set()
            return set(compress(count(), map(floor.__gt__, stats.peek(lines))))
        # Another set than the running one (a prompt of the family that differs in a line or
        # two): its lines the last set lacks count what `counts` holds, each it shares
        # `pending` more, and only those of the last set's below the floor can be below.
        last = stats.last or frozenset()
        fresh = tuple(distinct.difference(last))
        low = list(compress(fresh, map(floor.__gt__, stats.peek(fresh))))
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
        counted.count(seen.lines)
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
