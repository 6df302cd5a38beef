"""Admission: who is calling (a gateway key, or a provider key passed through), whether
its budgets and rate limits let this call go, and which provider key it goes out with.

The relay asks `Gate.admit` once a request is parsed and before it goes upstream (the
ledger's one round trip), and calls `Gate.settle` when the call is over, with its cost;
settling runs in the background, after the client has its response.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import SecretStr

from gateway.errors import (
    AuthenticationFailed,
    GatewayError,
    PermissionDenied,
    RateLimited,
    SpendLimitReached,
    StateUnavailable,
)
from gateway.metering.metrics import Metrics
from gateway.settings import StateSettings
from gateway.state.bounded import BoundedDict
from gateway.state.health import StoreUnreachable
from gateway.state.keys import NANO, GatewayKey, digest, is_gateway_key, to_nano
from gateway.state.ledger import PERIOD_NAMES, Admission, Ledger, Period, TeamBudget, limits_of
from gateway.wire.headers import header_value
from gateway.wire.usage import Usage

LOG = logging.getLogger("gateway.access")
RawHeaders = list[tuple[bytes, bytes]]
OTHER_KEY = "other"


@dataclass(frozen=True, slots=True)
class Admitted:
    """A gateway key's call let through: what it goes out with, and what to settle."""

    key: GatewayKey
    credential: bytes = field(repr=False)  # the provider key
    period: Period
    reserved_nano: int = 0
    counted: bool = True  # a model call: settled after it


def credential_of(headers: RawHeaders) -> bytes | None:
    value = header_value(headers, b"x-api-key")
    if value is not None:
        return value
    auth = header_value(headers, b"authorization")
    if auth is not None and auth[:7].lower() == b"bearer ":
        return auth[7:].strip()
    return None


class Gate:
    def __init__(
        self,
        ledger: Ledger,
        settings: StateSettings,
        provider_keys: Mapping[str, SecretStr | None],
        metrics: Metrics,
        *,
        count: bool = True,
    ) -> None:
        self.ledger = ledger
        self.settings = settings
        self.provider_keys = provider_keys
        self.metrics = metrics
        self.count = count
        self.teams = {
            name: TeamBudget(to_nano(t.daily_budget_usd), to_nano(t.monthly_budget_usd))
            for name, t in settings.teams.items()
        }
        # Key records seen, for outages: a record never changes, only disappears (revoked).
        self._known: BoundedDict[str, GatewayKey] = BoundedDict(10_000)
        self._labels: set[str] = set()
        self._pending: set[asyncio.Task[None]] = set()

    def free_calls(self) -> Gate:
        """The same gate for calls that cost nothing (count_tokens, models): the key is
        checked and swapped, no budget or rate limit applies."""
        gate = Gate(self.ledger, self.settings, self.provider_keys, self.metrics, count=False)
        gate._known, gate._labels = self._known, self._labels
        return gate

    async def admit(
        self, headers: RawHeaders, provider: str, model: str | None, step: str | None
    ) -> Admitted | None:
        """None: not a gateway key, passed through as it came."""
        credential = credential_of(headers)
        if credential is None or not is_gateway_key(credential):
            if self.settings.require_gateway_key:
                raise AuthenticationFailed("This gateway requires a gateway key (x-api-key).")
            return None
        key_digest = digest(credential)
        now = time.time()
        try:
            admission = await self.ledger.admit(key_digest, now, count=self.count)
        except StoreUnreachable:
            return self._unchecked(key_digest, provider, model, step, now)
        key = admission.key
        if key is None or not hmac.compare_digest(key.digest, key_digest):
            self._refused(None, "unknown_key")
            raise AuthenticationFailed("Invalid gateway key.")
        self._known[key_digest] = key
        label = self._label(key.name)
        if self.count:  # a free call reads no spend
            self._ratios(key, label, admission.spent_nano)
        if admission.refused is not None:
            self._refused(label, admission.refused)
            raise _refusal(key, admission)
        admitted = Admitted(
            key, self._provider_key(key, provider), admission.period or Period.at(now),
            admission.reserved_nano, self.count,
        )  # fmt: skip
        if not key.allows(model, step):
            self.settle(admitted, 0.0, None)  # gives the reservation back
            self._refused(label, "forbidden")
            raise PermissionDenied(f"Gateway key {key.name!r} may not call {model} ({step}).")
        return admitted

    def _unchecked(
        self, key_digest: str, provider: str, model: str | None, step: str | None, now: float
    ) -> Admitted:
        """The store is unreachable: a key this replica has seen follows its policy."""
        key = self._known.get(key_digest)
        if key is None:
            self._refused(None, "state_unavailable")
            raise StateUnavailable("Gateway key store unreachable; the key cannot be checked.")
        if (key.on_outage or self.settings.on_outage) == "fail_closed":
            self._refused(self._label(key.name), "state_unavailable")
            raise StateUnavailable("Budgets cannot be checked right now; try again shortly.")
        if not key.allows(model, step):
            raise PermissionDenied(f"Gateway key {key.name!r} may not call {model} ({step}).")
        return Admitted(key, self._provider_key(key, provider), Period.at(now), 0, self.count)

    def settle(self, admitted: Admitted, cost_usd: float, usage: Usage | None) -> None:
        """Charges the call's real cost and tokens, in the background."""
        if not admitted.counted:
            return
        tokens = 0 if usage is None else sum(usage.by_type().values()) - usage.cache_read
        task = asyncio.get_running_loop().create_task(
            self._settle(admitted, round(cost_usd * NANO), tokens)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """At shutdown: the calls already answered are charged before the store closes."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=5)

    async def _settle(self, admitted: Admitted, cost_nano: int, tokens: int) -> None:
        key = admitted.key
        try:
            spent = await self.ledger.settle(
                key, admitted.period, admitted.reserved_nano, cost_nano, tokens, time.time()
            )
        except StoreUnreachable:
            return  # counted by the store's health; this call's spend is not recorded
        self._ratios(key, self._label(key.name), spent)

    def _provider_key(self, key: GatewayKey, provider: str) -> bytes:
        if key.provider_key_env:
            value = os.environ.get(key.provider_key_env)
            if value:
                return value.encode()
        configured = self.provider_keys.get(provider)
        if configured is not None:
            return configured.get_secret_value().encode()
        raise GatewayError(
            f"Gateway key {key.name!r} has no provider key: set providers.{provider}.api_key"
            " or the key's --provider-key-env variable."
        )

    def _label(self, name: str) -> str:
        if name in self._labels:
            return name
        if len(self._labels) < self.settings.max_key_labels:
            self._labels.add(name)
            return name
        return OTHER_KEY

    def _ratios(self, key: GatewayKey, label: str, spent: tuple[int, int, int, int]) -> None:
        limits = limits_of(key, self.teams)
        for i, (period, used, limit) in enumerate(zip(PERIOD_NAMES, spent, limits, strict=True)):
            if not limit:
                continue
            owner = label if i < 2 else self._label(f"team:{key.team}")
            if owner != OTHER_KEY:  # past the label cap: no gauge, rather than a mixed one
                name = period.removeprefix("team_")
                self.metrics.budget_used_ratio.labels(owner, name).set(used / limit)

    def _refused(self, label: str | None, reason: str) -> None:
        self.metrics.admission_refused.labels(label or OTHER_KEY, reason).inc()


def _refusal(key: GatewayKey, admission: Admission) -> GatewayError:
    if admission.refused == "spend_limit":
        whose = f"team {key.team!r}" if admission.reason.startswith("team_") else "key"
        period = admission.reason.removeprefix("team_")
        return SpendLimitReached(
            f"The {period} budget of gateway {whose} ({key.name!r}) is spent; it resets at the"
            f" start of the next UTC {'day' if period == 'daily' else 'month'}."
        )
    return RateLimited(
        f"Gateway key {key.name!r} is over its {admission.reason} limit.",
        admission.retry_after_s or 1,
    )
