"""The first accepted form of each tool and the first order of each tool set, per tenant.

What rewrite/tool_json.py sends again in their place. Per tenant (a caller's first form is
never imposed on another's tools) and bounded in bytes with the rest of the learned state
(bounded.py): a form is kept whole, as it is sent again in its place.
"""

from __future__ import annotations

from gateway.cache.bounded import LearnedState, LearnedTable
from gateway.rewrite.snapshot import ToolsSeen

# Beyond a form's own length: its identity and the bytes object (tracemalloc, rounded up).
FORM_BYTES = 100
# A tool set's order: an identity in a frozenset and in a tuple (tracemalloc, rounded up).
ORDER_BYTES_PER_TOOL = 160


class ToolForms:
    def __init__(self, state: LearnedState | None = None) -> None:
        state = LearnedState.default() if state is None else state
        self._forms: LearnedTable[bytes, bytes] = LearnedTable(state, "tool_form")
        self._orders: LearnedTable[frozenset[bytes], tuple[bytes, ...]] = LearnedTable(
            state, "tool_order"
        )
        self._state = state
        state.watch("tool_form")
        state.watch("tool_order")
        self._added = 0

    def version(self) -> tuple[int, int]:
        """Moves whenever a form or an order is added or forgotten: while it stands, every
        `form` and `order` answers as before (rewrite/tool_json.py keeps what it derived
        from them with it)."""
        return self._added, self._state.forgotten

    def form(self, tenant: bytes, identity: bytes) -> bytes | None:
        return self._forms.get(tenant, identity)

    def order(self, tenant: bytes, identities: frozenset[bytes]) -> tuple[bytes, ...] | None:
        return self._orders.get(tenant, identities)

    def learn(self, seen: ToolsSeen) -> None:
        tenant = seen.tenant
        for identity, sent in seen.forms:
            if self._forms.get(tenant, identity) is None:  # the first accepted form stays
                # A copy of its exact size: orjson's output keeps the buffer it grew.
                form = bytes(memoryview(sent))
                self._forms.put(tenant, identity, form, len(form) + FORM_BYTES)
                self._added += 1
        order = seen.order
        if order is not None and self._orders.get(tenant, key := frozenset(order)) is None:
            self._orders.put(tenant, key, order, ORDER_BYTES_PER_TOOL * len(order))
            self._added += 1
