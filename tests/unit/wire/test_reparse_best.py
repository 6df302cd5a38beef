"""A body parsed by reuse among many held turns of a few conversations (wire/reparse.py): the
base is the first held turn sharing the most items with it, as comparing each in full would
find, whatever is skipped uncompared; the parse is `orjson.loads` of the body."""

from __future__ import annotations

import random
from typing import Any

import orjson

from gateway.wire.reparse import _match, reparse
from gateway.wire.turn import Turn, learn


def _talk(rng: random.Random, name: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": f"{name} {i} " + "x" * rng.choice((5, 40, 300))}
        for i in range(rng.randrange(1, 9))
    ]


def _body(items: list[dict[str, Any]], tail: str, last: bool) -> bytes:
    messages = [*items[:-1], {**items[-1], "cache": 1}] if last else items
    return orjson.dumps({"model": "m", "messages": messages, "system": tail})


def _reference(raw: bytes, held: list[Turn]) -> tuple[Turn | None, int]:
    """The base each held turn compared in full finds (but one with no more items than the
    best so far, and none past one sharing all its items), and how many were compared."""
    best: tuple[Turn, int] | None = None
    compared = 0
    for turn in held:
        if best is not None and len(turn.ends) <= best[1]:
            continue
        compared += 1
        found = _match(raw, turn)
        if found is not None and (best is None or found.shared > best[1]):
            best = turn, found.shared
            if found.shared == len(turn.ends):
                break
    return (None if best is None else best[0]), compared


def test_the_base_is_the_first_held_turn_sharing_the_most_items() -> None:
    rng = random.Random(11)
    skipped_any = 0
    for _ in range(400):
        talks = [_talk(rng, f"t{k}") for k in range(rng.randrange(1, 4))]
        tails = ["s" * 200, "s" * 199 + "z"]
        held: list[Turn] = []
        for _ in range(rng.randrange(1, 7)):
            items = rng.choice(talks)
            cut = rng.randrange(1, len(items) + 1)
            raw = _body(items[:cut], rng.choice(tails), rng.random() < 0.5)
            turn = learn(raw, orjson.loads(raw))
            assert turn is not None
            held.append(turn)
        items = rng.choice(talks)
        extra = [{"role": "user", "content": "new " + "y" * rng.randrange(50)}]
        if rng.random() < 0.3:  # an item of the conversation changed further in
            items = [*items[:-1], {"role": "user", "content": "edited"}]
        raw = _body(items[: rng.randrange(1, len(items) + 1)] + extra, rng.choice(tails), True)
        found = reparse(raw, held)
        expected, compared = _reference(raw, held)
        if expected is None:
            assert found is None
            continue
        assert found is not None
        parsed, base, _ = found
        assert parsed == orjson.loads(raw)
        assert base is expected
        skipped_any += compared > 1
    assert skipped_any > 50
