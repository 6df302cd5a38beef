"""What admission tells the metrics (refusals by key and reason, how much of each budget is
used, under a bounded set of key labels), and the errors a refused call gets."""

from __future__ import annotations

from gateway.errors import (
    AuthenticationFailed,
    GatewayError,
    PermissionDenied,
    RateLimited,
    SpendLimitReached,
    StateUnavailable,
)
from gateway.metering.metrics import Metrics
from gateway.state.keys import NANO, GatewayKey
from gateway.state.ledger import PERIOD_NAMES, Admission

OTHER_KEY = "other"


class Refusals:
    """Counts refusals and budget use per key label; key names past `max_labels` share one."""

    def __init__(self, metrics: Metrics, max_labels: int) -> None:
        self.metrics = metrics
        self.max_labels = max_labels
        self._labels: set[str] = set()

    def label(self, name: str) -> str:
        if name in self._labels:
            return name
        if len(self._labels) < self.max_labels:
            self._labels.add(name)
            return name
        return OTHER_KEY

    def refused(self, label: str | None, reason: str) -> None:
        self.metrics.admission_refused.labels(label or OTHER_KEY, reason).inc()

    def revoked(self) -> AuthenticationFailed:
        self.refused(None, "revoked")
        return AuthenticationFailed("Invalid gateway key (revoked).")

    def ratios(
        self, key: GatewayKey, label: str, spent: tuple[int, ...], limits: tuple[int, ...]
    ) -> None:
        for i, (period, used, limit) in enumerate(zip(PERIOD_NAMES, spent, limits, strict=True)):
            if not limit:
                continue
            owner = label if i < 2 else self.label(f"team:{key.team}")
            if owner != OTHER_KEY:  # past the label cap: no gauge, rather than a mixed one
                name = period.removeprefix("team_")
                self.metrics.budget_used_ratio.labels(owner, name).set(used / limit)


def busy() -> StateUnavailable:
    error = StateUnavailable("The gateway is busy checking budgets; try again shortly.")
    error.headers = ((b"retry-after", b"1"),)
    return error


def unpriced(key: GatewayKey, models: tuple[str, ...]) -> PermissionDenied:
    return PermissionDenied(
        f"Gateway key {key.name!r} has a budget, and the gateway has no price for"
        f" {', '.join(dict.fromkeys(models)) or 'this model'}: add it under"
        " pricing.models in the gateway's config to call it with this key."
    )


def over_limit(
    key: GatewayKey, admission: Admission, reserve: int, limits: tuple[int, ...]
) -> GatewayError:
    """The error for a call a budget or rate limit refused."""
    if admission.refused == "spend_limit":
        team = admission.reason.startswith("team_")
        whose = f"team {key.team!r}" if team else "key"
        period = admission.reason.removeprefix("team_")
        index = PERIOD_NAMES.index(admission.reason)
        limit = limits[index]
        spent = admission.spent_nano[index]
        resets = f"it resets at the start of the next UTC {'day' if period == 'daily' else 'month'}"
        if spent < limit:
            return SpendLimitReached(
                f"This call may cost up to ${reserve / NANO:.6f} (its input and max_tokens),"
                f" more than the ${(limit - spent) / NANO:.6f} left of the {period} budget"
                f" of gateway {whose} ({key.name!r}); lower max_tokens, or wait: {resets}."
            )
        return SpendLimitReached(
            f"The {period} budget of gateway {whose} ({key.name!r}) is spent; {resets}."
        )
    return RateLimited(
        f"Gateway key {key.name!r} is over its {admission.reason} limit.",
        admission.retry_after_s or 1,
    )
