"""The Gate: admission's three steps and the settle after the call (the package's docstring
tells the order). Each step asks the ledger once; while the store does not answer, this
replica's memory of a key (memory.py) decides."""

from __future__ import annotations

import hmac
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sized
from typing import Any

from pydantic import SecretStr

from gateway.admission.caller import Admitted, Caller, credential_of, provider_key
from gateway.admission.memory import KeyMemory, plus
from gateway.admission.refusals import Refusals, busy, over_limit, unpriced
from gateway.admission.settle import Charge, Settlements
from gateway.errors import AuthenticationFailed, PermissionDenied, StateUnavailable
from gateway.metering.ceiling import CostCeiling
from gateway.metering.metrics import Metrics
from gateway.settings import StateSettings
from gateway.state.health import StoreBusy, StoreSlow, StoreUnreachable
from gateway.state.keys import NANO, GatewayKey, digest, is_gateway_key, to_nano
from gateway.state.ledger import (
    PERIOD_NAMES,
    Admission,
    Ledger,
    Period,
    TeamBudget,
    limits_of,
    over_budget,
)
from gateway.wire.headers import RawHeaders
from gateway.wire.usage import Usage

UNREACHABLE = "Gateway key store unreachable; the key cannot be checked."


class Gate:
    def __init__(
        self,
        ledger: Ledger,
        settings: StateSettings,
        provider_keys: Mapping[str, SecretStr | None],
        metrics: Metrics,
        *,
        count: bool = True,
        ceiling: CostCeiling | None = None,
        aliases: Mapping[str, tuple[str, ...]] | None = None,
        step_models: Callable[[str | None], frozenset[str] | None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.settings = settings
        self.provider_keys = provider_keys
        self.metrics = metrics
        self.count = count
        self.ceiling = ceiling
        # model id -> the aliases pinned to it: a key allowing an alias allows its snapshot.
        self.aliases: Mapping[str, tuple[str, ...]] = aliases or {}
        # step -> the models its routing can send a call to (None: the client's choice).
        self.step_models = step_models or (lambda step: None)
        self.teams = {
            name: TeamBudget(to_nano(t.daily_budget_usd), to_nano(t.monthly_budget_usd))
            for name, t in settings.teams.items()
        }
        self.memory = KeyMemory(settings.known_keys_max)
        self.refusals = Refusals(metrics, settings.max_key_labels)
        self.settlements = Settlements(
            settings, metrics, lambda: self.ledger, self.memory, self.refusals, self.teams
        )

    def free_calls(self) -> Gate:
        """The same gate for calls that cost nothing (count_tokens, models): the key is
        checked and swapped, no budget or rate limit applies."""
        gate = Gate(
            self.ledger, self.settings, self.provider_keys, self.metrics,
            count=False, aliases=self.aliases, step_models=self.step_models,
        )  # fmt: skip
        gate.memory, gate.refusals = self.memory, self.refusals
        return gate

    # 1. Who is calling.

    async def authenticate(self, headers: RawHeaders, step: str | None) -> Caller | None:
        """The calling key, from the headers alone; None: not a gateway key, passed through
        as it came (unless a gateway key is required)."""
        credential = credential_of(headers)
        if credential is None or not is_gateway_key(credential):
            if self.settings.require_gateway_key:
                raise AuthenticationFailed("This gateway requires a gateway key (x-api-key).")
            return None
        key_digest = digest(credential)
        known = self.memory.get(key_digest)
        if known is not None and known.key is not None:
            key = known.key  # seen valid: admit() confirms it with the store
        else:  # never seen, or last seen revoked (a store restored from backup may know it)
            try:
                admission = await self._retried(
                    lambda: self.ledger.admit(key_digest, time.time(), count=False)
                )
            except StoreBusy:
                if known is not None:
                    raise self.refusals.revoked() from None
                self.refusals.refused(None, "state_busy")
                raise busy() from None
            except StoreUnreachable:
                if known is not None:  # revoked, as last known
                    raise self.refusals.revoked() from None
                self.refusals.refused(None, "state_unavailable")
                raise StateUnavailable(UNREACHABLE) from None
            key = self._confirmed(key_digest, admission)
        if not key.allows_step(step):
            self.refusals.refused(self.refusals.label(key.name), "forbidden")
            raise PermissionDenied(f"Gateway key {key.name!r} may not call step {step!r}.")
        return Caller(key, key_digest, step)

    def _confirmed(self, key_digest: str, admission: Admission) -> GatewayKey:
        """The store's answer about a key, remembered: its record, or that it has none."""
        key = admission.key
        if key is None or not hmac.compare_digest(key.digest, key_digest):
            known = self.memory.get(key_digest)
            if known is not None:  # seen before: revoked since
                known.key = None
                raise self.refusals.revoked()
            self.refusals.refused(None, "unknown_key")
            raise AuthenticationFailed("Invalid gateway key.")
        self.memory.confirm(key_digest, key)
        return key

    # 2. What it may call.

    def authorize(self, caller: Caller, model: str, others: Iterable[str]) -> frozenset[str]:
        """Refuses (403) a model the key may not call; returns the `others` (fallbacks,
        hedge, shadow) it may not call, which the call goes without."""
        if not self._allows(caller, model):
            self.refusals.refused(self.refusals.label(caller.key.name), "forbidden")
            raise PermissionDenied(
                f"Gateway key {caller.key.name!r} may not call {model or None}"
                f" (step {caller.step!r})."
            )
        return frozenset(m for m in others if not self._allows(caller, m))

    def _allows(self, caller: Caller, model: str) -> bool:
        """The key's model patterns, matched by the model's id or an alias pinned to it. A
        key limited to steps alone may call what those steps route to, and nothing else:
        neither `x-gateway-route: off` nor a `tier:` model takes it elsewhere."""
        key = caller.key
        names = (model, *self.aliases.get(model, ()))
        if not key.allows_model(*names):
            return False
        if key.models or not key.steps:
            return True
        routed = self.step_models(caller.step)
        return routed is None or any(name in routed for name in names)

    # 3. Whether its budgets and limits let it go.

    async def admit(
        self,
        caller: Caller | None,
        provider: str,
        models: Iterable[str] = (),
        body: Mapping[str, Any] | None = None,
        raw: Sized | None = None,  # `body` as sent, its JSON: the ceiling counts its length
    ) -> Admitted | None:
        """Counts the call and reserves the most it can cost on any of `models` (the body's
        input and output limit); None for a caller that is not a gateway key."""
        if caller is None:
            return None
        key_digest = caller.digest
        now = time.time()
        reserve = self._reserve_nano(caller, provider, models, body, raw) if self.count else 0
        # Named, so that a retry after a late reply is not counted twice.
        call_id = secrets.token_hex(12) if self.count else ""
        try:
            admission = await self._retried(
                lambda: self.ledger.admit(
                    key_digest, now, count=self.count, reserve_nano=reserve, call_id=call_id
                )
            )
        except StoreBusy:
            self.refusals.refused(self.refusals.label(caller.key.name), "state_busy")
            raise busy() from None
        except StoreSlow:  # not judged unreachable: no fail_open
            return self._unchecked(caller, provider, reserve, now, call_id, down=False)
        except StoreUnreachable:
            return self._unchecked(caller, provider, reserve, now, call_id, down=True)
        key = self._confirmed(key_digest, admission)
        label = self.refusals.label(key.name)
        if self.count:  # a free call reads no spend
            self.refusals.ratios(key, label, admission.spent_nano, limits_of(key, self.teams))
            spent = admission.spent_nano
            if admission.refused is None:
                spent = plus(spent, admission.reserved_nano)
            self.memory.remember(key_digest, key, admission.period, spent)
        if admission.refused is not None:
            self.refusals.refused(label, admission.refused)
            raise over_limit(key, admission, reserve, limits_of(key, self.teams))
        return Admitted(
            key, provider_key(key, provider, self.provider_keys),
            admission.period or Period.at(now), admission.reserved_nano, self.count, key_digest,
            call_id=call_id,
        )  # fmt: skip

    async def _retried(self, ask: Callable[[], Awaitable[Admission]]) -> Admission:
        """The ledger's answer, asked again while single calls time out (the store is slow,
        not judged unreachable), up to state.call_attempts times in all."""
        for _ in range(self.settings.call_attempts - 1):
            try:
                return await ask()
            except StoreSlow:
                continue
        return await ask()

    def _reserve_nano(
        self,
        caller: Caller,
        provider: str,
        models: Iterable[str],
        body: Mapping[str, Any] | None,
        raw: Sized | None = None,
    ) -> int:
        if self.ceiling is None or body is None:  # nothing to judge the call's cost by
            return to_nano(self.settings.first_call_reserve_usd)
        models = tuple(models)
        most = self.ceiling.usd(provider, models, body, raw)
        if most is not None:
            return math.ceil(most * NANO)
        # No price: its cost cannot be known, so a budget cannot hold it.
        if any(limits_of(caller.key, self.teams)):
            self.refusals.refused(self.refusals.label(caller.key.name), "unpriced_model")
            raise unpriced(caller.key, models)
        return 0

    def _unchecked(
        self, caller: Caller, provider: str, reserve: int, now: float, call_id: str, down: bool
    ) -> Admitted:
        """The store did not answer: the key's last known state refuses what it refused
        (revoked, spent); then, only if the store is judged unreachable, its policy."""
        known = self.memory.get(caller.digest)
        if known is None:
            self.refusals.refused(None, "state_unavailable")
            raise StateUnavailable(UNREACHABLE)
        key = known.key
        if key is None:
            raise self.refusals.revoked()
        label = self.refusals.label(key.name)
        period = Period.at(now)
        spent = known.spent_in(period)
        if self.count:
            limits = limits_of(key, self.teams)
            for name, used, limit in zip(PERIOD_NAMES, spent, limits, strict=True):
                if over_budget(used, limit, reserve):
                    self.refusals.refused(label, "spend_limit")
                    refusal = Admission(key, "spend_limit", name, spent_nano=spent, period=period)
                    raise over_limit(key, refusal, reserve, limits)
        if not down:
            self.refusals.refused(label, "state_busy")
            raise busy()
        if (key.on_outage or self.settings.on_outage) == "fail_closed":
            self.refusals.refused(label, "state_unavailable")
            raise StateUnavailable("Budgets cannot be checked right now; try again shortly.")
        if self.count:
            known.period, known.spent = period, plus(spent, reserve)
        credential = provider_key(key, provider, self.provider_keys)
        return Admitted(key, credential, period, 0, self.count, caller.digest, reserve, call_id)

    # After the call.

    def settle(
        self,
        admitted: Admitted,
        cost_usd: float,
        usage: Usage | None,
        *,
        at_least_reserved: bool = False,
        unseen_attempts: int = 0,
    ) -> None:
        """Charges the call's real cost and tokens, in the background (Charge.of)."""
        if admitted.counted:
            charge = Charge.of(
                admitted, cost_usd, usage,
                at_least_reserved=at_least_reserved, unseen_attempts=unseen_attempts,
            )  # fmt: skip
            self.settlements.add(charge, admitted.local_nano)

    @property
    def backlog(self) -> int:
        """Charges waiting for the store."""
        return self.settlements.backlog

    async def drain(self) -> None:
        """At shutdown: the calls already answered are charged before the store closes."""
        await self.settlements.drain()

    async def resume(self) -> None:
        """At start: charges a previous run kept are settled."""
        await self.settlements.resume()
