"""cache/turns.py under random keeps: bodies of the same bytes resent, kept from a held base,
a stale base or none, a held turn kept again (in its own place, or with none), Turns and
Sents mixed. After each keep what a tenant holds stays within the count and its bytes, holds
a body's bytes once, puts the last kept first and keeps the order of the rest; a body to
parse is matched against the held one sharing its longest prefix, and the most recent."""

from __future__ import annotations

import random

from gateway.cache.bounded import LearnedState
from gateway.cache.turns import TURNS_PER_TENANT, Turns
from gateway.wire.turn import Held
from tests.support.turns import conversation_body, held_of

PER_TENANT = 60_000


def _body(rng: random.Random) -> bytes:
    return conversation_body(rng, 6, 4, (10, 900))


def _held(raw: bytes, rng: random.Random) -> Held:
    return held_of(raw, rng, 0.5)


def _common(a: bytes, b: bytes) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def test_random_keeps_leave_a_bounded_deduplicated_recency_list() -> None:
    rng = random.Random(16)
    for trial in range(40):
        state = LearnedState(max_bytes=10_000_000, per_tenant_max_bytes=PER_TENANT)
        turns = Turns(state)
        stale: list[Held] = []
        for _ in range(120):
            before = turns.held(b"t")
            turn = _held(_body(rng), rng)
            pick = rng.random()
            if before and pick < 0.1:  # a held turn kept again: in its own place (a retry)
                turn = base = rng.choice(before)
            elif before and pick < 0.15:  # or with no base
                turn, base = rng.choice(before), None
            elif before and pick < 0.5:
                base: Held | None = rng.choice(before)
            elif stale and pick < 0.6:
                base = rng.choice(stale)  # a body forgotten since it was read
            else:
                base = None
            turns.keep(b"t", turn, base)
            stale.extend(before)
            held = turns.held(b"t")
            assert held, trial
            assert held[0] is turn
            assert len(held) <= TURNS_PER_TENANT
            assert sum(h.size for h in held) <= PER_TENANT // 2 or held == (turn,)
            assert len({h.raw for h in held}) == len(held)  # a body's bytes held once
            # The rest in the order they were held in: `before` less what was dropped.
            rest = [h for h in before if any(h is k for k in held[1:])]
            assert len(rest) == len(held) - 1
            assert all(a is b for a, b in zip(rest, held[1:], strict=True))
            # Dropped only: the base, a body of the turn's bytes, or past the bounds (the oldest).
            dropped = [h for h in before if not any(h is k for k in held)]
            for h in dropped:
                if h is base or h.raw == turn.raw:
                    continue
                kept_after = [k for k in before if any(k is x for x in held)]
                assert all(before.index(k) < before.index(h) for k in kept_after), trial
            # Whatever body comes next, it is matched against the held one that shares its
            # longest prefix (one of them, if several do) and against the most recent.
            probe = _body(rng) if rng.random() < 0.7 else rng.choice(held).raw
            near = turns.held(b"t", probe)
            assert all(any(n is h for h in held) for n in near)
            assert any(n is held[0] for n in near)
            longest = max(_common(probe, h.raw) for h in held)
            assert any(_common(probe, n.raw) == longest for n in near)
            if any(h.raw == probe for h in held):
                assert any(n.raw == probe for n in near)
            assert state.tenant_bytes(b"t") <= PER_TENANT
