"""What the rewrite stages derived on accepted calls, per tenant: rewrite/memo.py's lookups.

Each value is a pure function of its key (a text, a block with the digest before it), so a
lookup returns what deriving it again would: the same body rewrites the same way with or
without it. Bounded in bytes with the rest of the learned state (bounded.py), least recently
used first: a conversation's older turns go before the texts its next turn resends.
"""

from __future__ import annotations

from collections.abc import Hashable

from gateway.cache.bounded import LearnedState, LearnedTable
from gateway.rewrite.memo import Derived


class Memo:
    def __init__(self, state: LearnedState | None = None) -> None:
        state = LearnedState.default() if state is None else state
        self._derived: LearnedTable[Hashable, object] = LearnedTable(state, "derived")
        # MemoView.derived: the table's own get, one call a lookup (~50 a call).
        self.derived = self._derived.get

    def learn(self, seen: Derived) -> None:
        self._derived.put_all(seen.tenant, seen.entries)
