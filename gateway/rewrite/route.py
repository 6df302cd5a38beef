"""The route stage: the step's tier (or the model `tier:NAME`) chooses the model.

A step with a tier replaces the client's model; a canary sends a fixed share of the
step's conversations to its candidate, the same conversations every turn, since flipping
a conversation's model mid-way would throw its cache away.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import InvalidRequest
from gateway.rewrite.request import LLMRequest, Rewrite, evolve
from gateway.rewrite.routes import TIER_PREFIX, Routes, in_canary


def route(request: LLMRequest, table: Routes) -> LLMRequest:
    model = request.body.get("model")
    if isinstance(model, str) and model.startswith(TIER_PREFIX):
        return _named_tier(request, table, model[len(TIER_PREFIX) :])
    plan = table.plan(request.step) if request.routing else None
    if plan is None or plan.tier is None:
        return request
    chosen = table.tier_model(plan.tier, request.provider)
    if chosen is None:
        return request
    detail = f"{plan.name}: {model} -> {chosen} (tier {plan.tier})"
    if plan.canary is not None and in_canary(
        plan.canary, plan.name, _conversation(request.body, request.tenant)
    ):
        chosen = table.pinned(plan.canary.model)
        detail = f"{plan.name}: {model} -> {chosen} (canary)"
    request = evolve(request, tier=plan.tier)
    if chosen == model:
        return request
    return request.with_body({**request.body, "model": chosen}, Rewrite("route", detail))


def _named_tier(request: LLMRequest, table: Routes, tier: str) -> LLMRequest:
    chosen = table.tier_model(tier, request.provider)
    if chosen is None:
        known = ", ".join(TIER_PREFIX + name for name in table.tiers)
        raise InvalidRequest(
            f"model: no {request.provider} model for {TIER_PREFIX}{tier}; known tiers: {known}"
        )
    body = {**request.body, "model": chosen}
    rewrite = Rewrite("route", f"{TIER_PREFIX}{tier} -> {chosen}")
    return evolve(request, tier=tier).with_body(body, rewrite)


def _conversation(body: dict[str, Any], tenant: bytes) -> bytes:
    """The conversation's identity: who calls, and its first message, resent every turn."""
    messages = body.get("messages")
    first = messages[0] if isinstance(messages, list) and messages else None
    return tenant + b"\0" + orjson.dumps(first)
