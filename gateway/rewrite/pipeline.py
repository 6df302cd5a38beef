"""The rewrite pipeline: the stages every Anthropic request goes through, in order.

Each stage is a pure function of the request and the context; it returns the request,
changed or not, with what it changed (rewrites) and what it noticed (findings). The
order matters: canonical text and tools first, so the breakpoint plan sees final bytes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from gateway.cascade.lifecycle import Lifecycle
from gateway.cascade.table import RoutingTable
from gateway.catalog import ModelCatalog
from gateway.rewrite.breakpoints import plan_breakpoints
from gateway.rewrite.fingerprint import family_of, fingerprint
from gateway.rewrite.pin import note_retirement, pin
from gateway.rewrite.request import LLMRequest, Rewrite
from gateway.rewrite.route import route
from gateway.rewrite.tool_json import ToolForms, stable_tool_json
from gateway.rewrite.volatile import volatile
from gateway.rewrite.whitespace import whitespace
from gateway.settings import RewriteSettings
from gateway.state.lines import LineStats
from gateway.state.registry import PrefixRegistry

DEFAULT_CHARS_PER_TOKEN = 4.0
DEFAULT_MIN_TOKENS = 1024


@dataclass(frozen=True, slots=True)
class RewriteContext:
    settings: RewriteSettings
    catalog: ModelCatalog
    tool_forms: ToolForms
    lines: LineStats
    registry: PrefixRegistry
    routing: RoutingTable
    lifecycle: Lifecycle
    today: Callable[[], dt.date] = field(default=lambda: dt.datetime.now(dt.UTC).date())


Stage = Callable[[LLMRequest, RewriteContext], LLMRequest]


def _route(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    return route(request, context.routing)


def _pin(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    request = pin(request, context.routing)
    window = context.routing.settings.retirement_window_days
    return note_retirement(request, context.lifecycle, window, context.today())


def _whitespace(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    return whitespace(request, context.settings.whitespace)


def _tool_json(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    return stable_tool_json(request, context.tool_forms, context.settings.tool_json)


def _volatile(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    return volatile(request, context.settings.volatile, context.lines)


def _model_facts(request: LLMRequest, context: RewriteContext) -> tuple[int, float]:
    """The model's minimum cacheable prefix and characters per token (defaults if unknown)."""
    spec = context.catalog.resolve(str(request.body.get("model")))
    if spec is None:
        return DEFAULT_MIN_TOKENS, DEFAULT_CHARS_PER_TOKEN
    return spec.min_cacheable_tokens, spec.chars_per_token


def _breakpoints(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    min_tokens, chars_per_token = _model_facts(request, context)
    setting = context.settings.cache_ttl
    if setting == "auto":
        family = family_of(request.body, request.stable_system_blocks, request.tenant)
        stable_ttl, tail_ttl = context.registry.ttls(family)
    else:
        stable_ttl = tail_ttl = setting
    return plan_breakpoints(
        request,
        policy=context.settings.breakpoints,
        stable_ttl=stable_ttl,
        tail_ttl=tail_ttl,
        min_tokens=min_tokens,
        chars_per_token=chars_per_token,
    )


def _audit(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    """The fingerprint the prefix registry needs later, and the model's cache minimum."""
    min_tokens, chars_per_token = _model_facts(request, context)
    return replace(
        request,
        fingerprint=fingerprint(
            request.body, request.stable_system_blocks, chars_per_token, request.tenant
        ),
        min_cacheable_tokens=min_tokens,
    )


def _diagnostics(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    """Asks the provider why the cache missed, naming the conversation's previous response."""
    if not context.settings.provider_diagnostics or request.fingerprint is None:
        return request
    previous = context.registry.previous_message_id(request.fingerprint)
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


def rewrite(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    for stage in ANTHROPIC_STAGES:
        request = stage(request, context)
    return request
