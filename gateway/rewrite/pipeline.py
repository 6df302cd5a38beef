"""The rewrite pipeline: the stages every Anthropic request goes through, in order.

Each stage is a pure function of the request and the context; it returns the request,
changed or not, with what it changed (rewrites) and what it noticed (findings). The
order matters: canonical text and tools first, so the breakpoint plan sees final bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.catalog import ModelCatalog
from gateway.rewrite.breakpoints import plan_breakpoints
from gateway.rewrite.request import Finding, LLMRequest
from gateway.rewrite.tool_json import ToolForms, stable_tool_json
from gateway.rewrite.volatile import volatile
from gateway.rewrite.whitespace import whitespace
from gateway.settings import RewriteSettings

DEFAULT_CHARS_PER_TOKEN = 4.0
DEFAULT_MIN_TOKENS = 1024


@dataclass(frozen=True, slots=True)
class RewriteContext:
    settings: RewriteSettings
    catalog: ModelCatalog
    tool_forms: ToolForms


Stage = Callable[[LLMRequest, RewriteContext], LLMRequest]


def _whitespace(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    return whitespace(request, context.settings.whitespace)


def _tool_json(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    return stable_tool_json(request, context.tool_forms, context.settings.tool_json)


def _volatile(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    return volatile(request, context.settings.volatile)


def _breakpoints(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    spec = context.catalog.resolve(str(request.body.get("model")))
    if spec is not None and spec.id != request.body.get("model"):
        request = request.noting(Finding("unpinned_model", f"{request.body['model']} -> {spec.id}"))
    return plan_breakpoints(
        request,
        policy=context.settings.breakpoints,
        ttl="1h" if context.settings.cache_ttl == "1h" else "5m",
        min_tokens=spec.min_cacheable_tokens if spec else DEFAULT_MIN_TOKENS,
        chars_per_token=spec.chars_per_token if spec else DEFAULT_CHARS_PER_TOKEN,
    )


ANTHROPIC_STAGES: tuple[Stage, ...] = (_whitespace, _tool_json, _volatile, _breakpoints)


def rewrite(request: LLMRequest, context: RewriteContext) -> LLMRequest:
    for stage in ANTHROPIC_STAGES:
        request = stage(request, context)
    return request
