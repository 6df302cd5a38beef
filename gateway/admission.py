"""Admission: who is calling (a gateway key, or a provider key passed through), what it may
call, whether its budgets and rate limits let this call go, and which provider key it goes
out with.

The relay asks in three steps:

1. `Gate.authenticate`, from the headers alone, before anything reads or learns from the
   body: an unknown or revoked key is refused (401) here. A key this replica has seen
   valid is taken from memory; the next step confirms it with the store.
2. `Gate.authorize`, once routing and pinning chose the models: the model that will be
   called must be one the key allows (else 403); fallbacks, hedges and shadows it does
   not allow are dropped from the call.
3. `Gate.admit`: the ledger's one round trip. It reserves the most the call can cost
   (metering/ceiling.py) against the key's budgets, refused (429) if that does not fit.

`Gate.settle` charges the real cost when the call is over, in the background. A charge
that cannot reach the store waits in a bounded backlog and is settled when it is back.

While the store is unreachable, a key's last known state holds: a revoked key stays
refused, a spent budget stays spent (this replica counts what it lets through on top of
the last spend it saw), and only then does the key's on_outage policy apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import os
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr

from gateway.cache.bounded import BoundedDict
from gateway.errors import (
    AuthenticationFailed,
    GatewayError,
    PermissionDenied,
    RateLimited,
    SpendLimitReached,
    StateUnavailable,
)
from gateway.metering.ceiling import CostCeiling
from gateway.metering.metrics import Metrics
from gateway.settings import StateSettings
from gateway.state.health import PROBE_EVERY_S, StoreBusy, StoreSlow, StoreUnreachable
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
from gateway.wire.headers import header_value
from gateway.wire.usage import Usage

LOG = logging.getLogger("gateway.admission")
RawHeaders = list[tuple[bytes, bytes]]
Spend = tuple[int, int, int, int]
OTHER_KEY = "other"
NO_SPEND: Spend = (0, 0, 0, 0)
DRAIN_S = 5.0  # at shutdown: for the calls being settled, and again for the backlog


@dataclass(frozen=True, slots=True)
class Caller:
    """A gateway key that authenticated: known before the request is read."""

    key: GatewayKey
    digest: str = field(repr=False)
    step: str | None = None


@dataclass(frozen=True, slots=True)
class Admitted:
    """A gateway key's call let through: what it goes out with, and what to settle."""

    key: GatewayKey
    credential: bytes = field(repr=False)  # the provider key
    period: Period
    reserved_nano: int = 0  # reserved in the store
    counted: bool = True  # a model call: settled after it
    digest: str = field(default="", repr=False)
    local_nano: int = 0  # reserved in this replica's known spend only (the store was away)
    call_id: str = ""  # the ledger's name for the call: its reservation, settled once


@dataclass(slots=True)
class Known:
    """A key's last known state, for outages: its record (None once the store said it is
    unknown: revoked), and its spend in `period` as last seen plus what this replica let
    through since."""

    key: GatewayKey | None
    period: Period | None = None
    spent: Spend = NO_SPEND


@dataclass(frozen=True, slots=True)
class Charge:
    """A settle the store has not recorded yet."""

    key: GatewayKey
    digest: str = field(repr=False)
    period: Period
    reserved_nano: int
    cost_nano: int
    tokens: int
    at: float
    unchecked: bool = False  # admitted while the store was away
    call_id: str = ""

    def to_line(self) -> bytes:
        """One JSON line of the backlog file (the key's record, never its secret)."""
        fields = {
            "key": self.key.to_fields(), "digest": self.digest, "day": self.period.day,
            "month": self.period.month, "reserved_nano": self.reserved_nano,
            "cost_nano": self.cost_nano, "tokens": self.tokens, "at": self.at,
            "unchecked": self.unchecked, "call_id": self.call_id,
        }  # fmt: skip
        return orjson.dumps(fields) + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> Charge:
        d = orjson.loads(line)
        return cls(
            GatewayKey.from_fields(d["key"]), d["digest"], Period(d["day"], d["month"]),
            int(d["reserved_nano"]), int(d["cost_nano"]), int(d["tokens"]), float(d["at"]),
            bool(d["unchecked"]), str(d["call_id"]),
        )  # fmt: skip


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
        self._known: BoundedDict[str, Known] = BoundedDict(max(1, settings.known_keys_max))
        self._labels: set[str] = set()
        self._pending: set[asyncio.Task[None]] = set()
        self._backlog: deque[Charge] = deque()
        self._replay: asyncio.Task[None] | None = None

    def free_calls(self) -> Gate:
        """The same gate for calls that cost nothing (count_tokens, models): the key is
        checked and swapped, no budget or rate limit applies."""
        gate = Gate(
            self.ledger, self.settings, self.provider_keys, self.metrics,
            count=False, aliases=self.aliases, step_models=self.step_models,
        )  # fmt: skip
        gate._known, gate._labels = self._known, self._labels
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
        known = self._known.get(key_digest)
        if known is not None and known.key is not None:
            key = known.key  # seen valid: admit() confirms it with the store
        else:  # never seen, or last seen revoked (a store restored from backup may know it)
            try:
                admission = await self._retried(
                    lambda: self.ledger.admit(key_digest, time.time(), count=False)
                )
            except StoreBusy:
                if known is not None:
                    raise self._revoked() from None
                self._refused(None, "state_busy")
                raise _busy() from None
            except StoreUnreachable:
                if known is not None:  # revoked, as last known
                    raise self._revoked() from None
                self._refused(None, "state_unavailable")
                raise StateUnavailable(
                    "Gateway key store unreachable; the key cannot be checked."
                ) from None
            key = self._confirmed(key_digest, admission)
        if not key.allows_step(step):
            self._refused(self._label(key.name), "forbidden")
            raise PermissionDenied(f"Gateway key {key.name!r} may not call step {step!r}.")
        return Caller(key, key_digest, step)

    def _confirmed(self, key_digest: str, admission: Admission) -> GatewayKey:
        """The store's answer about a key, remembered: its record, or that it has none."""
        key = admission.key
        if key is None or not hmac.compare_digest(key.digest, key_digest):
            known = self._known.get(key_digest)
            if known is not None:  # seen before: revoked since
                known.key = None
                raise self._revoked()
            self._refused(None, "unknown_key")
            raise AuthenticationFailed("Invalid gateway key.")
        known = self._known.get(key_digest)
        if known is None:
            self._known[key_digest] = Known(key)
        else:
            known.key = key
        return key

    def _revoked(self) -> AuthenticationFailed:
        self._refused(None, "revoked")
        return AuthenticationFailed("Invalid gateway key (revoked).")

    # 2. What it may call.

    def authorize(self, caller: Caller, model: str, others: Iterable[str]) -> frozenset[str]:
        """Refuses (403) a model the key may not call; returns the `others` (fallbacks,
        hedge, shadow) it may not call, which the call goes without."""
        if not self._allows(caller, model):
            self._refused(self._label(caller.key.name), "forbidden")
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
    ) -> Admitted | None:
        """Counts the call and reserves the most it can cost on any of `models` (the body's
        input and output limit); None for a caller that is not a gateway key."""
        if caller is None:
            return None
        key_digest = caller.digest
        now = time.time()
        reserve = self._reserve_nano(caller, provider, models, body) if self.count else 0
        # Named, so that a retry after a late reply is not counted twice.
        call_id = secrets.token_hex(12) if self.count else ""
        try:
            admission = await self._retried(
                lambda: self.ledger.admit(
                    key_digest, now, count=self.count, reserve_nano=reserve, call_id=call_id
                )
            )
        except StoreBusy:
            self._refused(self._label(caller.key.name), "state_busy")
            raise _busy() from None
        except StoreSlow:  # not judged unreachable: no fail_open
            return self._unchecked(caller, provider, reserve, now, call_id, down=False)
        except StoreUnreachable:
            return self._unchecked(caller, provider, reserve, now, call_id, down=True)
        key = self._confirmed(key_digest, admission)
        label = self._label(key.name)
        if self.count:  # a free call reads no spend
            self._ratios(key, label, admission.spent_nano)
            spent = admission.spent_nano
            if admission.refused is None:
                spent = _plus(spent, admission.reserved_nano)
            self._remember(key_digest, key, admission.period, spent)
        if admission.refused is not None:
            self._refused(label, admission.refused)
            raise self._refusal(key, admission, reserve)
        return Admitted(
            key, self._provider_key(key, provider), admission.period or Period.at(now),
            admission.reserved_nano, self.count, key_digest, call_id=call_id,
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
    ) -> int:
        if self.ceiling is None or body is None:  # nothing to judge the call's cost by
            return to_nano(self.settings.first_call_reserve_usd)
        models = tuple(models)
        most = self.ceiling.usd(provider, models, body)
        if most is not None:
            return math.ceil(most * NANO)
        # No price: its cost cannot be known, so a budget cannot hold it.
        if any(limits_of(caller.key, self.teams)):
            self._refused(self._label(caller.key.name), "unpriced_model")
            raise PermissionDenied(
                f"Gateway key {caller.key.name!r} has a budget, and the gateway has no price for"
                f" {', '.join(dict.fromkeys(models)) or 'this model'}: add it under"
                " pricing.models in the gateway's config to call it with this key."
            )
        return 0

    def _unchecked(
        self, caller: Caller, provider: str, reserve: int, now: float, call_id: str, down: bool
    ) -> Admitted:
        """The store did not answer: the key's last known state refuses what it refused
        (revoked, spent); then, only if the store is judged unreachable, its policy."""
        known = self._known.get(caller.digest)
        if known is None:
            self._refused(None, "state_unavailable")
            raise StateUnavailable("Gateway key store unreachable; the key cannot be checked.")
        key = known.key
        if key is None:
            raise self._revoked()
        label = self._label(key.name)
        period = Period.at(now)
        spent = _in_period(known, period)
        if self.count:
            limits = limits_of(key, self.teams)
            for name, used, limit in zip(PERIOD_NAMES, spent, limits, strict=True):
                if over_budget(used, limit, reserve):
                    self._refused(label, "spend_limit")
                    refusal = Admission(key, "spend_limit", name, spent_nano=spent, period=period)
                    raise self._refusal(key, refusal, reserve)
        if not down:
            self._refused(label, "state_busy")
            raise _busy()
        if (key.on_outage or self.settings.on_outage) == "fail_closed":
            self._refused(label, "state_unavailable")
            raise StateUnavailable("Budgets cannot be checked right now; try again shortly.")
        if self.count:
            known.period, known.spent = period, _plus(spent, reserve)
        credential = self._provider_key(key, provider)
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
        """Charges the call's real cost and tokens, in the background; `at_least_reserved`
        (no price, or tokens made whose usage was not seen): never less than the call
        reserved; `unseen_attempts` (a hedge's loser, a cut retried): one reservation each."""
        if not admitted.counted:
            return
        reserved = (admitted.reserved_nano or admitted.local_nano) / NANO
        if at_least_reserved:
            cost_usd = max(cost_usd, reserved)
        cost_usd += unseen_attempts * reserved
        tokens = 0 if usage is None else sum(usage.by_type().values()) - usage.cache_read
        charge = Charge(
            admitted.key, admitted.digest, admitted.period, admitted.reserved_nano,
            round(cost_usd * NANO), tokens, time.time(), admitted.local_nano > 0,
            admitted.call_id,
        )  # fmt: skip
        if admitted.local_nano:  # this replica's own count, until the store answers again
            self._adjust(charge, round(cost_usd * NANO) - admitted.local_nano)
        task = asyncio.get_running_loop().create_task(self._settle(charge))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _settle(self, charge: Charge) -> None:
        try:
            spent = await self._store(charge)
        except StoreUnreachable:
            if not charge.unchecked:  # admitted unchecked: already in the known spend
                self._adjust(charge, charge.cost_nano - charge.reserved_nano)
            self._defer(charge)
            return
        self._settled(charge, spent)

    async def _store(self, charge: Charge) -> Spend:
        """The ledger's settle of `charge`; raises StoreUnreachable while the store is away."""
        return await self.ledger.settle(
            charge.key, charge.period, charge.reserved_nano, charge.cost_nano,
            charge.tokens, charge.at, charge.call_id,
        )  # fmt: skip

    def _settled(self, charge: Charge, spent: Spend) -> None:
        self._remember(charge.digest, charge.key, charge.period, spent)
        self._ratios(charge.key, self._label(charge.key.name), spent)

    def _defer(self, charge: Charge) -> None:
        """Keeps a charge the store did not take, to settle when it is back."""
        if self.settings.settle_backlog_max <= 0:
            self.metrics.settle_dropped.inc()
            return
        if len(self._backlog) >= self.settings.settle_backlog_max:
            self._backlog.popleft()
            self.metrics.settle_dropped.inc()
        self._backlog.append(charge)
        self.metrics.settle_backlog.set(len(self._backlog))
        if self._replay is None or self._replay.done():
            self._replay = asyncio.get_running_loop().create_task(self._replay_backlog())

    async def _replay_backlog(self) -> None:
        """Settles the backlog, oldest first, probing once a second while the store is away."""
        while self._backlog:
            charge = self._backlog[0]
            try:
                spent = await self._store(charge)
            except StoreUnreachable:
                await asyncio.sleep(PROBE_EVERY_S)
                continue
            if self._backlog and self._backlog[0] is charge:  # not dropped meanwhile
                self._backlog.popleft()
            self.metrics.settle_backlog.set(len(self._backlog))
            self._settled(charge, spent)

    @property
    def backlog(self) -> int:
        """Charges waiting for the store."""
        return len(self._backlog)

    async def drain(self) -> None:
        """At shutdown: the calls already answered are charged before the store closes."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=DRAIN_S)
        if self._replay is not None and not self._replay.done():
            await asyncio.wait({self._replay}, timeout=DRAIN_S)
            self._replay.cancel()
        if self._backlog:
            kept = self._save_backlog()
            LOG.warning(
                "%d charges of answered calls could not be settled: the state store is away; %s",
                len(self._backlog),
                f"kept in {kept} for the next start" if kept else "they are lost",
            )
            if not kept:
                self.metrics.settle_dropped.inc(len(self._backlog))
            self._backlog.clear()
            self.metrics.settle_backlog.set(0)

    def _save_backlog(self) -> str | None:
        """Appends the backlog to state.settle_backlog_file; its path, or None (no file)."""
        path = self.settings.settle_backlog_file
        if not path:
            return None
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with open(path, "ab") as out:
                out.write(b"".join(charge.to_line() for charge in self._backlog))
        except OSError:
            LOG.exception("could not write the settle backlog to %s", path)
            return None
        return path

    async def resume(self) -> None:
        """At start: charges a previous run kept in state.settle_backlog_file are settled
        (the file is taken whole, so one of several workers gets each)."""
        path = self.settings.settle_backlog_file
        charges = await asyncio.to_thread(_take_backlog, path) if path else []
        for charge in charges:
            self._defer(charge)
        if charges:
            LOG.warning("%d charges kept by a previous run are being settled", len(charges))

    # This replica's memory of keys.

    def _remember(
        self, key_digest: str, key: GatewayKey, period: Period | None, spent: Spend
    ) -> None:
        known = self._known.get(key_digest)
        if known is None:
            self._known[key_digest] = Known(key, period, spent)
        else:
            known.key, known.period, known.spent = key, period, spent

    def _adjust(self, charge: Charge, delta_nano: int) -> None:
        known = self._known.get(charge.digest)
        if known is not None and known.period == charge.period:
            known.spent = _plus(known.spent, delta_nano)

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

    def _ratios(self, key: GatewayKey, label: str, spent: Spend) -> None:
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

    def _refusal(self, key: GatewayKey, admission: Admission, reserve: int) -> GatewayError:
        if admission.refused == "spend_limit":
            team = admission.reason.startswith("team_")
            whose = f"team {key.team!r}" if team else "key"
            period = admission.reason.removeprefix("team_")
            index = PERIOD_NAMES.index(admission.reason)
            limit = limits_of(key, self.teams)[index]
            spent = admission.spent_nano[index]
            resets = (
                f"it resets at the start of the next UTC {'day' if period == 'daily' else 'month'}"
            )
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


def _take_backlog(path: str) -> list[Charge]:
    """The charges in a backlog file, which is removed (renamed first: taken once)."""
    taken = f"{path}.{os.getpid()}.replaying"
    try:
        os.replace(path, taken)
    except FileNotFoundError:
        return []
    try:
        with open(taken, "rb") as lines:
            charges = [Charge.from_line(line) for line in lines if line.strip()]
    except (OSError, ValueError, KeyError):
        LOG.exception("could not read the settle backlog %s: left for an operator", taken)
        return []
    with contextlib.suppress(OSError):
        os.remove(taken)
    return charges


def _busy() -> StateUnavailable:
    error = StateUnavailable("The gateway is busy checking budgets; try again shortly.")
    error.headers = ((b"retry-after", b"1"),)
    return error


def _plus(spent: Spend, nano: int) -> Spend:
    """`nano` added to each of the four counters (a key without a team has 0 limits there)."""
    return spent[0] + nano, spent[1] + nano, spent[2] + nano, spent[3] + nano


def _in_period(known: Known, period: Period) -> Spend:
    """The known spend that still counts in `period`: a new day or month starts from 0."""
    if known.period is None:
        return NO_SPEND
    day = known.period.day == period.day
    month = known.period.month == period.month
    s = known.spent
    return (s[0] if day else 0, s[1] if month else 0, s[2] if day else 0, s[3] if month else 0)
