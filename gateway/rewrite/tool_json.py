"""Tool definitions in one byte-stable form: the first form the gateway saw of each.

The provider's cache key covers the tools' bytes, so a client that serializes the same
tools with keys or tools in another order (Go maps, Swift dictionaries, set iteration)
misses every time. Equal tools (equal as JSON values) are sent in their first-seen form
and, for the same set of tools, in the first-seen order.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from gateway.cache.bounded import LearnedState, LearnedTable
from gateway.rewrite.request import Finding, Lesson, LLMRequest, Rewrite

RULE = "tool_json"
# Beyond a form's own length: its identity and the bytes object (tracemalloc, rounded up).
FORM_BYTES = 100
# A tool set's order: an identity in a frozenset and in a tuple (tracemalloc, rounded up).
ORDER_BYTES_PER_TOOL = 160


def _identity(value: Any) -> bytes:
    return hashlib.blake2b(
        orjson.dumps(value, option=orjson.OPT_SORT_KEYS), digest_size=16
    ).digest()


class ToolForms:
    """First-seen forms of tools and of tool sets, per tenant (a caller's first form is
    never imposed on another's tools) and bounded in bytes with the rest of the learned
    state (state/bounded.py): a form is kept whole, as it is sent again in its place."""

    def __init__(self, state: LearnedState | None = None) -> None:
        state = LearnedState.default() if state is None else state
        self.tools: LearnedTable[bytes, bytes] = LearnedTable(state, "tool_form")
        self.orders: LearnedTable[frozenset[bytes], tuple[bytes, ...]] = LearnedTable(
            state, "tool_order"
        )

    def canonical(self, tenant: bytes, tools: list[Any]) -> tuple[list[Any], Lesson | None]:
        """The tools in their first-seen form and order (the same list if already so), and
        what to remember of them once the provider has accepted the call (None: nothing new)."""
        sent = [orjson.dumps(tool) for tool in tools]
        identities = [_identity(tool) for tool in tools]
        known = [self.tools.get(tenant, identity) for identity in identities]
        forms = [form or fresh for form, fresh in zip(known, sent, strict=True)]
        new = [(i, b) for i, b, form in zip(identities, sent, known, strict=True) if form is None]
        order, new_order = tuple(identities), None
        if len(identities) > 1:  # one tool has one order: nothing to remember
            key = frozenset(identities)
            first = self.orders.get(tenant, key)
            if first is None:
                new_order = (key, order)
            else:
                order = first
        lesson = self._lesson(tenant, new, new_order) if new or new_order else None
        if len(order) != len(identities):
            return tools, lesson  # the same tool twice: leave it to the provider to reject
        by_identity = dict(zip(identities, forms, strict=True))
        wanted = [by_identity[identity] for identity in order]
        canonical = tools if wanted == sent else [orjson.loads(form) for form in wanted]
        return canonical, lesson

    def _lesson(
        self,
        tenant: bytes,
        forms: list[tuple[bytes, bytes]],
        order: tuple[frozenset[bytes], tuple[bytes, ...]] | None,
    ) -> Lesson:
        def learn() -> None:
            for identity, sent in forms:
                if self.tools.get(tenant, identity) is None:  # the first accepted form stays
                    # A copy of its exact size: orjson's output keeps the buffer it grew.
                    form = bytes(memoryview(sent))
                    self.tools.put(tenant, identity, form, len(form) + FORM_BYTES)
            if order is not None and self.orders.get(tenant, order[0]) is None:
                key, identities = order
                self.orders.put(tenant, key, identities, ORDER_BYTES_PER_TOOL * len(identities))

        return learn


def stable_tool_json(request: LLMRequest, forms: ToolForms, enabled: bool) -> LLMRequest:
    tools = request.body.get("tools")
    if not isinstance(tools, list) or not tools or not all(isinstance(t, dict) for t in tools):
        return request
    canonical, lesson = forms.canonical(request.tenant, tools)
    request = request.learning(lesson)
    if canonical is tools:
        return request
    finding = Finding("unstable_tool_json", f"{len(tools)} tools re-serialized")
    if not enabled:
        return request.noting(finding)
    rewrite = Rewrite(RULE, "tools in their first-seen key order and order")
    return request.with_body({**request.body, "tools": canonical}, rewrite).noting(finding)
