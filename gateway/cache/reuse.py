"""How a prompt family's cached prefixes are reused, as the prefix registry (registry.py)
keeps it: the gaps between uses (which TTL pays), whether the next turn reads a step's
conversation tails (whether writing them pays), and the writes waiting to be read."""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

from gateway.rewrite.snapshot import Ttl

GAP_SAMPLES = 16
MIN_GAPS = 3  # no TTL decision on fewer observations: 5m, the API's default, until then
HOUR_S = 3600.0
# A conversation-tail write costs 0.25x more than plain input (5m) and each read saves
# 0.9x: it pays when the next call of the conversation reads it at least this often.
TAIL_BREAK_EVEN = 0.25 / 0.9
MIN_TAIL_SAMPLES = 20  # writes of a step before its tails may be judged not to pay
TAIL_WINDOW = 200  # counts halve past this: the judgement follows a step's recent calls
TAIL_PROBE_EVERY = 8  # a step judged not to pay still writes one tail in 8, to keep learning
# What an entry holds beyond the strings it counts (tracemalloc, rounded up): a PendingWrite;
# two deques of GAP_SAMPLES floats; the counts.
PENDING_BYTES = 300
GAPS_BYTES = 1_600
TAILS_BYTES = 200


@dataclass(slots=True)
class ReuseGaps:
    """Recent seconds between uses of a family's prefix, and between turns of its conversations."""

    prefix: deque[float] = field(default_factory=lambda: deque(maxlen=GAP_SAMPLES))
    turns: deque[float] = field(default_factory=lambda: deque(maxlen=GAP_SAMPLES))

    def ttls(self, short_s: float) -> tuple[Ttl, Ttl]:
        """(stable prefix, conversation tail) TTLs: 1h where uses come between a short TTL
        (`short_s`) and an hour apart — a 5m entry would have expired, and a 2x write read at
        0.1x beats a 1.25x write each time. Closer uses keep a 5m entry alive (a hit refreshes
        it); rarer ones outlive even 1h."""
        return _ttl(self.prefix, short_s), _ttl(self.turns, short_s)


@dataclass(slots=True)
class PendingWrite:
    owner: tuple[str, ...]  # the writing call's metric labels: the waste is charged to it
    tokens: int
    expires: float
    read: bool = False
    step: str | None = None
    model: str = ""
    # Read by its own conversation's next call (not just its family's shared prefix).
    tail_read: bool = False

    @property
    def size(self) -> int:
        return PENDING_BYTES + len(self.step or "") + len(self.model)


@dataclass(slots=True)
class TailReuse:
    """How often a step's conversation-tail writes were read by the conversation's next call."""

    written: float = 0.0
    read: float = 0.0
    calls: int = 0  # of the step while judged not to pay: one in TAIL_PROBE_EVERY writes

    @property
    def pays(self) -> bool:
        return self.written < MIN_TAIL_SAMPLES or self.read / self.written >= TAIL_BREAK_EVEN

    def probes_next(self) -> bool:
        return (self.calls + 1) % TAIL_PROBE_EVERY == 0

    def note_written(self) -> None:
        self.written += 1
        if self.written > TAIL_WINDOW:
            self.written /= 2
            self.read /= 2


def _ttl(gaps: deque[float], short_s: float) -> Ttl:
    if len(gaps) < MIN_GAPS:
        return "5m"
    return "1h" if short_s < statistics.median(gaps) <= HOUR_S else "5m"
