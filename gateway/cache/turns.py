"""Each tenant's recent bodies (wire/reparse.py's turns), for its next body to be parsed by
reusing them. Kept once the provider has accepted the call, like every lesson, in the learned
state's bounds (bounded.py), their bytes counted against the tenant's share.

A tenant may be many conversations at once (one key for a team's agents): each new turn
replaces the one it was parsed from, so a conversation holds one place, and a tenant holds up
to TURNS_PER_TENANT of them, within half its share of bytes (the memo's entries share the
rest). A body is matched against only a few of them: while a tenant holds FEW, each; past
that, the two held bodies next to it in byte order (a search by halves, one memcmp a step),
which are the two sharing its longest prefix (a conversation's previous turn shares all but
its last items), and the most recent one.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from gateway.cache.bounded import LearnedState, LearnedTable
from gateway.wire.turn import Held

TURNS_PER_TENANT = 64
FEW = 4  # held bodies each tried by reparse.py; past it, those closest by bytes


def _raw(held: Held) -> bytes:
    return held.raw


@dataclass(frozen=True, slots=True)
class _Kept:
    recent: tuple[Held, ...]  # most recent first
    ordered: tuple[Held, ...]  # the same, by their bytes


class Turns:
    def __init__(self, state: LearnedState | None = None) -> None:
        state = LearnedState.default() if state is None else state
        self._table: LearnedTable[str, _Kept] = LearnedTable(state, "turns")
        self._budget = state.per_tenant_max_bytes // 2

    def held(self, tenant: bytes, raw: bytes | None = None) -> tuple[Held, ...]:
        """The tenant's bodies, most recent first; given the body to parse, only those worth
        matching it against (the module's docstring)."""
        kept = self._table.get(tenant, "")
        if kept is None:
            return ()
        if raw is None or len(kept.recent) <= FEW:
            return kept.recent
        ordered = kept.ordered
        at = bisect_right(ordered, raw, key=_raw)
        near = ordered[max(at - 1, 0) : at + 1]
        latest = kept.recent[0]
        return near if any(t is latest for t in near) else (*near, latest)

    def keep(self, tenant: bytes, turn: Held, base: Held | None = None) -> None:
        """`turn` first, in the place of `base` (the body it was parsed from) if given; the
        oldest forgotten past the count or the bytes."""
        kept = self._table.get(tenant, "")
        if kept is not None and turn is base and any(t is turn for t in kept.recent):
            # The body repeated the held one it was parsed from (reparse.py returned it): it
            # keeps its place in byte order, found by identity, no bytes compared.
            first = (turn, *(t for t in kept.recent if t is not turn))
            size = sum(held.size for held in first)  # the same bodies: within the bounds
            self._table.put(tenant, "", _Kept(first, kept.ordered), size)
            return
        ordered = [t for t in kept.ordered if t is not turn] if kept else []
        at = bisect_right(ordered, turn.raw, key=_raw)
        # A body of the same bytes (a resend, or one call from several connections at once)
        # is held once: copies would fill the tenant's share with bodies that each match the
        # next no better than one does, and each step of the search by halves would compare
        # two of them whole (a memcmp of the body; bytes of another length compare at once).
        same = ordered[at - 1] if at and ordered[at - 1].raw == turn.raw else None
        recent: list[Held] = [turn]
        size = turn.size
        for held in kept.recent if kept is not None else ():
            if held is base or held is same or held.raw is turn.raw:
                continue
            if len(recent) == TURNS_PER_TENANT or size + held.size > self._budget:
                break
            recent.append(held)
            size += held.size
        staying = {id(held) for held in recent}
        ordered.insert(at, turn)
        ordered = [t for t in ordered if id(t) in staying]
        self._table.put(tenant, "", _Kept(tuple(recent), tuple(ordered)), size)
