"""A model's rates (Rates, and Price over prompt-size tiers) and where they are read from:
genai-prices' listing of the model, or an entry of the packaged table or the config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from genai_prices.types import ModelInfo, TieredPrices

from gateway.settings import ModelPriceSettings, TierPriceSettings
from gateway.wire.usage import Usage

PER_MTOK = 1e-6
# Anthropic's cache multipliers of the input rate, for config prices that leave them out.
CACHE_READ_OF_INPUT = 0.1
CACHE_WRITE_5M_OF_INPUT = 1.25
CACHE_WRITE_1H_OF_INPUT = 2.0
# The dearest cache write a call can make: none, 5-minute writes only, or 1-hour writes too.
CacheWrites = Literal["none", "5m", "1h"]
# (key, value) pairs of genai-prices' price context: ("speed", "fast") for Anthropic's
# fast mode, ("service_tier", "priority" | "flex") for OpenAI's tiers.
PriceContext = tuple[tuple[str, str], ...]
BATCH = ("processing", "batch")


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per token of each type (not per million), for one prompt-size tier."""

    input: float
    output: float
    cache_read: float
    cache_write_5m: float
    cache_write_1h: float

    def cost(self, usage: Usage) -> float:
        return (
            usage.input * self.input
            + usage.output * self.output
            + usage.cache_read * self.cache_read
            + usage.cache_write_5m * self.cache_write_5m
            + usage.cache_write_1h * self.cache_write_1h
        )

    def scaled(self, factor: float) -> Rates:
        return Rates(
            self.input * factor,
            self.output * factor,
            self.cache_read * factor,
            self.cache_write_5m * factor,
            self.cache_write_1h * factor,
        )


@dataclass(frozen=True, slots=True)
class Price:
    """A model's rates: `base`, or the last tier whose size the call's prompt is over."""

    model: str  # the id the price is listed under
    source: str  # genai-prices | packaged | config
    base: Rates
    tiers: tuple[tuple[int, Rates], ...] = ()  # (above this many prompt tokens, rates), ascending
    per_web_search: float = 0.0

    def rates(self, usage: Usage) -> Rates:
        rates = self.base
        if self.tiers:
            # Providers tier on the whole prompt, cached or not, and the tier prices every token.
            prompt = usage.input + usage.cache_read + usage.cache_write_5m + usage.cache_write_1h
            for above, tier in self.tiers:
                if prompt <= above:
                    break
                rates = tier
        return rates

    def cost(self, usage: Usage, web_searches: int = 0) -> float:
        rates = self.rates(usage) if self.tiers else self.base  # rates()'s, without its frame
        return rates.cost(usage) + web_searches * self.per_web_search

    def most(self, input_tokens: int, output_tokens: int, writes: CacheWrites = "1h") -> float:
        """The most a call of this many input and output tokens can cost: every input token
        at the dearest rate it may be billed at, given the cache writes the call can make
        (a 1h write costs twice the input rate)."""
        rates = self.rates(Usage(input=input_tokens))
        per_input = rates.input
        if writes != "none":
            per_input = max(per_input, rates.cache_write_5m)
        if writes == "1h":
            per_input = max(per_input, rates.cache_write_1h)
        return input_tokens * per_input + output_tokens * rates.output

    def scaled(self, factor: float) -> Price:
        return replace(
            self,
            base=self.base.scaled(factor),
            tiers=tuple((above, rates.scaled(factor)) for above, rates in self.tiers),
            per_web_search=self.per_web_search * factor,
        )


def from_snapshot(
    info: ModelInfo, now: datetime, batch: bool, context: PriceContext
) -> tuple[Price | None, bool]:
    """The model's price from genai-prices, and whether that is a batch price of its own."""
    wanted = dict(context)
    listed = info.get_prices(now, wanted or None)
    batch_priced = False
    if batch:
        batch_listed = info.get_prices(now, {**wanted, BATCH[0]: BATCH[1]})
        batch_priced = batch_listed != listed
        listed = batch_listed
    keys = listed.__dict__
    input_rate = _first(keys, "input_mtok", "input_text_mtok")
    output_rate = _first(keys, "output_mtok", "output_text_mtok")
    if input_rate is None and output_rate is None:
        return None, False
    zero = Decimal(0)
    input_rate = zero if input_rate is None else input_rate
    # A cache rate the listing lacks is billed as its parent, as genai-prices does.
    write_rate = _first(keys, "cache_write_mtok") or input_rate
    by_type = {
        "input": input_rate,
        "output": zero if output_rate is None else output_rate,
        "cache_read": _first(keys, "cache_read_mtok") or input_rate,
        "cache_write_5m": _first(keys, "cache_write_5m_mtok") or write_rate,
        "cache_write_1h": _first(keys, "cache_write_1h_mtok") or write_rate,
    }
    sizes = sorted(
        {t.start for rate in by_type.values() if isinstance(rate, TieredPrices) for t in rate.tiers}
    )
    searches = _first(keys, "web_searches_kcount")
    price = Price(
        model=info.id,
        source="genai-prices",
        base=_rates_at(by_type, 0),
        tiers=tuple((size, _rates_at(by_type, size + 1)) for size in sizes),
        per_web_search=float(searches) / 1000 if isinstance(searches, Decimal) else 0.0,
    )
    return price, batch_priced


def _first(keys: Mapping[str, Any], *names: str) -> Any:
    """The first of the price keys the listing sets (a rate of 0 is set: free, not missing)."""
    return next((keys[name] for name in names if keys.get(name) is not None), None)


def _rates_at(by_type: Mapping[str, Any], prompt_tokens: int) -> Rates:
    def rate(value: Decimal | TieredPrices) -> float:
        if isinstance(value, TieredPrices):
            applicable = value.base
            for tier in value.tiers:
                if prompt_tokens > tier.start:
                    applicable = tier.price
            value = applicable
        return float(value) * PER_MTOK

    return Rates(**{kind: rate(value) for kind, value in by_type.items()})


def from_settings(model: str, source: str, entry: ModelPriceSettings) -> Price:
    return Price(
        model=model,
        source=source,
        base=_settings_rates(entry),
        tiers=tuple(
            (tier.above_prompt_tokens, _settings_rates(tier))
            for tier in sorted(entry.tiers, key=lambda tier: tier.above_prompt_tokens)
        ),
    )


def _settings_rates(entry: ModelPriceSettings | TierPriceSettings) -> Rates:
    input_rate = entry.input_per_mtok or 0.0
    return Rates(
        input=input_rate * PER_MTOK,
        output=(entry.output_per_mtok or 0.0) * PER_MTOK,
        cache_read=_or(entry.cache_read_per_mtok, input_rate * CACHE_READ_OF_INPUT) * PER_MTOK,
        cache_write_5m=_or(entry.cache_write_5m_per_mtok, input_rate * CACHE_WRITE_5M_OF_INPUT)
        * PER_MTOK,
        cache_write_1h=_or(entry.cache_write_1h_per_mtok, input_rate * CACHE_WRITE_1H_OF_INPUT)
        * PER_MTOK,
    )


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
