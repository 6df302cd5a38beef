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

from gateway.rewrite.request import Finding, LLMRequest, Rewrite
from gateway.state.bounded import BoundedDict

RULE = "tool_json"


def _identity(value: Any) -> bytes:
    return hashlib.blake2b(
        orjson.dumps(value, option=orjson.OPT_SORT_KEYS), digest_size=16
    ).digest()


class ToolForms:
    """First-seen forms of tools and of tool sets; bounded, so it never grows without limit."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.tools: BoundedDict[bytes, bytes] = BoundedDict(max_entries)
        self.orders: BoundedDict[frozenset[bytes], tuple[bytes, ...]] = BoundedDict(max_entries)

    def canonical(self, tools: list[Any]) -> list[Any]:
        """The tools in their first-seen form and order (the same list if already so)."""
        sent = [orjson.dumps(tool) for tool in tools]
        identities = [_identity(tool) for tool in tools]
        forms = [self.tools.setdefault(i, b) for i, b in zip(identities, sent, strict=True)]
        order = self.orders.setdefault(frozenset(identities), tuple(identities))
        if len(order) != len(identities):
            return tools  # the same tool twice: leave it to the provider to reject
        by_identity = dict(zip(identities, forms, strict=True))
        wanted = [by_identity[identity] for identity in order]
        return tools if wanted == sent else [orjson.loads(form) for form in wanted]


def stable_tool_json(request: LLMRequest, forms: ToolForms, enabled: bool) -> LLMRequest:
    tools = request.body.get("tools")
    if not isinstance(tools, list) or not tools or not all(isinstance(t, dict) for t in tools):
        return request
    canonical = forms.canonical(tools)
    if canonical is tools:
        return request
    finding = Finding("unstable_tool_json", f"{len(tools)} tools re-serialized")
    if not enabled:
        return request.noting(finding)
    rewrite = Rewrite(RULE, "tools in their first-seen key order and order")
    return request.with_body({**request.body, "tools": canonical}, rewrite).noting(finding)
