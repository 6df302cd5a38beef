"""After the call: its charge goes to the store in the background. A charge the store does
not take (it is away) waits in a bounded backlog, oldest first, and is settled once it is
back; at shutdown what is still waiting is kept in a file for the next start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from gateway.admission.caller import Admitted
from gateway.admission.memory import KeyMemory, Spend
from gateway.admission.refusals import Refusals
from gateway.metering.metrics import Metrics
from gateway.settings import StateSettings
from gateway.state.health import PROBE_EVERY_S, StoreUnreachable
from gateway.state.keys import NANO, GatewayKey
from gateway.state.ledger import Ledger, Period, TeamBudget, limits_of
from gateway.wire.usage import Usage

LOG = logging.getLogger("gateway.admission")
DRAIN_S = 5.0  # at shutdown: for the calls being settled, and again for the backlog


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

    @classmethod
    def of(
        cls,
        admitted: Admitted,
        cost_usd: float,
        usage: Usage | None,
        *,
        at_least_reserved: bool = False,
        unseen_attempts: int = 0,
    ) -> Charge:
        """An admitted call's real cost and tokens; `at_least_reserved` (no price, or tokens
        made whose usage was not seen): never less than the call reserved; `unseen_attempts`
        (a hedge's loser, a cut retried): one reservation each."""
        reserved = (admitted.reserved_nano or admitted.local_nano) / NANO
        if at_least_reserved:
            cost_usd = max(cost_usd, reserved)
        cost_usd += unseen_attempts * reserved
        tokens = 0 if usage is None else sum(usage.by_type().values()) - usage.cache_read
        return cls(
            admitted.key, admitted.digest, admitted.period, admitted.reserved_nano,
            round(cost_usd * NANO), tokens, time.time(), admitted.local_nano > 0,
            admitted.call_id,
        )  # fmt: skip

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


class Settlements:
    def __init__(
        self,
        settings: StateSettings,
        metrics: Metrics,
        ledger: Callable[[], Ledger],
        memory: KeyMemory,
        refusals: Refusals,
        teams: dict[str, TeamBudget],
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.ledger = ledger
        self.memory = memory
        self.refusals = refusals
        self.teams = teams
        self._pending: set[asyncio.Task[None]] = set()
        self._backlog: deque[Charge] = deque()
        self._replay: asyncio.Task[None] | None = None

    def add(self, charge: Charge, local_nano: int = 0) -> None:
        """Settles `charge` in the background; `local_nano`: what the call reserved in this
        replica's known spend only (the store was away), replaced by its cost there."""
        if local_nano:  # this replica's own count, until the store answers again
            self.memory.adjust(charge.digest, charge.period, charge.cost_nano - local_nano)
        task = asyncio.get_running_loop().create_task(self._settle(charge))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _settle(self, charge: Charge) -> None:
        try:
            spent = await self._store(charge)
        except StoreUnreachable:
            if not charge.unchecked:  # admitted unchecked: already in the known spend
                delta = charge.cost_nano - charge.reserved_nano
                self.memory.adjust(charge.digest, charge.period, delta)
            self._defer(charge)
            return
        self._settled(charge, spent)

    async def _store(self, charge: Charge) -> Spend:
        """The ledger's settle of `charge`; raises StoreUnreachable while the store is away."""
        return await self.ledger().settle(
            charge.key, charge.period, charge.reserved_nano, charge.cost_nano,
            charge.tokens, charge.at, charge.call_id,
        )  # fmt: skip

    def _settled(self, charge: Charge, spent: Spend) -> None:
        self.memory.remember(charge.digest, charge.key, charge.period, spent)
        label = self.refusals.label(charge.key.name)
        self.refusals.ratios(charge.key, label, spent, limits_of(charge.key, self.teams))

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
