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
from datetime import UTC, datetime
from importlib import resources
from typing import NamedTuple

import yaml
from genai_prices.data_snapshot import find_provider_by_id
from genai_prices.types import ModelInfo, Provider

from gateway.metering.rates import (
    Price,
    PriceContext,
    from_settings,
    from_snapshot,
)
from gateway.settings import ModelPriceSettings, PricingSettings
from gateway.wire.usage import Usage

UNPRICED_MODEL = "unpriced_model"

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


class Priced(NamedTuple):
    """A cost `Pricing.cost` gave for this model, usage and context: the relay prices a JSON
    body for its cost header, and the meter takes that answer for the same inputs. A tuple,
    made at once (a frozen dataclass sets each field apart)."""

    model: str
    usage: Usage
    context: PriceContext
    usd: float | None


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
            price, batch_priced = from_snapshot(info, now, batch, context)
        for source, layer in self.layers:
            name = next((name for name in names if name in layer), None)
            if name is None:
                continue
            entry = layer[name]
            if entry.input_per_mtok is not None:
                price, batch_priced = from_settings(name, source, entry), False
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
