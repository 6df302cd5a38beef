"""The routing table: step label -> plan (tier model, fallbacks, budgets, canary, shadow),
and model alias -> dated snapshot. Built once from config and the catalog; pure look-ups.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.catalog import ModelCatalog
from gateway.rewrite.routes import TIER_PREFIX
from gateway.settings import CanarySettings, RoutingSettings, ShadowSettings, StepSettings


@dataclass(frozen=True, slots=True)
class LatencyBudget:
    step: str
    ttft_ms: int | None
    total_ms: int | None

    def breaches(self, ttft_s: float | None, duration_s: float) -> tuple[str, ...]:
        """The phases over budget: `ttft` (streams only) and `total`."""
        phases: list[str] = []
        if self.ttft_ms is not None and ttft_s is not None and ttft_s * 1000 > self.ttft_ms:
            phases.append("ttft")
        if self.total_ms is not None and duration_s * 1000 > self.total_ms:
            phases.append("total")
        return tuple(phases)


@dataclass(frozen=True, slots=True)
class StepPlan:
    """What the config says about one step, with every model already pinned."""

    name: str
    tier: str | None
    ttft_ms: int | None
    total_ms: int | None
    hedge: bool
    canary: CanarySettings | None
    shadow: ShadowSettings | None
    # provider -> fallback models in order, pinned and resolved from tiers
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    timeout_s: float | None = None  # the whole call's enforced limit (the provider's if None)

    @property
    def budget(self) -> LatencyBudget | None:
        if self.ttft_ms is None and self.total_ms is None:
            return None
        return LatencyBudget(self.name, self.ttft_ms, self.total_ms)


class RoutingTable:
    def __init__(self, settings: RoutingSettings, catalog: ModelCatalog) -> None:
        self.settings = settings
        self._catalog = catalog
        self._pins: dict[str, str] = {
            alias: spec.id for spec in catalog.models for alias in spec.aliases
        }
        self._pins.update(settings.pins)
        self._tiers = {
            tier: {provider: self.pinned(model) for provider, model in models.items()}
            for tier, models in settings.tiers.items()
        }
        self._plans = {label: self._plan(label, step) for label, step in settings.steps.items()}

    def _plan(self, label: str, step: StepSettings) -> StepPlan:
        providers = {provider for models in self._tiers.values() for provider in models}
        providers |= {spec.provider for spec in self._catalog.models}
        fallbacks = {
            provider: tuple(
                model
                for name in step.fallbacks
                if (model := self._fallback_model(name, provider)) is not None
            )
            for provider in sorted(providers)
        }
        return StepPlan(
            label, step.tier, step.ttft_ms, step.total_ms, step.hedge,
            step.canary, step.shadow, fallbacks, step.timeout_s,
        )  # fmt: skip

    def _fallback_model(self, name: str, provider: str) -> str | None:
        if name.startswith(TIER_PREFIX):
            return self.tier_model(name[len(TIER_PREFIX) :], provider)
        spec = self._catalog.resolve(name)
        if spec is not None and spec.provider != provider:
            return None  # another provider's model: not a fallback on this wire format
        return self.pinned(name)

    def plan(self, step: str | None) -> StepPlan | None:
        """The step's plan; an unknown label follows `default_step`; no label, no plan."""
        if step is None:
            return None
        plan = self._plans.get(step)
        if plan is None and self.settings.default_step is not None:
            plan = self._plans[self.settings.default_step]
        return plan

    def step_models(self, step: str | None) -> frozenset[str] | None:
        """Every model a call labelled `step` can be sent to (its tier's models, canary,
        fallbacks, shadow); None when the step keeps the client's model (no tier)."""
        plan = self.plan(step)
        if plan is None or plan.tier is None:
            return None
        models = set(self._tiers.get(plan.tier, {}).values())
        if plan.canary is not None:
            models.add(self.pinned(plan.canary.model))
        if plan.shadow is not None:
            models |= {plan.shadow.model, self.pinned(plan.shadow.model)}
        for fallbacks in plan.fallbacks.values():
            models.update(fallbacks)
        return frozenset(models)

    def tier_model(self, tier: str, provider: str) -> str | None:
        models = self._tiers.get(tier)
        return None if models is None else models.get(provider)

    @property
    def tiers(self) -> tuple[str, ...]:
        return tuple(self._tiers)

    def pinned(self, model: str) -> str:
        """The dated snapshot an alias stands for; any other id unchanged."""
        return self._pins.get(model, model)

    @property
    def pins(self) -> Mapping[str, str]:
        return self._pins

    def configured_models(self) -> list[tuple[str, str]]:
        """(where in config, pinned model) for every model the routing config names."""
        named = [
            (f"routing.tiers.{tier}.{provider}", model)
            for tier, models in self._tiers.items()
            for provider, model in models.items()
        ]
        named += [(f"routing.pins.{alias}", model) for alias, model in self.settings.pins.items()]
        for label, step in self.settings.steps.items():
            where = f"routing.steps.{label}"
            named += [(f"{where}.fallbacks", self._pin_or_tier(name)) for name in step.fallbacks]
            if step.canary is not None:
                named.append((f"{where}.canary.model", self.pinned(step.canary.model)))
            if step.shadow is not None:
                named.append((f"{where}.shadow.model", self.pinned(step.shadow.model)))
        return [(where, model) for where, model in named if model]

    def _pin_or_tier(self, name: str) -> str:
        if name.startswith(TIER_PREFIX):
            return ""  # the tier's own models are listed under routing.tiers
        return self.pinned(name)
