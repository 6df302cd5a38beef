"""Each tenant's recent turns (cache/turns.py): a new turn takes the place of the one it was
parsed from, a few a tenant, within the learned state's bytes."""

from __future__ import annotations

import orjson

from gateway.cache.bounded import LearnedState
from gateway.cache.turns import FEW, TURNS_PER_TENANT, Turns
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


def _conversation(name: str, turns: int) -> list[bytes]:
    """A conversation's bodies: each the one before it and one more message."""
    messages: list[dict[str, str]] = []
    out = []
    for i in range(turns):
        messages.append({"role": "user", "content": f"{name} says {i} " + "x" * 200})
        out.append(orjson.dumps({"model": "m", "messages": messages, "system": "s" * 300}))
    return out


def test_among_many_conversations_a_body_is_matched_against_its_previous_turn() -> None:
    turns = Turns()
    # Forty conversations of one tenant (a team's agents), their turns interleaved.
    talks = [_conversation(f"agent-{k:02}", 4) for k in range(40)]
    previous: dict[int, Turn] = {}
    for step in range(4):
        for k, talk in enumerate(talks):
            raw = talk[step]
            candidates = turns.held(b"t", raw)
            if step:
                assert any(c is previous[k] for c in candidates)  # its previous turn
                assert len(candidates) <= 3  # not every body the tenant holds
            turn = learn(raw, orjson.loads(raw))
            assert turn is not None
            turns.keep(b"t", turn, previous.get(k))
            previous[k] = turn
    # One place a conversation: each new turn took its previous one's.
    assert len(turns.held(b"t")) == 40
    assert {id(t) for t in turns.held(b"t")} == {id(t) for t in previous.values()}


def test_past_the_count_the_oldest_conversation_is_forgotten() -> None:
    turns = Turns()
    made = [
        learn(raw, orjson.loads(raw))
        for raw in (_conversation(str(k), 1)[0] for k in range(TURNS_PER_TENANT + 1))
    ]
    for turn in made:
        assert turn is not None
        turns.keep(b"t", turn)
    held = turns.held(b"t")
    assert len(held) == TURNS_PER_TENANT
    assert made[0] not in held
    # The newest turn is found for a body that continues it, past the few tried each.
    last = made[-1]
    assert last is not None
    assert any(c is last for c in turns.held(b"t", last.raw + b" "))


def test_the_turns_held_stay_within_half_the_tenants_bytes() -> None:
    state = LearnedState(max_bytes=10_000_000, per_tenant_max_bytes=100_000)
    turns = Turns(state)
    for k in range(50):
        raw = _conversation(f"c{k}", 1)[0]
        turn = learn(raw, orjson.loads(raw))
        assert turn is not None
        turns.keep(b"t", turn)
    held = turns.held(b"t")
    assert 1 < len(held) < 50
    assert sum(t.size for t in held) <= 50_000


def test_bodies_of_the_same_bytes_are_held_once_the_latest() -> None:
    # One call from several connections at once: each is parsed from the same held body,
    # and each is kept in its place; the tenant holds the bytes once, not once a connection.
    turns = Turns()
    base, other = _turn("a"), _turn("b")
    turns.keep(b"t", other)
    turns.keep(b"t", base)
    copies = [_turn("a") for _ in range(FEW + 3)]
    for copy in copies:
        turns.keep(b"t", copy, base=base)
    assert turns.held(b"t") == (copies[-1], other)
    assert turns.held(b"t", copies[0].raw) == (copies[-1], other)


def test_a_turn_kept_in_the_place_of_itself_keeps_its_place_and_comes_first() -> None:
    # reparse.py returns the held turn itself for a body of its bytes (a retry).
    turns = Turns()
    made = [_turn(text) for text in ("d", "b", "e", "a", "c", "f")]
    for turn in made:
        turns.keep(b"t", turn)
    kept = turns._table.get(b"t", "")
    assert kept is not None
    ordered = kept.ordered
    turns.keep(b"t", made[2], base=made[2])
    assert turns.held(b"t") == (made[2], made[5], made[4], made[3], made[1], made[0])
    kept = turns._table.get(b"t", "")
    assert kept is not None
    assert kept.ordered == ordered
    assert [t.raw for t in kept.ordered] == sorted(t.raw for t in made)
