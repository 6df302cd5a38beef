"""What the rewrite stages read, built one way for every test of them: a context (settings,
the catalog's tables, a clock) over a learned memory, and that memory as observations made it.

A stage test is a row: (body, learned memory) -> (body, rewrites, findings, observations).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from gateway.cache.bounded import LearnedState
from gateway.cache.learned import LearnedMemory
from gateway.cascade.lifecycle import Lifecycle
from gateway.cascade.table import RoutingTable
from gateway.catalog import ModelCatalog
from gateway.rewrite.memo import Derived
from gateway.rewrite.pipeline import ANTHROPIC_STAGES, RewriteContext, Stage, rewrite
from gateway.rewrite.request import LLMRequest
from gateway.rewrite.snapshot import Observation
from gateway.settings import RewriteSettings, RoutingSettings

CATALOG = ModelCatalog.load()
NOW = dt.datetime(2026, 11, 24, 10, 40, tzinfo=dt.UTC)  # the requests' time, unless told


def memory(
    *observations: Observation, state: LearnedState | None = None, learn_volatile_after: int = 5
) -> LearnedMemory:
    """A learned memory that has kept `observations` (as from accepted calls)."""
    learned = LearnedMemory.within(
        LearnedState.default() if state is None else state, learn_volatile_after
    )
    learned.learn(observations)
    return learned


def context(
    learned: LearnedMemory | None = None, now: dt.datetime = NOW, **settings: Any
) -> RewriteContext:
    """As gateway/app.py builds it, with RewriteSettings(**settings); an empty memory unless
    one is given."""
    rewrite_settings = RewriteSettings(**settings)
    if learned is None:
        learned = memory(learn_volatile_after=rewrite_settings.learn_volatile_after)
    return RewriteContext(
        rewrite_settings,
        CATALOG,
        learned,
        RoutingTable(RoutingSettings(), CATALOG),
        Lifecycle(CATALOG),
        now=lambda: now,
    )


def accepted(
    request: LLMRequest, ctx: RewriteContext, stages: tuple[Stage, ...] = ANTHROPIC_STAGES
) -> LLMRequest:
    """Rewritten, and what it showed learned, as the gateway does once the provider accepts
    the call."""
    out = rewrite(request, ctx, stages)
    learner = ctx.learned
    assert isinstance(learner, LearnedMemory)
    learner.learn(out.observations)
    return out


Outcome = tuple[dict[str, Any], tuple[str, ...], tuple[str, ...], tuple[Observation, ...]]


def outcome(request: LLMRequest) -> Outcome:
    """What a stage returned, as a row of a stage table: the body, the rules that rewrote it,
    the findings' codes, the observations."""
    return (
        request.body,
        tuple(r.rule for r in request.rewrites),
        tuple(f.code for f in request.findings),
        request.observations,
    )


def with_and_without_memo(
    learn_volatile_after: int = 5,
) -> tuple[list[LearnedMemory], list[RewriteContext]]:
    """Two fresh learned memories, with the memo of derived values and without it, and a
    context over each: the pair a memo-is-invisible test runs every call through."""
    memories = [
        LearnedMemory.within(LearnedState.default(), learn_volatile_after, memo=memo)
        for memo in (True, False)
    ]
    return memories, [context(found) for found in memories]


def memo_outcome(request: LLMRequest) -> tuple[Any, ...]:
    """Everything a rewrite returns that the memo must not change: the bytes sent (key order
    included), rewrites, findings, observations but what was derived, the fingerprint and
    what the later steps read."""
    return (
        json.dumps(request.body),
        request.rewrites,
        request.findings,
        tuple(o for o in request.observations if not isinstance(o, Derived)),
        request.fingerprint,
        request.stable_system_blocks,
        request.dates_at,
        request.changed,
    )


def rewritten_alike(
    provider: str,
    bodies: tuple[dict[str, Any], dict[str, Any]],
    memories: list[LearnedMemory],
    contexts: list[RewriteContext],
    stages: tuple[Stage, ...],
    tenant: bytes = b"t",
) -> LLMRequest:
    """One call rewritten with the memo (`bodies[0]`) and without it (`bodies[1]`, a parse of
    its own), asserted alike (`memo_outcome`), each memory then learning from its call as an
    accepted one; the call with the memo."""
    outs = [
        rewrite(LLMRequest(provider, body, None, tenant), ctx, stages)
        for body, ctx in zip(bodies, contexts, strict=True)
    ]
    assert memo_outcome(outs[0]) == memo_outcome(outs[1])
    for memory, out in zip(memories, outs, strict=True):
        memory.learn(out.observations)
    return outs[0]
