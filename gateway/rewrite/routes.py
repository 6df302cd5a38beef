"""What the route and pin stages read of the routing config (cascade/table.py and
cascade/lifecycle.py implement it), and the two routing rules they own: the `tier:NAME`
model syntax and which conversations a canary takes."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Protocol

from gateway.settings import CanarySettings, RoutingSettings

TIER_PREFIX = "tier:"


def in_canary(canary: CanarySettings, step: str, conversation: bytes) -> bool:
    """Whether a conversation is in the canary's share: the same answer every turn."""
    digest = hashlib.blake2b(step.encode() + b"\0" + conversation, digest_size=8).digest()
    return int.from_bytes(digest) % 10_000 < canary.percent * 100


class StepRoute(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def tier(self) -> str | None: ...

    @property
    def canary(self) -> CanarySettings | None: ...


class Routes(Protocol):
    @property
    def settings(self) -> RoutingSettings: ...

    @property
    def tiers(self) -> tuple[str, ...]: ...

    def plan(self, step: str | None) -> StepRoute | None: ...

    def tier_model(self, tier: str, provider: str) -> str | None: ...

    def pinned(self, model: str) -> str: ...


class Retirements(Protocol):
    def retiring_within(self, model: str, today: dt.date, window_days: int) -> int | None:
        """Days left, if the model retires within the window (or already has)."""
        ...
