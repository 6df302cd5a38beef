"""The cascade: steps, tiers, canaries, shadows, and retries (with their budget and the
circuit breaker)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gateway.settings.section import Section


class CanarySettings(Section):
    """A share of a step's conversations sent to a candidate model, sticky per conversation."""

    model: str
    percent: float = Field(ge=0, le=100)


class ShadowSettings(Section):
    """A sampled share of a step's calls also sent to a candidate, for offline comparison."""

    model: str
    sample: float = Field(ge=0, le=1)


class StepSettings(Section):
    # The tier whose model replaces the client's; unset: the client's model (pinned) is kept.
    tier: str | None = None
    # Latency budgets: a breach is counted (gateway_latency_budget_breaches_total) and logged.
    ttft_ms: int | None = Field(default=None, gt=0)
    total_ms: int | None = Field(default=None, gt=0)
    # With ttft_ms: no first token within it (and nothing sent yet), start the same call
    # on the first fallback (or the same model) and relay whichever starts first.
    hedge: bool = False
    # Tried in order once the step's model has failed its retries: model ids or "tier:NAME".
    fallbacks: tuple[str, ...] = ()
    # The whole call's time limit for this step (attempts, backoff, the body or stream to its
    # last byte), enforced; unset: the provider's total_timeout_s / stream_timeout_s.
    timeout_s: float | None = Field(default=None, gt=0)
    canary: CanarySettings | None = None
    shadow: ShadowSettings | None = None


class RetrySettings(Section):
    """Retries of 429, 5xx, 529, connect errors and timeouts, before the client gets a byte."""

    attempts_per_model: int = Field(default=3, ge=1)  # the first try included
    base_delay_s: float = Field(default=0.5, ge=0)
    max_delay_s: float = Field(default=8.0, ge=0)
    # A provider asking to wait longer than this: the next fallback instead, or the error.
    max_retry_after_s: float = Field(default=20.0, ge=0)
    # A provider that took the call and then sent nothing for its timeout_s: false, the next
    # fallback (another try would bill the call again and likely wait as long); true, retried
    # like a connect timeout, within the call's total_timeout_s.
    retry_read_timeouts: bool = False
    # The retry budget, per provider (Envoy's and Finagle's): over the last `budget_window_s`,
    # retries (and fallback attempts) are at most `budget_ratio` of the calls plus
    # `budget_min_per_s` a second; past it a failed attempt's error goes to the client at once.
    budget_ratio: float = Field(default=0.2, ge=0)
    budget_min_per_s: float = Field(default=0.1, ge=0)
    budget_window_s: float = Field(default=10.0, gt=0)
    # The circuit breaker, per provider and model: after `breaker_failures` failed attempts
    # in a row (429, 5xx, 529, connect errors, timeouts, cuts) calls to that model are answered
    # at once with the provider's overloaded error and a retry-after, without calling it; after
    # `breaker_cooldown_s` one call goes through as a probe, and its success closes it.
    # 0 failures: no breaker.
    breaker_failures: int = Field(default=5, ge=0)
    breaker_cooldown_s: float = Field(default=30.0, gt=0)
    # Models with a failure on record, per process: past it, a new model's failures are not
    # counted (its calls are never refused) until another model's breaker closes.
    breaker_max_models: int = Field(default=1024, ge=1)


def _default_tiers() -> dict[str, dict[str, str]]:
    # Current models only: claude-sonnet-4-5 retires 2026-11-30 (`gateway check` warns).
    return {
        "small": {"anthropic": "claude-haiku-5-5", "openai": "gpt-5.6-luna"},
        "large": {"anthropic": "claude-sonnet-5-5", "openai": "gpt-5.6-terra"},
    }


def _default_steps() -> dict[str, StepSettings]:
    # Documented practice: routing, classification and tool decisions on a small model,
    # synthesis on the large one. Other labels keep the client's model.
    small, large = StepSettings(tier="small"), StepSettings(tier="large")
    return {
        "routing": small,
        "classification": small,
        "tool_decision": small,
        "synthesis": large,
    }


class RoutingSettings(Section):
    """The cascade: step label -> tier -> model, model aliases pinned, retries, fallbacks."""

    # Aliases to dated snapshots: pin (rewrite), warn (a finding only), reject (400).
    pin_policy: Literal["pin", "warn", "reject"] = "pin"
    # Alias -> snapshot, over the catalog's own aliases (e.g. to hold an older snapshot).
    pins: dict[str, str] = Field(default_factory=dict)
    # Traffic to a model retiring within this many days is a finding and a metric.
    retirement_window_days: int = Field(default=30, ge=0)
    # Read lifecycle dates from the provider's GET /v1/models at start (when reachable).
    refresh_lifecycle: bool = True
    tiers: dict[str, dict[str, str]] = Field(default_factory=_default_tiers)
    steps: dict[str, StepSettings] = Field(default_factory=_default_steps)
    # The step an x-gateway-step label not in `steps` follows; unset: such calls keep their model.
    default_step: str | None = None
    retries: RetrySettings = RetrySettings()
    # Shadow pairs (primary and candidate outputs, usage, cost), one JSON line each.
    shadow_log: str = "shadow.jsonl"
    # Request bodies held by shadow calls in flight: past this, a sampled call gets no
    # shadow (gateway_shadow_calls_total{status="skipped"}).
    shadow_max_pending_bytes: int = Field(default=16 * 1024 * 1024, ge=0)

    @model_validator(mode="after")
    def _known_names(self) -> RoutingSettings:
        if self.default_step is not None and self.default_step not in self.steps:
            raise ValueError(f"default_step {self.default_step!r} is not in steps")
        for label, step in self.steps.items():
            named = [step.tier] if step.tier else []
            named += [f[len("tier:") :] for f in step.fallbacks if f.startswith("tier:")]
            for tier in named:
                if tier not in self.tiers:
                    raise ValueError(f"steps.{label}: unknown tier {tier!r}")
            if step.hedge and step.ttft_ms is None:
                raise ValueError(f"steps.{label}: hedge needs ttft_ms")
        return self
