"""The most a call can cost, before it is made: what a gateway key's budget reserves.

Its input tokens, estimated from the body's JSON as sent (catalog/tokens.py), plus its
output limit (the largest of `max_tokens`, `max_completion_tokens` and `max_output_tokens`
the body sets, since providers differ in which they read; the model's own maximum when it
sets none) times the choices it asks for (OpenAI chat's `n`), priced at the dearest of the
models the call may be served by (the routed model, its fallbacks and hedge) and at the
service tier it asks for (`service_tier: "priority"` is priced as such). A Responses call
that continues a stored conversation (`previous_response_id`, `conversation`) has input the
body does not show: it is reserved at the model's whole input window, and so is a body
with a document or file by URL or file id (billed by pages the body does not show). Input
is priced at the dearest rate it can be billed at: an Anthropic body writes to the cache
only where it says so (`cache_control`, its TTL), so it is priced by what the body as sent
asks for; an OpenAI call may write any of its prompt (the provider caches on its own), so
at the dearest write rate. Never less than the call can be billed for its text; media in
the content blocks is estimated (base64 at MEDIA_CHARS_PER_TOKEN, every image at least
MEDIA_FLOOR_TOKENS: catalog/tokens.py), server-side tools (web search) are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sized
from typing import Any

import orjson

from gateway.catalog import ModelCatalog, ModelSpec
from gateway.catalog.tokens import CONVERSATION_FIELDS, BodyChars, Media
from gateway.metering.conversation import Conversations, Facts, dearest
from gateway.metering.pricing import Pricing
from gateway.metering.rates import CacheWrites, PriceContext

OUTPUT_LIMIT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
DEFAULT_CHARS_PER_TOKEN = 2.0  # a model the catalog does not know: a dense tokenizer
# The input window assumed for a model the catalog does not know, when the body continues a
# stored conversation: the largest any listed model has.
DEFAULT_MAX_INPUT_TOKENS = 1_050_000
PRIORITY: PriceContext = (("service_tier", "priority"),)
STORED_INPUT_FIELDS = ("previous_response_id", "conversation")


class CostCeiling:
    def __init__(self, pricing: Pricing, catalog: ModelCatalog, default_output_tokens: int) -> None:
        self.pricing = pricing
        self.catalog = catalog
        self.default_output_tokens = default_output_tokens
        self.conversations = Conversations(lambda item: writes_in([item]))

    def usd(
        self,
        provider: str,
        models: Iterable[str],
        body: Mapping[str, Any],
        raw: Sized | None = None,
    ) -> float | None:
        """The most the call can cost on the dearest of `models`; None if none is priced.
        `raw`: the body as sent (its JSON), which its text is counted from; serialized here
        when not given."""
        most: float | None = None
        anthropic = provider == "anthropic"
        # The conversation's media and cache writes, by identity where a run has them.
        seen = self.conversations.of(body, anthropic, raw) if raw is not None else None
        writes = cache_writes(body, seen and seen.writes) if anthropic else "1h"
        context = price_context(body)
        stored = provider == "openai" and any(body.get(name) for name in STORED_INPUT_FIELDS)
        choices = choices_of(body) if provider == "openai" else 1
        chars: BodyChars | None = None  # counted once, for the first priced model
        for model in dict.fromkeys(models):
            price = self.pricing.price(provider, model, context=context)
            if price is None:
                continue
            spec = self.catalog.resolve(model)
            window = spec.max_input_tokens if spec is not None else DEFAULT_MAX_INPUT_TOKENS
            if not stored:
                chars = chars or _chars(body, raw, seen)
            if stored or chars is None or chars.unsized:
                # Earlier turns the provider holds, or a document whose pages the body
                # does not show: up to the model's whole window.
                input_tokens = window
            else:
                cpt = spec.chars_per_token if spec is not None else DEFAULT_CHARS_PER_TOKEN
                input_tokens = min(chars.tokens(cpt), window)  # a longer prompt is refused
            output_tokens = self._output_tokens(body, spec) * choices
            cost = price.most(input_tokens, output_tokens, writes)
            most = cost if most is None else max(most, cost)
        return most

    def _output_tokens(self, body: Mapping[str, Any], spec: ModelSpec | None) -> int:
        """The largest output limit the body sets: a provider reading another than the one
        judged here must not be able to generate past the reservation."""
        limits = [
            value
            for value in (body.get(name) for name in OUTPUT_LIMIT_FIELDS)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0
        ]
        if limits:
            return max(limits) if spec is None else min(max(limits), spec.max_tokens)
        return spec.max_tokens if spec is not None else self.default_output_tokens


def _chars(body: Mapping[str, Any], raw: Sized | None, seen: Facts | None) -> BodyChars:
    if raw is None:
        try:
            raw = orjson.dumps(body)
        except orjson.JSONEncodeError:  # nested past orjson's 255 levels: walked instead
            return BodyChars.of(body)
    media = None if seen is None else Media(seen.media_chars, seen.media_tokens, seen.unsized)
    return BodyChars.of_json(raw, body, media)


def price_context(body: Mapping[str, Any], served: str | None = None) -> PriceContext:
    """The price context of a call: the tier the response says it was served at, else the
    one the request asks for (OpenAI's priority tier is billed dearer)."""
    tier = served if served is not None else body.get("service_tier")
    return PRIORITY if tier == "priority" else ()


def choices_of(body: Mapping[str, Any]) -> int:
    """OpenAI chat's `n`: each choice is billed its own output."""
    n = body.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1


def cache_writes(body: Mapping[str, Any], conversation: CacheWrites | None = None) -> CacheWrites:
    """The dearest cache write an Anthropic body asks for (its `cache_control` markers and
    their TTL): on the body, on each tool, and on any block of its system prompt and
    messages, nested ones included (walked without recursion). A tool's schema is not
    walked: it is the tool's text, a property named cache_control in it marks nothing, and
    Claude Code's tools are most of a turn's values (~100 us a call). `conversation`: the
    writes of its `messages` and `input` lists where known (conversation.py), not walked."""
    known = CONVERSATION_FIELDS if conversation is not None else ()
    stack: list[Any] = [
        {
            name: value
            for name, value in body.items()
            if name != "tools" and not (name in known and isinstance(value, list))
        }
    ]
    tools = body.get("tools")
    if isinstance(tools, list):  # a tool without a marker adds nothing to walk
        marks = [tool.get("cache_control") for tool in tools if isinstance(tool, dict)]
        stack.extend({"cache_control": mark} for mark in marks if mark is not None)
    found = writes_in(stack)
    return found if conversation is None else dearest(found, conversation)


def writes_in(stack: list[Any]) -> CacheWrites:
    """The dearest cache write asked anywhere in the values of `stack` (which it empties)."""
    found: CacheWrites = "none"
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            control = value.get("cache_control")
            if isinstance(control, dict):
                if control.get("ttl") == "1h":
                    return "1h"
                found = "5m"
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found
