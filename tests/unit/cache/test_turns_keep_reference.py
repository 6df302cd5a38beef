"""`Turns.keep` against the form it had before a body's place was carried from its read (a
search by halves among every held body, the one of the same bytes found beside it): the same
bodies held, in the same recency and byte orders, for several tenants over random calls in
flight (kept out of order, dropped unkept, a resend of held bytes as another object, one
body kept by two calls, its own base kept again) in a learned state small enough to forget
whole tenants, the tenant's share of bytes never exceeded."""

from __future__ import annotations

import random
from bisect import bisect_right

import orjson
import pytest

from gateway.cache.bounded import LearnedState
from gateway.cache.turns import TURNS_PER_TENANT, Place, Turns, _Kept, _raw
from gateway.wire.turn import Held, Sent
from tests.support.turns import conversation_body, held_of

TENANTS = (b"a", b"b", b"c")


class Reference(Turns):
    """`keep` as it was written before, place ignored."""

    def keep(
        self, tenant: bytes, turn: Held, base: Held | None = None, place: Place | None = None
    ) -> None:
        kept = self._table.get(tenant, "")
        if kept is not None and turn is base and any(t is turn for t in kept.recent):
            first = (turn, *(t for t in kept.recent if t is not turn))
            self._table.put(tenant, "", _Kept(first, kept.ordered), sum(t.size for t in first))
            return
        ordered = [t for t in kept.ordered if t is not turn] if kept else []
        at = bisect_right(ordered, turn.raw, key=_raw)
        same = ordered[at - 1] if at and ordered[at - 1].raw == turn.raw else None
        recent: list[Held] = [turn]
        size = turn.size
        for held in kept.recent if kept is not None else ():
            if held is base or held is same or held.raw is turn.raw:
                continue
            if len(recent) == TURNS_PER_TENANT or size + held.size > self._budget:
                break
            recent.append(held)
            size += held.size
        staying = {id(held) for held in recent}
        ordered.insert(at, turn)
        ordered = [t for t in ordered if id(t) in staying]
        self._table.put(tenant, "", _Kept(tuple(recent), tuple(ordered)), size)


def _body(rng: random.Random) -> bytes:
    return conversation_body(rng, 8, 5, (10, 300, 2000))


def _held(raw: bytes, rng: random.Random) -> Held:
    return held_of(raw, rng, 0.6)


def _state(turns: Turns, tenant: bytes) -> tuple[tuple[int, ...], tuple[int, ...]]:
    kept = turns._table.get(tenant, "")
    if kept is None:
        return (), ()
    return tuple(map(id, kept.recent)), tuple(map(id, kept.ordered))


@pytest.mark.parametrize("seed", range(8))
def test_keep_holds_what_the_former_keep_held(seed: int) -> None:
    rng = random.Random(seed)
    per_tenant = rng.choice((20_000, 80_000, 400_000))
    max_bytes = rng.choice((per_tenant, 3 * per_tenant, 10**8))
    new = Turns(LearnedState(max_bytes=max_bytes, per_tenant_max_bytes=per_tenant))
    old = Reference(LearnedState(max_bytes=max_bytes, per_tenant_max_bytes=per_tenant))
    flight: list[tuple[bytes, Held, Held | None, Place | None]] = []
    for _ in range(300):
        if flight and (len(flight) > 8 or rng.random() < 0.5):
            tenant, turn, base, place = flight.pop(rng.randrange(len(flight)))
            new.keep(tenant, turn, base, place)
            old.keep(tenant, turn, base)
            for each in TENANTS:
                assert _state(new, each) == _state(old, each)
                kept = new._table.get(each, "")
                if kept is not None:
                    raws = [held.raw for held in kept.ordered]
                    assert raws == sorted(raws)
                    assert len(set(raws)) == len(raws)
                    sizes = [held.size for held in kept.recent]
                    assert sum(sizes) <= per_tenant // 2 or len(sizes) == 1
            continue
        tenant = rng.choice(TENANTS)
        held = new.held(tenant)
        raw = _body(rng)
        if held and rng.random() < 0.25:  # a resend of held bytes, a new bytes object
            raw = bytes(bytearray(rng.choice(held).raw))
        near, place = new.near(tenant, raw)
        assert all(a is b for a, b in zip(near, old.held(tenant, raw), strict=True))
        if rng.random() < 0.1:
            continue  # a call that failed: never kept, its place dropped
        base = rng.choice(near) if near and rng.random() < 0.7 else None
        if base is not None and rng.random() < 0.15:
            turn = base  # the body repeated its base
        elif flight and rng.random() < 0.05:
            turn = rng.choice(flight)[1]  # one body kept by two calls
        else:
            turn = _held(raw, rng)
        flight.append((tenant, turn, base, place))


class _Counted(bytes):
    """Bytes that count the comparisons for equality made of them."""

    equal = 0
    __hash__ = bytes.__hash__

    def __eq__(self, other: object) -> bool:
        _Counted.equal += 1
        return bytes.__eq__(self, other)  # type: ignore[no-any-return]


def test_a_new_body_is_compared_for_its_bytes_with_one_held_body() -> None:
    """New sessions' first turns are bodies of one length that differ near the end (their
    session id): keeping one compares it, for the same bytes, with the body just before its
    place only, not with each held body (each such comparison reads the two whole)."""
    turns = Turns(LearnedState(max_bytes=10**8, per_tenant_max_bytes=10**8))
    system = "s" * 20_000

    def body(session: int) -> Sent:
        metadata = {"user_id": f"session_{session:08d}"}
        raw = orjson.dumps({"model": "m", "system": system, "metadata": metadata})
        return Sent(_Counted(raw), {})

    for session in range(TURNS_PER_TENANT + 4):
        sent = body(session * 7919 % 10**8)
        _, place = turns.near(b"t", sent.raw)
        _Counted.equal = 0
        turns.keep(b"t", sent, None, place)
        assert _Counted.equal <= 1
        turns.keep(b"t", body(session * 7919 % 10**8))  # the same bytes again, no place
    assert len(turns.held(b"t")) == TURNS_PER_TENANT
