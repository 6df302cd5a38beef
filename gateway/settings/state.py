"""The shared store: gateway keys, budgets, rate limits, and what happens while it is away."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, SecretStr

from gateway.settings.section import Section


class TeamBudgetSettings(Section):
    daily_budget_usd: float | None = Field(default=None, gt=0)
    monthly_budget_usd: float | None = Field(default=None, gt=0)


def _redis_url_from_environment() -> SecretStr | None:
    url = os.environ.get("REDIS_URL")
    return SecretStr(url) if url else None


class StateSettings(Section):
    """Gateway keys, budgets, rate limits and the shared prefix registry (docs/keys.md)."""

    # redis://host:6379/0 (also REDIS_URL); unset: in memory, this process only.
    redis_url: SecretStr | None = Field(default_factory=_redis_url_from_environment)
    key_prefix: str = "tollgate:"  # every Redis key starts with it
    # Each Redis call, connecting included, from when it has a connection.
    timeout_ms: int = Field(default=50, gt=0)
    max_connections: int = Field(default=64, ge=1)
    # Past max_connections a call queues for a free connection this long, then is refused
    # (503): a busy pool is load, not an outage, and never fails open.
    pool_wait_ms: int = Field(default=1000, gt=0)
    # Redis is judged unreachable (each key's last known state, then on_outage, applies)
    # after a connection error, or when no call has succeeded for this long while calls
    # fail. Before that a call that times out is tried again, up to call_attempts times in
    # all, then refused (503): a slow Redis is not an outage and never fails open.
    outage_after_ms: int = Field(default=1000, gt=0)
    call_attempts: int = Field(default=3, ge=1)
    # Charges of answered calls that could not be settled (Redis away), kept in memory and
    # settled when it is back; past this many the oldest are dropped and counted
    # (gateway_settle_dropped_total). About 200 bytes each.
    settle_backlog_max: int = Field(default=50_000, ge=0)
    # Where charges still unsettled at shutdown are kept (JSON lines, no secrets) and
    # settled from at the next start; "": not kept (counted as dropped).
    settle_backlog_file: str = ".tollgate/settle-backlog.jsonl"
    # Gateway keys whose last known state (valid, revoked, spend) this replica keeps for
    # outages: about 1 KB each.
    known_keys_max: int = Field(default=10_000, ge=0)
    # When Redis cannot be reached: relay unchecked (fail_open), or refuse with 503
    # (fail_closed). A key's own --on-outage wins.
    on_outage: Literal["fail_open", "fail_closed"] = "fail_open"
    outage_log_interval_s: float = Field(default=30.0, gt=0)
    # Refuse (401) credentials that are not gateway keys; false: provider keys pass through.
    require_gateway_key: bool = False
    # Without Redis, gateway keys live in this file: `gateway keys` writes it, serve reads it.
    keys_file: str = ".tollgate/keys.json"
    # A call reserves the most it can cost (input estimated from the body, plus its
    # max_tokens, at the dearest model it may be served by). A model without a price is
    # refused (403) to a key or team with a budget, and reserves nothing for one without.
    # This is reserved only by a counted call without a JSON body to judge.
    first_call_reserve_usd: float = Field(default=0.01, ge=0)
    # The output limit a call without max_tokens reserves for, on a model the catalog does
    # not know (a known model reserves its own maximum output).
    reserve_output_tokens: int = Field(default=32_768, ge=1)
    teams: dict[str, TeamBudgetSettings] = Field(default_factory=dict)
    # Key names kept as metric label values; further keys are counted as "other".
    max_key_labels: int = Field(default=200, ge=1)
