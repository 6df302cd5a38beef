"""What the cost ceiling reads from a body's conversation (its media, its cache writes),
for the messages an earlier call's body held as these very objects found by identity.

A turn of a conversation resends the previous turn's messages, and the parse shares their
objects with the earlier turn's (prefix reuse): the facts of a message are a pure function
of its value, summed over the messages, so the running sums an earlier body's messages
reached are taken where this body's first messages are those objects, and only the
messages after them are walked (~150 us a call less on a 340 KB Claude Code turn).

Held (the messages with their running sums, one run a conversation by the identity of its
first item) at most MAX_RUNS runs and MAX_BYTES of the bodies' JSON they came in, least
recently used first: the objects are mostly those the kept turns (cache/turns.py) hold.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sized
from typing import Any, NamedTuple

from gateway.catalog.tokens import CONVERSATION_FIELDS, media_in
from gateway.metering.rates import CacheWrites

MAX_RUNS = 256
MAX_BYTES = 16 * 1024 * 1024
MIN_ITEMS = 4  # a shorter conversation is walked: about what a lookup and a run cost
_RANK: dict[CacheWrites, int] = {"none": 0, "5m": 1, "1h": 2}


def dearest(a: CacheWrites, b: CacheWrites) -> CacheWrites:
    return a if _RANK[a] >= _RANK[b] else b


class Facts(NamedTuple):
    """A conversation's media (tokens.py's `Media`) and the dearest cache write it asks."""

    media_chars: int
    media_tokens: int
    unsized: bool
    writes: CacheWrites


NONE = Facts(0, 0, False, "none")


def plus(a: Facts, b: Facts) -> Facts:
    writes = dearest(a.writes, b.writes)
    return Facts(
        a.media_chars + b.media_chars,
        a.media_tokens + b.media_tokens,
        a.unsized or b.unsized,
        writes,
    )


class _Run(NamedTuple):
    items: tuple[Any, ...]
    totals: tuple[Facts, ...]  # through each item
    size: int  # the JSON bytes of the body it came in


Walk = Callable[[Any], CacheWrites]


class Conversations:
    """The running facts of recent conversations, by the identity of their first item."""

    def __init__(self, writes: Walk, max_runs: int = MAX_RUNS, max_bytes: int = MAX_BYTES) -> None:
        self._writes = writes  # the cache writes one item asks for
        self._runs: OrderedDict[tuple[int, bool], _Run] = OrderedDict()
        self._max_runs = max_runs
        self._max_bytes = max_bytes
        self._bytes = 0

    def of(self, body: Mapping[str, Any], anthropic: bool, raw: Sized) -> Facts | None:
        """The facts of a body's conversation (`messages`, `input`), its cache writes only
        where `anthropic` (an OpenAI call may write any of its prompt); `raw`: its JSON.
        None for a conversation of fewer than MIN_ITEMS items: walked with the body."""
        lists = [items for name in CONVERSATION_FIELDS if isinstance(items := body.get(name), list)]
        if not any(len(items) >= MIN_ITEMS for items in lists):
            return None
        total = NONE
        writes = self._writes if anthropic else None
        for items in lists:
            total = plus(total, self.facts(items, writes, len(raw)))
        return total

    def facts(self, items: list[Any], writes: Walk | None, size: int) -> Facts:
        """The facts of `items` (a body's messages or input): their media, and where
        `writes` is given their cache writes (`writes` of each item). `size`: the JSON
        bytes of the body they came in, what a run kept for them counts."""
        if len(items) < MIN_ITEMS:
            return _walk(items, writes, NONE, None)
        key = (id(items[0]), writes is not None)
        run = self._runs.get(key)
        same = 0
        if run is not None:
            # The run holds its first item: no other object can have its id meanwhile.
            for kept, item in zip(run.items, items, strict=False):
                if kept is not item:
                    break
                same += 1
            self._runs.move_to_end(key)
        totals = list(run.totals[:same]) if run is not None and same else []
        total = _walk(items[same:], writes, totals[-1] if totals else NONE, totals)
        if run is None or same < len(items) or len(run.items) != len(items):
            self._keep(key, _Run(tuple(items), tuple(totals), size))
        return total

    def _keep(self, key: tuple[int, bool], run: _Run) -> None:
        old = self._runs.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        if run.size > self._max_bytes:
            return
        self._runs[key] = run
        self._bytes += run.size
        while len(self._runs) > self._max_runs or self._bytes > self._max_bytes:
            _, dropped = self._runs.popitem(last=False)
            self._bytes -= dropped.size


def _walk(items: Any, writes: Walk | None, total: Facts, totals: list[Facts] | None) -> Facts:
    for item in items:
        media = media_in([item])
        done: CacheWrites = "none" if writes is None else writes(item)
        if media.tokens or done != "none":  # every media item reserves tokens
            total = plus(total, Facts(*media, done))
        if totals is not None:
            totals.append(total)
    return total
