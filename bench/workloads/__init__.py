"""Reference agent workloads for bench/cost.py: what one call of a replayed day looks like.

A workload is a module with `NAME`, `TITLE`, `MODELS` and `calls(variant, seed, scale)`.
It builds every request up front (assistant turns in the history are the workload's own
text, not the emulator's reply), so the direct and the gateway replay send the same bytes.
Variants: `naive` is the app as people write it (every caching anti-pattern);
`tuned` is the same app written by someone who read the prompt-caching docs — the
reference a gateway in front of the naive app should reach.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Variant = Literal["naive", "tuned"]
DAY_SECONDS = 86_400


@dataclass(frozen=True, slots=True)
class Call:
    """One `messages.create` at a virtual time; calls of a stream are replayed in time order."""

    at: float  # seconds since the start of the replayed day
    params: dict[str, Any]  # messages.create keyword arguments
    position: str  # where in its chain: "turn 2", "fetch" (the per-position breakdown)
    step: str | None = None  # sent as x-gateway-step
    group: str | None = None  # calls with the same group and time are sent in parallel
    prefix: str | None = None  # the shared prefix this call belongs to (fan-out)
    prefix_tokens: int = 0  # that prefix's size, estimated at 4 characters a token
    measured: bool = True  # False: billed, but not a user-facing call (a cache pre-warm)
    headers: dict[str, str] = field(default_factory=dict)


def in_window(start: float, scale: float) -> bool:
    """Scale replays the first `scale` of the day at full density (caches see real gaps)."""
    return start < scale * DAY_SECONDS
