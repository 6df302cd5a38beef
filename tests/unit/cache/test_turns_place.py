"""A body's place in byte order found when it was read (cache/turns.py `near`), carried to its
keep: under random calls in flight at once (each read, then kept after others were kept or
dropped), keeping at the carried place leaves the same held bodies, in the same orders, as
searching for the place again, and the bodies held in byte order are those of the recency
list, sorted."""

from __future__ import annotations

import random

from gateway.cache.bounded import LearnedState
from gateway.cache.turns import FEW, Place, Turns
from gateway.wire.turn import Held
from tests.support.turns import conversation_body, held_of

PER_TENANT = 80_000


def _body(rng: random.Random) -> bytes:
    return conversation_body(rng, 12, 5, (10, 300))


def _held(raw: bytes, rng: random.Random) -> Held:
    return held_of(raw, rng, 0.7)


def _state(turns: Turns) -> tuple[tuple[int, ...], tuple[int, ...]]:
    kept = turns._table.get(b"t", "")
    if kept is None:
        return (), ()
    return tuple(map(id, kept.recent)), tuple(map(id, kept.ordered))


def test_a_carried_place_keeps_as_a_search_would() -> None:
    rng = random.Random(7)
    carried_any = 0
    for trial in range(30):
        fast = Turns(LearnedState(max_bytes=10_000_000, per_tenant_max_bytes=PER_TENANT))
        slow = Turns(LearnedState(max_bytes=10_000_000, per_tenant_max_bytes=PER_TENANT))
        flight: list[tuple[Held, Held | None, Place | None]] = []
        for _ in range(150):
            if flight and (len(flight) > 6 or rng.random() < 0.5):
                turn, base, place = flight.pop(rng.randrange(len(flight)))
                fast.keep(b"t", turn, base, place)
                slow.keep(b"t", turn, base)
                carried_any += place is not None
                assert _state(fast) == _state(slow), trial
                kept = fast._table.get(b"t", "")
                assert kept is not None
                # The same bodies as the recency list, in byte order.
                assert sorted(map(id, kept.ordered)) == sorted(map(id, kept.recent))
                raws = [h.raw for h in kept.ordered]
                assert raws == sorted(raws)
                assert len(set(raws)) == len(raws)
                continue
            held = fast.held(b"t")
            # Now and then a resend of a held body's bytes.
            raw = rng.choice(held).raw if held and rng.random() < 0.15 else _body(rng)
            near, place = fast.near(b"t", raw)
            assert all(a is b for a, b in zip(near, slow.held(b"t", raw), strict=True))
            assert (place is None) == (len(held) <= FEW)
            # A call that fails is not kept: its place is simply dropped.
            if rng.random() < 0.1:
                continue
            base = rng.choice(near) if near and rng.random() < 0.7 else None
            turn = base if base is not None and rng.random() < 0.1 else _held(raw, rng)
            flight.append((turn, base, place))
    assert carried_any > 500
