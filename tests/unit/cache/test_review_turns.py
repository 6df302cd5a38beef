"""A tenant's held turns (cache/turns.py) among many conversations, as the endpoint reads and
keeps them (endpoint/prepared.py): every body parses to what a full parse makes, whichever
held bodies it is matched against; the held turns stay within their count and bytes, in
byte order. Odd bodies: one equal to a held one, one sorting before or after every held
one, one between two conversations (one's items, another's members after them), a rolled
back one, non-ASCII ones, more conversations than a tenant holds."""

from __future__ import annotations

import random
from bisect import bisect_right
from typing import Any

import orjson
import pytest

from gateway.cache.bounded import LearnedState
from gateway.cache.turns import FEW, TURNS_PER_TENANT, Turns
from gateway.wire.reparse import reparse
from gateway.wire.turn import Held, Sent

TENANT = b"t"


def _read(turns: Turns, raw: bytes) -> tuple[dict[str, Any], Held | None, Held]:
    """As prepared.read and Reading.keep: parsed from a held body where one matches."""
    candidates = turns.held(TENANT, raw)
    everything = turns.held(TENANT)
    assert len(candidates) <= max(FEW, 3)
    assert all(any(c is h for h in everything) for c in candidates)
    found = reparse(raw, candidates)
    if found is None:
        parsed = orjson.loads(raw)
        return parsed, None, Sent(raw, parsed)
    parsed, base, turn = found
    return parsed, base, turn if turn is not None else Sent(raw, parsed)


def _check_held(turns: Turns, state: LearnedState) -> None:
    kept = turns._table.get(TENANT, "")
    if kept is None:
        return
    assert len(kept.recent) <= TURNS_PER_TENANT
    assert sorted(map(id, kept.recent)) == sorted(map(id, kept.ordered))
    raws = [held.raw for held in kept.ordered]
    assert raws == sorted(raws)
    size = sum(held.size for held in kept.recent)
    assert len(kept.recent) == 1 or size <= state.per_tenant_max_bytes // 2
    assert state.tenant_bytes(TENANT) <= state.per_tenant_max_bytes


def _message(rng: random.Random, name: str, i: int) -> dict[str, Any]:
    text = rng.choice(["plain", "ünïcödé ✓", 'quote " and \\ slash', "x" * 300])
    return {"role": "user" if i % 2 else "assistant", "content": f"{name} {i} {text}"}


def _body(messages: list[Any], tail: dict[str, Any]) -> bytes:
    return orjson.dumps({"model": "m", "messages": messages, **tail})


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("tenant_bytes", [16 * 1024 * 1024, 400_000])
def test_bodies_among_many_conversations_parse_as_a_full_parse(
    seed: int, tenant_bytes: int
) -> None:
    rng = random.Random(seed)
    state = LearnedState(64 * 1024 * 1024, tenant_bytes)
    turns = Turns(state)
    shared = [_message(rng, "shared", i) for i in range(rng.randint(0, 6))]  # a common start
    talks: list[tuple[list[Any], dict[str, Any]]] = []
    for k in range(80):
        tail = {"system": "s" * 200, "max_tokens": rng.choice([100, 200]), "k": k % 3}
        talks.append(([*shared, *[_message(rng, f"c{k}", 0) for _ in range(3)]], tail))
    last = b""
    reused = 0
    for _ in range(400):
        k = rng.randrange(len(talks))
        messages, tail = talks[k]
        roll = rng.random()
        if roll < 0.5:  # the next turn
            messages = [*messages, *[_message(rng, f"c{k}", len(messages)) for _ in range(2)]]
        elif roll < 0.6:  # rolled back
            messages = messages[: rng.randint(0, len(messages))]
        elif roll < 0.7:  # a fork: another conversation from this one's start
            messages = [*messages[: rng.randint(0, len(messages))], _message(rng, "fork", 0)]
            k = rng.randrange(len(talks))
        elif roll < 0.8:  # between two: this one's items, another's members after them
            tail = talks[rng.randrange(len(talks))][1]
        talks[k] = (messages, tail)
        raw = _body(messages, tail)
        if roll > 0.95 and last:
            raw = last  # the same bytes again (a retry)
        elif roll > 0.9:  # sorting before or after every body held
            raw = orjson.dumps({"a" if roll > 0.925 else "z": 1, "messages": messages})
        parsed, base, held = _read(turns, raw)
        assert orjson.dumps(parsed) == orjson.dumps(orjson.loads(raw))
        assert held.raw == raw  # a base returned as the turn: only for its very bytes
        reused += base is not None
        turns.keep(TENANT, held, base)
        _check_held(turns, state)
        last = raw
    assert reused > 100  # parse reuse was exercised, not only full parses


def test_a_body_sorting_at_either_end_or_between_two_is_matched_against_its_neighbours() -> None:
    """Past FEW held bodies, the candidates are the held bodies next to the body in byte
    order and the most recent: at either end, one neighbour."""
    turns = Turns()
    bodies = [orjson.dumps({"model": "m", "messages": [{"n": f"{k:03}"}]}) for k in range(10)]
    for raw in bodies:
        turns.keep(TENANT, Sent(raw, orjson.loads(raw)))
    ordered = sorted(bodies)
    for raw in (b"{", b'{"zz":[]}', ordered[3] + b" ", ordered[3], ordered[0], b""):
        candidates = turns.held(TENANT, raw)
        at = bisect_right(ordered, raw)
        near = set(ordered[max(at - 1, 0) : at + 1]) | {bodies[-1]}
        assert {c.raw for c in candidates} == near
