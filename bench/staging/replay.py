"""A recorded session replayed turn by turn: the rewrite's time per turn with the memo of
derived values (rewrite/memo.py) and without it, on the same turns; and the parse's, reusing
the turn before (wire/reparse.py) and whole (orjson.loads).

Each turn is parsed (timed; with the memo, as the gateway parses it), rewritten (timed),
then learned from as an accepted call, so the memo and the kept turns hold what the turns
before it left — what a conversation's next turn finds.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import orjson

from gateway.rewrite.pipeline import STAGES, rewrite
from gateway.settings import Settings
from gateway.wire.formats import WireFormat
from staging.parts import Parts
from tests.support.fixtures import FIXTURES, load


@dataclass(frozen=True)
class Replay:
    session: str
    turns: int
    kb: float  # the mean body
    memo_us: float  # rewrite, mean µs per turn
    full_us: float  # the same without the memo
    memo_late_us: float  # the last quarter of the turns (the longest bodies)
    full_late_us: float
    parse_us: float  # mean µs per turn, reusing the kept turns
    loads_us: float  # the same parsed whole


def _times(
    settings: Settings, wire: WireFormat, raws: list[bytes], memo: bool
) -> tuple[list[float], list[float]]:
    """(rewrite µs, parse µs) per turn; with `memo`, parsed reusing the kept turns."""
    parts = Parts(settings, memo)
    out, parses = [], []
    for raw in raws:
        copy = bytes(bytearray(raw))
        start = time.perf_counter()
        reading = parts.read(copy, copy=False) if memo else None
        parsed = reading.parsed if reading is not None else orjson.loads(copy)
        parses.append((time.perf_counter() - start) * 1e6)
        request = parts.request_for(wire, parsed)
        start = time.perf_counter()
        done = rewrite(request, parts.context, STAGES[wire.name])
        out.append((time.perf_counter() - start) * 1e6)
        parts.memory.learn(done.observations)
        if reading is not None:
            reading.keep()
    return out, parses


def replay(settings: Settings, fixture: str, wire: WireFormat, rounds: int) -> Replay | None:
    """Each session replayed `rounds` times from an empty memory: each turn's fastest kept."""
    file = FIXTURES / f"{fixture}.jsonl"
    if not file.exists():
        return None
    raws = [call.raw_body() for call in load(file).calls]
    runs = {
        memo: [_times(settings, wire, raws, memo) for _ in range(max(rounds, 1))]
        for memo in (True, False)
    }
    best = {
        memo: [min(turn) for turn in zip(*(f[0] for f in found), strict=True)]
        for memo, found in runs.items()
    }
    parse = {
        memo: [min(turn) for turn in zip(*(f[1] for f in found), strict=True)]
        for memo, found in runs.items()
    }
    late = len(raws) * 3 // 4
    return Replay(
        fixture,
        len(raws),
        statistics.mean(map(len, raws)) / 1024,
        statistics.mean(best[True]),
        statistics.mean(best[False]),
        statistics.mean(best[True][late:]),
        statistics.mean(best[False][late:]),
        statistics.mean(parse[True]),
        statistics.mean(parse[False]),
    )


def report(replays: list[Replay]) -> str:
    head = (
        f"{'session':<18}{'turns':>6}{'mean KB':>9}"
        f"{'memo':>9}{'full pass':>11}{'memo, late':>12}{'full, late':>12}"
        f"{'parse':>8}{'loads':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in replays:
        lines.append(
            f"{r.session:<18}{r.turns:>6}{r.kb:>9.0f}{r.memo_us:>9.0f}{r.full_us:>11.0f}"
            f"{r.memo_late_us:>12.0f}{r.full_late_us:>12.0f}{r.parse_us:>8.0f}{r.loads_us:>8.0f}"
        )
    return "\n".join(lines)
