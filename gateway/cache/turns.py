"""Each tenant's recent bodies (wire/reparse.py's turns), for its next body to be parsed by
reusing them. Kept once the provider has accepted the call, like every lesson, in the learned
state's bounds (bounded.py): a few turns a tenant, their bytes counted against its share."""

from __future__ import annotations

from gateway.cache.bounded import LearnedState, LearnedTable
from gateway.wire.turn import Held

# A conversation and a few beside it (Claude Code's sub-agents, a title call): each new turn
# replaces the one it was parsed from, so one conversation holds one slot.
TURNS_PER_TENANT = 4


class Turns:
    def __init__(self, state: LearnedState | None = None) -> None:
        state = LearnedState.default() if state is None else state
        self._table: LearnedTable[str, tuple[Held, ...]] = LearnedTable(state, "turns")

    def held(self, tenant: bytes) -> tuple[Held, ...]:
        """The tenant's bodies, most recent first."""
        return self._table.get(tenant, "") or ()

    def keep(self, tenant: bytes, turn: Held, base: Held | None = None) -> None:
        """`turn` first, in the place of `base` (the body it was parsed from) if given."""
        held = tuple(t for t in self.held(tenant) if t is not base and t.raw is not turn.raw)
        kept = (turn, *held)[:TURNS_PER_TENANT]
        self._table.put(tenant, "", kept, sum(t.size for t in kept))
