"""Each tenant's recent bodies (wire/reparse.py's turns), for its next body to be parsed by
reusing them. Kept once the provider has accepted the call, like every lesson, in the learned
state's bounds (bounded.py), their bytes counted against the tenant's share.

A tenant may be many conversations at once (one key for a team's agents): each new turn
replaces the one it was parsed from, so a conversation holds one place, and a tenant holds up
to TURNS_PER_TENANT of them, within half its share of bytes (the memo's entries share the
rest). A body is matched against only a few of them: while a tenant holds FEW, each; past
that, the two held bodies next to it in byte order (a search by halves, one memcmp a step),
which are the two sharing its longest prefix (a conversation's previous turn shares all but
its last items), and the most recent one. The two found there are the body's place to be
kept in (`Place`), carried to `keep` by the call: if they are still next to each other then,
nothing was kept between them and the body goes there, its bytes compared only with the one
before it (a copy of its bytes is held once: of another length, told at once).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from gateway.cache.bounded import LearnedState, LearnedTable
from gateway.wire.turn import Held

TURNS_PER_TENANT = 64
FEW = 4  # held bodies each tried by reparse.py; past it, those closest by bytes


# A body and the held bodies just before and after it in byte order (None past either end),
# as `near` found them: held by the call that read it, for as long as the call.
Place = tuple[bytes, Held | None, Held | None]


def _raw(held: Held) -> bytes:
    return held.raw


def _placed(ordered: tuple[Held, ...], raw: bytes, place: Place | None) -> int | None:
    """`bisect_right(ordered, raw)` where `place` says, if it was found for `raw` and its two
    bodies are still next to each other in `ordered` (by identity: no bytes compared); None
    if not known so."""
    if place is None or place[0] is not raw:
        return None
    _, low, high = place
    if low is None:
        return 0 if ordered and ordered[0] is high else None
    try:
        at = list(map(id, ordered)).index(id(low)) + 1
    except ValueError:
        return None
    return at if (ordered[at] if at < len(ordered) else None) is high else None


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
        return kept.recent if raw is None else self.near(tenant, raw)[0]

    def near(self, tenant: bytes, raw: bytes) -> tuple[tuple[Held, ...], Place | None]:
        """`held(tenant, raw)`, and `raw`'s place in byte order if it was searched for."""
        kept = self._table.get(tenant, "")
        if kept is None:
            return (), None
        if len(kept.recent) <= FEW:
            return kept.recent, None
        ordered = kept.ordered
        at = bisect_right(ordered, raw, key=_raw)
        place = raw, ordered[at - 1] if at else None, ordered[at] if at < len(ordered) else None
        near = ordered[max(at - 1, 0) : at + 1]
        latest = kept.recent[0]
        return (near if any(t is latest for t in near) else (*near, latest)), place

    def keep(
        self, tenant: bytes, turn: Held, base: Held | None = None, place: Place | None = None
    ) -> None:
        """`turn` first, in the place of `base` (the body it was parsed from) if given; the
        oldest forgotten past the count or the bytes. `place`: where `near` found its bytes."""
        kept = self._table.get(tenant, "")
        if kept is not None and turn is base and any(t is turn for t in kept.recent):
            # The body repeated the held one it was parsed from (reparse.py returned it): it
            # keeps its place in byte order, found by identity, no bytes compared.
            first = (turn, *(t for t in kept.recent if t is not turn))
            size = sum(held.size for held in first)  # the same bodies: within the bounds
            self._table.put(tenant, "", _Kept(first, kept.ordered), size)
            return
        # Its place among the held bodies, where `near` found it if nothing was kept there
        # since, else searched by halves. A body of the same bytes (a resend, or one call from
        # several connections at once) is held once, and is the one just before it there:
        # copies would fill the tenant's share with bodies that each match the next no better
        # than one does, and each step of the search would compare two of them whole. One
        # compare, not one with each held body (those of its length, a new session's first
        # turns, compare up to where they differ: a session id at the end).
        raw = turn.raw
        every = among = kept.ordered if kept is not None else ()
        at = _placed(every, raw, place)
        if at is None:  # not compared with the one it was parsed from (its longest prefix)
            among = every if base is None else tuple(t for t in every if t is not base)
            at = bisect_right(among, raw, key=_raw)
        same = among[at - 1] if at and among[at - 1].raw == raw else None
        recent: list[Held] = [turn]
        size = turn.size
        for held in kept.recent if kept is not None else ():
            if held is base or held is same or held.raw is raw:
                continue
            if len(recent) == TURNS_PER_TENANT or size + held.size > self._budget:
                break
            recent.append(held)
            size += held.size
        # Among the bodies that stay (not those it replaces: the one it was parsed from, a
        # conversation's one place, nor the same bytes), counted from its place among all.
        staying = {id(held) for held in recent[1:]}
        ordered = [t for t in every if id(t) in staying]
        if len(ordered) < len(among):
            at = len([t for t in among[:at] if id(t) in staying])
        ordered.insert(at, turn)
        self._table.put(tenant, "", _Kept(tuple(recent), tuple(ordered)), size)
