"""The most a call can cost, before it is made: what a gateway key's budget reserves.

Its input tokens, estimated from the body (catalog/tokens.py), plus its output limit
(`max_tokens`, `max_completion_tokens` or `max_output_tokens`; the model's own maximum
when the body sets none), priced at the dearest of the models the call may be served by
(the routed model, its fallbacks and hedge). Input is priced at the dearest rate it can be
billed at: an Anthropic body writes to the cache only where it says so (`cache_control`,
its TTL), so it is priced by what the body as sent asks for; an OpenAI call may write any
of its prompt (the provider caches on its own), so at the dearest write rate. Never less
than the call can be billed for its text; inline media is estimated
(MEDIA_CHARS_PER_TOKEN), server-side tools (web search) are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gateway.catalog import ModelCatalog, ModelSpec
from gateway.catalog.tokens import BodyChars
from gateway.metering.pricing import CacheWrites, Pricing

OUTPUT_LIMIT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
DEFAULT_CHARS_PER_TOKEN = 2.0  # a model the catalog does not know: a dense tokenizer


class CostCeiling:
    def __init__(self, pricing: Pricing, catalog: ModelCatalog, default_output_tokens: int) -> None:
        self.pricing = pricing
        self.catalog = catalog
        self.default_output_tokens = default_output_tokens

    def usd(self, provider: str, models: Iterable[str], body: Mapping[str, Any]) -> float | None:
        """The most the call can cost on the dearest of `models`; None if none is priced."""
        most: float | None = None
        writes = cache_writes(body) if provider == "anthropic" else "1h"
        chars: BodyChars | None = None  # counted once, for the first priced model
        for model in dict.fromkeys(models):
            price = self.pricing.price(provider, model)
            if price is None:
                continue
            spec = self.catalog.resolve(model)
            cpt = spec.chars_per_token if spec is not None else DEFAULT_CHARS_PER_TOKEN
            chars = chars or BodyChars.of(body)
            input_tokens = chars.tokens(cpt)
            if spec is not None:  # the provider refuses a longer prompt
                input_tokens = min(input_tokens, spec.max_input_tokens)
            cost = price.most(input_tokens, self._output_tokens(body, spec), writes)
            most = cost if most is None else max(most, cost)
        return most

    def _output_tokens(self, body: Mapping[str, Any], spec: ModelSpec | None) -> int:
        for name in OUTPUT_LIMIT_FIELDS:
            value = body.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value if spec is None else min(value, spec.max_tokens)
        return spec.max_tokens if spec is not None else self.default_output_tokens


def cache_writes(body: Mapping[str, Any]) -> CacheWrites:
    """The dearest cache write an Anthropic body asks for (its `cache_control` markers and
    their TTL; the body is walked without recursion)."""
    found: CacheWrites = "none"
    stack: list[Any] = [body]
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
