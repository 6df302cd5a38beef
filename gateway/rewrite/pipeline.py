"""The rewrite pipeline: the stages every request goes through, in order, per wire format.

Each stage is a pure function of the request and the context (settings, tables and a
read-only view of what was learned, snapshot.py); it returns the request, changed or not,
with what it changed (rewrites), what it noticed (findings) and what it saw to be learned
(observations). The same body over the same learned state rewrites the same way; the
caller applies the observations once the provider has accepted the call (`Rewriter.learn`).
The order matters: canonical text and tools first, so the breakpoint plan sees final bytes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.catalog import ModelCatalog
from gateway.rewrite import prompt_cache
from gateway.rewrite.breakpoints import plan_breakpoints, plan_short
from gateway.rewrite.family import family_of
from gateway.rewrite.fingerprint import conversation_of, fingerprint
from gateway.rewrite.memo import CallMemo, call_memo, derived
from gateway.rewrite.openai_text import layers
from gateway.rewrite.pin import note_retirement, pin
from gateway.rewrite.request import LLMRequest, Rewrite, evolve
from gateway.rewrite.route import route
from gateway.rewrite.routes import Retirements, Routes
from gateway.rewrite.snapshot import Learned, Observation, TailJudged, Ttl
from gateway.rewrite.tool_json import stable_tool_json
from gateway.rewrite.volatile import volatile, volatile_openai
from gateway.rewrite.whitespace import whitespace, whitespace_openai
from gateway.settings import RewriteSettings

DEFAULT_CHARS_PER_TOKEN = 4.0
DEFAULT_MIN_TOKENS = 1024


@dataclass(frozen=True, slots=True)
class RewriteContext:
    settings: RewriteSettings
    catalog: ModelCatalog
    learned: Learned  # read only: what the stages observed is applied by the caller
    routing: Routes
    lifecycle: Retirements
    today: Callable[[], dt.date] = field(default=lambda: dt.datetime.now(dt.UTC).date())
    # The request's time: a date close to it in the system prompt is a "now" stamp.
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))


Stage = Callable[[LLMRequest, RewriteContext], LLMRequest]


def _route(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    return route(request, context.routing)


def _pin(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    request = pin(request, context.routing)
    window = context.routing.settings.retirement_window_days
    return note_retirement(request, context.lifecycle, window, context.today())


def _whitespace(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    return whitespace(request, context.settings.whitespace, context.learned.memo)


def _tool_json(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    learned = context.learned
    return stable_tool_json(request, learned.tools, context.settings.tool_json, learned.memo)


def _volatile(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    learned = context.learned
    return volatile(request, context.settings.volatile, learned.lines, context.now(), learned.memo)


def _model_facts(request: LLMRequest, context: RewriteContext) -> tuple[int, float]:
    """The model's minimum cacheable prefix and characters per token (defaults if unknown)."""
    spec = context.catalog.resolve(str(request.body.get("model")))
    if spec is None:
        return DEFAULT_MIN_TOKENS, DEFAULT_CHARS_PER_TOKEN
    return spec.min_cacheable_tokens, spec.chars_per_token


def _breakpoints(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    min_tokens, chars_per_token = _model_facts(request, context)
    model = str(request.body.get("model"))
    prefixes = context.learned.prefixes
    tenant = request.tenant
    tail = prefixes.tail_pays(tenant, request.step, model)
    observed = (TailJudged(tenant, request.step, model),)
    if tail:  # else the plan asks the registry for the previous prompt (`reread`) first
        short = plan_short(
            request, min_tokens=min_tokens, chars_per_token=chars_per_token, observed=observed
        )
        if short is not None:
            return short
    memo = call_memo(context.learned.memo, tenant)

    def reread() -> int | None:
        conversation = conversation_of(request.body, tenant, memo)
        return prefixes.previous_prompt(tenant, conversation, model)

    def ttls() -> tuple[Ttl, Ttl]:
        setting = context.settings.cache_ttl
        if setting != "auto":
            return setting, setting
        body, stable = request.body, request.stable_system_blocks
        return prefixes.ttls(tenant, family_of(body, stable, tenant, request.prompt_tools, memo))

    return plan_breakpoints(
        request,
        policy=context.settings.breakpoints,
        min_tokens=min_tokens,
        chars_per_token=chars_per_token,
        tail=tail,
        ttls=ttls,
        reread=reread,
        observed=observed,
        memo=memo,
    )


def _audit(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    """The fingerprint the prefix registry needs later, and the model's cache minimum."""
    return _audited(request, context, request.body)


def _audited(
    request: LLMRequest,
    context: RewriteContext,
    shaped: dict[str, Any],
    own_system: bool = True,
    memo: CallMemo | None = None,
) -> LLMRequest:
    """`_audit` of the body in fingerprint.py's shape (tools, system blocks, messages);
    `own_system=False`: its system list is made for the audit (openai_text.layers), of
    text blocks alone, whose texts key it (family.py's `prefix`)."""
    min_tokens, chars_per_token = _model_facts(request, context)
    memo = memo if memo is not None else call_memo(context.learned.memo, request.tenant)
    stable, tenant, tools = request.stable_system_blocks, request.tenant, request.prompt_tools
    texts = None if own_system else tuple([block["text"] for block in shaped["system"]])
    fp = fingerprint(shaped, stable, chars_per_token, tenant, tools, memo, texts)
    # What the memo kept (memo.py's `observed`) in the one new request.
    observations = request.observations + derived(memo)
    return evolve(
        request, fingerprint=fp, min_cacheable_tokens=min_tokens, observations=observations
    )


def _diagnostics(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    """Asks the provider why the cache missed, naming the conversation's previous response."""
    if not context.settings.provider_diagnostics or request.fingerprint is None:
        return request
    previous = context.learned.prefixes.previous_message_id(request.fingerprint)
    if previous is None or "diagnostics" in request.body:
        return request
    body = {**request.body, "diagnostics": {"previous_message_id": previous}}
    return request.with_body(body, Rewrite("cache_diagnostics", previous))


ANTHROPIC_STAGES: tuple[Stage, ...] = (
    _route,
    _pin,
    _whitespace,
    _tool_json,
    _volatile,
    _breakpoints,
    _audit,
    _diagnostics,
)


# OpenAI: Chat Completions and Responses bodies (rewrite/openai_text.py says where the text is).


def _openai_whitespace(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    return whitespace_openai(request, context.settings.whitespace, context.learned.memo)


def _openai_volatile(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    policy, learned = context.settings.volatile, context.learned
    return volatile_openai(request, policy, learned.lines, context.now(), learned.memo)


def _prompt_cache_key(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    if not context.settings.prompt_cache_key:
        return request
    return prompt_cache.cache_key(request)


def _openai_retention(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    spec = context.catalog.resolve(str(request.body.get("model")))
    settings = context.settings
    return prompt_cache.retention(
        request, spec, settings.openai_cache_retention, settings.openai_cache_ttl
    )


def _openai_breakpoints(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    spec = context.catalog.resolve(str(request.body.get("model")))
    return prompt_cache.breakpoints(request, spec, context.settings.breakpoints == "respect")


def _openai_audit(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    """The fingerprint of the body's layers (openai_text.layers), as _audit takes it. The
    layers are made anew each call (a walk of the leading items and a slice of the list):
    a memo entry for them by the conversation list paid only on a resent list, and its
    lookup and entry cost more than the walk on every new turn."""
    memo = call_memo(context.learned.memo, request.tenant)
    return _audited(request, context, layers(request.body), False, memo)


OPENAI_STAGES: tuple[Stage, ...] = (
    _route,
    _pin,
    _openai_whitespace,
    _tool_json,  # shape-blind: a tool is compared as a JSON value, nested or flat
    _openai_volatile,
    _prompt_cache_key,
    _openai_retention,
    _openai_breakpoints,
    _openai_audit,
)


# The stages for each wire format, by its name (wire/formats.py).
STAGES: dict[str, tuple[Stage, ...]] = {
    "messages": ANTHROPIC_STAGES,
    "chat_completions": OPENAI_STAGES,
    "responses": OPENAI_STAGES,
}


def rewrite(
    request: LLMRequest, context: RewriteContext, stages: tuple[Stage, ...] = ANTHROPIC_STAGES
) -> LLMRequest:
    for stage in stages:
        request = stage(request, context)
    return request


class Learner(Protocol):
    def learn(self, observations: Iterable[Observation]) -> None:
        """Keeps what the stages observed of a call the provider accepted."""


@dataclass(frozen=True, slots=True)
class Rewriter:
    """One wire format's stages over the learned memory: called, it rewrites a request (pure,
    `rewrite`); `learn` keeps what the request showed, once the provider has accepted it."""

    context: RewriteContext
    stages: tuple[Stage, ...]
    learner: Learner

    def __call__(self, request: LLMRequest) -> LLMRequest:
        return rewrite(request, self.context, self.stages)

    def learn(self, observations: Iterable[Observation]) -> None:
        self.learner.learn(observations)
