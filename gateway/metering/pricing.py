"""What a call cost: per-token rates for each model, resolved once, then a few multiplications.

Prices come in layers, later ones winning: genai-prices' bundled snapshot (never fetched at
run time), the packaged table `prices.yaml` beside this file (models the snapshot lacks or
has stale), then `pricing.models` from config (negotiated rates). A model none of them
prices costs 0 and is reported as `unpriced_model`, never raised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Any, Literal

import yaml
from genai_prices.data_snapshot import find_provider_by_id
from genai_prices.types import ModelInfo, Provider, TieredPrices

from gateway.settings import ModelPriceSettings, PricingSettings, TierPriceSettings
from gateway.wire.usage import Usage

UNPRICED_MODEL = "unpriced_model"
# The dearest cache write a call can make: none, 5-minute writes only, or 1-hour writes too.
CacheWrites = Literal["none", "5m", "1h"]
# (key, value) pairs of genai-prices' price context: ("speed", "fast") for Anthropic's
# fast mode, ("service_tier", "priority" | "flex") for OpenAI's tiers.
PriceContext = tuple[tuple[str, str], ...]
BATCH = ("processing", "batch")

PER_MTOK = 1e-6
# Anthropic's cache multipliers of the input rate, for config prices that leave them out.
CACHE_READ_OF_INPUT = 0.1
CACHE_WRITE_5M_OF_INPUT = 1.25
CACHE_WRITE_1H_OF_INPUT = 2.0
# Model names come from clients: resolved prices are kept for this many names at most,
# and only for names of a model id's length (a client's 1 MB name is resolved, not kept).
MAX_CACHED = 4096
MAX_CACHED_NAME_CHARS = 256
SECONDS_PER_DAY = 86_400
# A fine-tuned OpenAI model (`ft:<base>:<org>::<id>`) genai-prices does not list is priced
# as its base model times this: OpenAI bills fine-tuned inference at 1.5x (gpt-4o, gpt-4.1)
# to 2x (gpt-4o-mini, gpt-4.1-mini and -nano) the base rates; the dearer ratio is taken.
# An exact id under `pricing.models` wins.
FINE_TUNED_FACTOR = 2.0

log = logging.getLogger(__name__)


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
        return self.rates(usage).cost(usage) + web_searches * self.per_web_search

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


Layer = Mapping[str, ModelPriceSettings]


class Pricing:
    """Prices by (provider, model, batch, context), each resolved on first use and kept."""

    def __init__(
        self,
        layers: Sequence[tuple[str, Layer]] = (),
        *,
        batch_multiplier: float = 0.5,
        providers: Sequence[Provider] | None = None,
        relative: Callable[[str], str | None] | None = None,
    ) -> None:
        if providers is None:
            # The bundled tables themselves (1.6 MB, so only when pricing): genai-prices'
            # global snapshot can be swapped for a fetched one by its UpdatePrices.
            from genai_prices.data import providers as bundled

            providers = bundled
        self.providers = list(providers)
        self.layers = tuple(layers)
        self.batch_multiplier = batch_multiplier
        # An id no layer prices, served like a listed relative (a newer snapshot of a known
        # family): priced as that relative, so that it is metered and counts against budgets.
        self.relative = relative
        self._prices: dict[tuple[str, str, bool, PriceContext], Price | None] = {}
        self._day = 0

    @classmethod
    def load(
        cls,
        settings: PricingSettings | None = None,
        relative: Callable[[str], str | None] | None = None,
    ) -> Pricing:
        """genai-prices, then the packaged table, then config's `pricing.models`."""
        settings = settings or PricingSettings()
        text = resources.files(__package__).joinpath("prices.yaml").read_text("utf-8")
        packaged = {
            model: ModelPriceSettings.model_validate(entry)
            for model, entry in yaml.safe_load(text)["models"].items()
        }
        return cls(
            (("packaged", packaged), ("config", settings.models)),
            batch_multiplier=settings.batch_multiplier,
            relative=relative,
        )

    def cost(
        self,
        provider: str,
        model: str | None,
        usage: Usage,
        *,
        batch: bool = False,
        context: PriceContext = (),
        web_searches: int = 0,
    ) -> float | None:
        """USD for the call, or None when no layer prices the model."""
        price = self.price(provider, model, batch=batch, context=context) if model else None
        return None if price is None else price.cost(usage, web_searches)

    def price(
        self, provider: str, model: str, *, batch: bool = False, context: PriceContext = ()
    ) -> Price | None:
        # Dated prices (a launch price ending, a batch price starting) change at most daily.
        day = int(time.time()) // SECONDS_PER_DAY
        if day != self._day or len(self._prices) >= MAX_CACHED:
            self._prices.clear()
            self._day = day
        key = (provider, model, batch, context)
        try:
            return self._prices[key]
        except KeyError:
            price = self._resolve(provider, model, batch, context)
            if len(model) <= MAX_CACHED_NAME_CHARS:
                self._prices[key] = price
            if price is None and not batch and not context:
                name = model[:MAX_CACHED_NAME_CHARS]
                log.warning("no price for %s model %r: metered at cost 0", provider, name)
            return price

    def _resolve(
        self, provider: str, model: str, batch: bool, context: PriceContext
    ) -> Price | None:
        now = datetime.now(UTC)
        info = self._listed(provider, model)
        names = (model,) if info is None or info.id == model else (model, info.id)
        price, batch_priced = None, False
        if info is not None:
            price, batch_priced = _from_snapshot(info, now, batch, context)
        for source, layer in self.layers:
            name = next((name for name in names if name in layer), None)
            if name is None:
                continue
            entry = layer[name]
            if entry.input_per_mtok is not None:
                price, batch_priced = _from_settings(name, source, entry), False
            if price is not None and entry.scale != 1:
                price = price.scaled(entry.scale)
        if price is not None and batch and not batch_priced:
            price = price.scaled(self.batch_multiplier)
        if price is None and model.startswith("ft:"):
            base = model.split(":")[1] if model.count(":") >= 1 else ""
            found = self._resolve(provider, base, batch, context) if base else None
            if found is not None:
                return found.scaled(FINE_TUNED_FACTOR)
        if price is None and self.relative is not None:
            like = self.relative(model)
            if like is not None and like != model:
                return self._resolve(provider, like, batch, context)
        return price

    def _listed(self, provider: str, model: str) -> ModelInfo | None:
        # Not DataSnapshot.find_provider_model: it keeps every name it is asked, without bound.
        listing = find_provider_by_id(self.providers, provider)
        return None if listing is None else listing.find_model(model, all_providers=self.providers)


def _from_snapshot(
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


def _from_settings(model: str, source: str, entry: ModelPriceSettings) -> Price:
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
