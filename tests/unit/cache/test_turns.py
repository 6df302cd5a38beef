"""Each tenant's recent turns (cache/turns.py): a new turn takes the place of the one it was
parsed from, a few a tenant, within the learned state's bytes."""

from __future__ import annotations

import orjson

from gateway.cache.bounded import LearnedState
from gateway.cache.turns import TURNS_PER_TENANT, Turns
from gateway.wire.turn import Turn, learn


def _turn(text: str) -> Turn:
    raw = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": text}]})
    turn = learn(raw, orjson.loads(raw))
    assert turn is not None
    return turn


def test_a_turn_replaces_the_one_it_was_parsed_from_and_tenants_stay_apart() -> None:
    turns = Turns()
    first, second, other = _turn("a"), _turn("b"), _turn("c")
    turns.keep(b"t1", first)
    turns.keep(b"t1", second, base=first)
    turns.keep(b"t2", other)
    assert turns.held(b"t1") == (second,)
    assert turns.held(b"t2") == (other,)
    assert turns.held(b"t3") == ()


def test_a_tenant_holds_a_few_turns_most_recent_first() -> None:
    turns = Turns()
    made = [_turn(str(i)) for i in range(TURNS_PER_TENANT + 2)]
    for turn in made:
        turns.keep(b"t", turn)
    assert turns.held(b"t") == tuple(reversed(made))[:TURNS_PER_TENANT]


def test_the_turns_count_against_the_tenants_bytes_and_one_too_large_is_not_kept() -> None:
    state = LearnedState(max_bytes=100_000, per_tenant_max_bytes=10_000)
    turns = Turns(state)
    turns.keep(b"t", _turn("x" * 100))
    assert state.tenant_bytes(b"t") >= 5 * 100
    turns.keep(b"t", _turn("x" * 5_000))  # 5x its bytes: past the tenant's share
    assert len(turns.held(b"t")) <= 1
    assert state.tenant_bytes(b"t") <= 10_000
