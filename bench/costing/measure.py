"""What a replayed call cost: its usage at the gateway's own prices, per call and per replay."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from harness.stats import percentile
from workloads import Call

from costing.config import SHARED_PREFIX_READ
from gateway.catalog import ModelCatalog
from gateway.metering.pricing import Pricing
from gateway.wire.usage import Usage as TokenUsage

PRICING = Pricing.load()  # the gateway's own price source: genai-prices and its overrides
CATALOG = ModelCatalog.load()


def _provider(model: str) -> str:
    spec = CATALOG.resolve(model)
    return spec.provider if spec is not None else "anthropic"


@dataclass(frozen=True, slots=True)
class Usage(TokenUsage):
    """The gateway's token counts, summed over calls and priced."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input + other.input,
            self.output + other.output,
            self.cache_read + other.cache_read,
            self.cache_write_5m + other.cache_write_5m,
            self.cache_write_1h + other.cache_write_1h,
        )

    @property
    def prompt(self) -> int:
        return self.input + self.cache_read + self.cache_write_5m + self.cache_write_1h

    @property
    def hit_ratio(self) -> float:
        return self.cache_read / self.prompt if self.prompt else 0.0

    def cost(self, model: str) -> float:
        priced = PRICING.cost(_provider(model), model, self)
        if priced is None:
            raise LookupError(f"no price for {model}")
        return priced


@dataclass(frozen=True, slots=True)
class Result:
    call: Call
    usage: Usage
    ttft_ms: float
    rewrites: tuple[str, ...]
    model: str  # the model that served the call (the cascade may have chosen another)

    @property
    def cost(self) -> float:
        return self.usage.cost(self.model)

    @property
    def prompt_cost(self) -> float:
        """The cost of the prompt alone: the part caching can change."""
        return replace(self.usage, output=0).cost(self.model)


@dataclass
class Replay:
    """One workload on one route: every call's result."""

    workload: str
    route: str
    scale: float
    results: list[Result] = field(default_factory=list)

    @property
    def usage(self) -> Usage:
        return sum((r.usage for r in self.results), Usage())

    @property
    def cost_per_day(self) -> float:
        return sum(r.cost for r in self.results) / self.scale

    @property
    def prompt_cost_per_day(self) -> float:
        return sum(r.prompt_cost for r in self.results) / self.scale

    def ttft(self, q: float) -> float:
        return percentile([r.ttft_ms for r in self.results if r.call.measured], q)

    def prefix_writes(self) -> tuple[Counter[str], Counter[str]]:
        """Per shared prefix (fan-out): how many calls wrote it, and how many read it."""
        writes: Counter[str] = Counter()
        reads: Counter[str] = Counter()
        for r in self.results:
            if r.call.prefix is None or not r.call.prefix_tokens:
                continue
            need = SHARED_PREFIX_READ * r.call.prefix_tokens
            written = r.usage.cache_write_5m + r.usage.cache_write_1h
            writes[r.call.prefix] += r.usage.cache_read < need <= r.usage.cache_read + written
            reads[r.call.prefix] += r.usage.cache_read >= need
        return writes, reads
