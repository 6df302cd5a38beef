"""Spend and rate limits per gateway key: admitted before a call, settled after it.

`admit` is the one pre-flight read: it finds the key by its digest, refuses it if a budget
(key or team, day or month) has no room for the call's reservation or a per-minute window
is full, else counts the request and reserves the call's reservation against its budgets.
The caller sizes the reservation (metering/ceiling.py: what the call can cost at most), so the
ledger holds no pricing. `settle` swaps the reservation for the real cost and adds the
call's tokens to the window. Reserving the most a call can cost keeps concurrent calls,
on any number of replicas, from overspending a budget at all.

Windows are sliding per minute, as two fixed windows weighted by how far the current one
has run (the previous one counts for the part of it still inside the last 60 s): O(1)
state per key, and exact whenever the previous minute was quiet. The Redis ledger runs the
same arithmetic in Lua (redis_ledger.py); this module holds it in Python, and the
in-memory ledger.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal, Protocol

from gateway.cache.bounded import BoundedDict
from gateway.state.keys import GatewayKey, MemoryKeyStore, to_nano

WINDOW_S = 60
Refusal = Literal["unknown_key", "spend_limit", "rate_limit"]
# The spend counters of a key, in this order: key day, key month, team day, team month.
PERIOD_NAMES = ("daily", "monthly", "team_daily", "team_monthly")


@dataclass(frozen=True, slots=True)
class Period:
    """The UTC day and month a call's spend is counted in (its reservation too)."""

    day: str  # d20261125
    month: str  # m202611

    @classmethod
    def at(cls, now: float) -> Period:
        t = time.gmtime(now)
        return cls(time.strftime("d%Y%m%d", t), time.strftime("m%Y%m", t))


@dataclass(frozen=True, slots=True)
class TeamBudget:
    daily_nano: int = 0
    monthly_nano: int = 0


@dataclass(frozen=True, slots=True)
class Admission:
    key: GatewayKey | None  # None: no such key (unknown or revoked)
    refused: Refusal | None = None
    reason: str = ""  # which limit, for the error message
    retry_after_s: int | None = None  # rate limits only
    reserved_nano: int = 0
    spent_nano: tuple[int, int, int, int] = (0, 0, 0, 0)  # PERIOD_NAMES, before this call
    period: Period | None = None


class Ledger(Protocol):
    async def admit(
        self,
        key_digest: str,
        now: float,
        *,
        count: bool = True,
        reserve_nano: int = 0,
        call_id: str = "",
    ) -> Admission:
        """The key, and whether this call may go (counted, and `reserve_nano` reserved, if
        so). With count=False only the key is looked up (authentication; count_tokens,
        models: free calls). A `call_id` already admitted is not counted again: its
        reservation is returned (a retry whose first reply was lost)."""

    async def settle(
        self,
        key: GatewayKey,
        period: Period,
        reserved_nano: int,
        cost_nano: int,
        tokens: int,
        now: float,
        call_id: str = "",
    ) -> tuple[int, int, int, int]:
        """Replaces the reservation by the real cost; returns the spend after it. With a
        `call_id`, the reservation is the one the ledger holds for it (0 if it never
        admitted the call), and a call settled already is not settled again."""

    async def spent(self, key: GatewayKey, now: float) -> tuple[int, int, int, int]: ...


def limits_of(key: GatewayKey, teams: dict[str, TeamBudget]) -> tuple[int, int, int, int]:
    team = teams.get(key.team, TeamBudget()) if key.team else TeamBudget()
    return (
        to_nano(key.daily_budget_usd),
        to_nano(key.monthly_budget_usd),
        team.daily_nano,
        team.monthly_nano,
    )


def over_budget(spent: int, limit: int, reserve_nano: int) -> bool:
    """A budget refuses a call when it is spent, or has no room for the reservation.
    (The Lua ADMIT in redis_store.py applies the same test.)"""
    return limit > 0 and (spent >= limit or spent + reserve_nano > limit)


def window_wait(previous: float, current: float, elapsed: float, room: float) -> float:
    """Fraction of a window until `previous * (1 - elapsed - x) + current <= room`.

    `elapsed` is how far (0..1) the current window has run. If the current window alone is
    over `room`, the wait runs into the next window, where it becomes the previous one.
    """
    if current <= room:
        if previous <= 0:
            return 0.0
        return max(0.0, 1 - elapsed - (room - current) / previous)
    return (1 - elapsed) + (1 - max(room, 0) / current)


def retry_after(fraction: float) -> int:
    return max(1, math.ceil(round(fraction * WINDOW_S, 3)))  # 70.00002 s is 70 s


class MemoryLedger:
    """One process's ledger: budgets and limits hold per process (per worker)."""

    def __init__(
        self, keys: MemoryKeyStore, teams: dict[str, TeamBudget], max_entries: int = 100_000
    ) -> None:
        self.keys = keys
        self.teams = teams
        self._spend: BoundedDict[str, int] = BoundedDict(max_entries)
        self._calls: BoundedDict[str, int] = BoundedDict(max_entries)  # reservation; -1: settled
        self._windows: BoundedDict[str, list[int]] = BoundedDict(max_entries)  # [requests, tokens]

    async def admit(
        self,
        key_digest: str,
        now: float,
        *,
        count: bool = True,
        reserve_nano: int = 0,
        call_id: str = "",
    ) -> Admission:
        key = self.keys.get(key_digest)
        if key is None:
            return Admission(None, "unknown_key")
        period = Period.at(now)
        if not count:
            return Admission(key, period=period)
        counters = _counters(key, period)
        spent4 = four([self._spend.get(c) or 0 for c in counters])
        held = self._calls.get(call_id) if call_id else None
        if held is not None:
            return Admission(key, reserved_nano=max(held, 0), spent_nano=spent4, period=period)
        for name, used, limit in zip(PERIOD_NAMES, spent4, limits_of(key, self.teams), strict=True):
            if over_budget(used, limit, reserve_nano):
                return Admission(key, "spend_limit", name, spent_nano=spent4, period=period)
        index, elapsed = divmod(now / WINDOW_S, 1)
        current = self._windows.get(f"{key.name}:{int(index)}") or [0, 0]
        previous = self._windows.get(f"{key.name}:{int(index) - 1}") or [0, 0]
        weight = 1 - elapsed
        if key.rpm and previous[0] * weight + current[0] + 1 > key.rpm:
            wait = window_wait(previous[0], current[0], elapsed, key.rpm - 1)
            return Admission(key, "rate_limit", "requests per minute", retry_after(wait))
        if key.tpm and previous[1] * weight + current[1] >= key.tpm:
            wait = window_wait(previous[1], current[1], elapsed, key.tpm - 1)
            return Admission(key, "rate_limit", "tokens per minute", retry_after(wait))
        current[0] += 1
        self._windows[f"{key.name}:{int(index)}"] = current
        for counter in counters:
            self._spend[counter] = (self._spend.get(counter) or 0) + reserve_nano
        if call_id:
            self._calls[call_id] = reserve_nano
        return Admission(key, reserved_nano=reserve_nano, spent_nano=spent4, period=period)

    async def settle(
        self,
        key: GatewayKey,
        period: Period,
        reserved_nano: int,
        cost_nano: int,
        tokens: int,
        now: float,
        call_id: str = "",
    ) -> tuple[int, int, int, int]:
        if call_id:
            held = self._calls.get(call_id)
            if held is not None and held < 0:  # settled already
                return await self.spent(key, now, period)
            reserved_nano = held if held is not None else reserved_nano
            self._calls[call_id] = -1
        counters = _counters(key, period)
        for counter in counters:
            self._spend[counter] = (self._spend.get(counter) or 0) + cost_nano - reserved_nano
        if tokens:
            window = f"{key.name}:{int(now // WINDOW_S)}"
            current = self._windows.get(window) or [0, 0]
            current[1] += tokens
            self._windows[window] = current
        return await self.spent(key, now, period)

    async def spent(
        self, key: GatewayKey, now: float, period: Period | None = None
    ) -> tuple[int, int, int, int]:
        return four([self._spend.get(c) or 0 for c in _counters(key, period or Period.at(now))])


def four(values: list[int]) -> tuple[int, int, int, int]:
    """Spend in PERIOD_NAMES order; a key without a team has no team counters (0)."""
    padded = [*values, 0, 0, 0, 0]
    return padded[0], padded[1], padded[2], padded[3]


def _counters(key: GatewayKey, period: Period) -> list[str]:
    """Spend counter names (also the Redis keys' tails): key day and month, team's too."""
    names = [f"spend:key:{key.name}:{period.day}", f"spend:key:{key.name}:{period.month}"]
    if key.team:
        names += [f"spend:team:{key.team}:{period.day}", f"spend:team:{key.team}:{period.month}"]
    return names


counter_names = _counters
