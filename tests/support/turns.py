"""Random bodies of a few conversations and their held forms, as the tests of the tenant's
held turns (cache/turns.py) make them."""

from __future__ import annotations

import random

import orjson

from gateway.wire.turn import Held, Sent, learn


def conversation_body(
    rng: random.Random, conversations: int, most_turns: int, sizes: tuple[int, ...]
) -> bytes:
    """One of `conversations` at one of its first turns (up to `most_turns`), each message's
    text of one of `sizes`: the same bytes come up often."""
    talk, turns = rng.randrange(conversations), rng.randrange(1, most_turns + 1)
    messages = [
        {"role": "user", "content": f"{talk}:{i} " + "x" * rng.choice(sizes)} for i in range(turns)
    ]
    return orjson.dumps({"model": "m", "messages": messages})


def held_of(raw: bytes, rng: random.Random, learned: float) -> Held:
    """`raw` as a learned Turn (at a chance of `learned`, where it is one), else as Sent."""
    parsed = orjson.loads(raw)
    turn = learn(raw, parsed) if rng.random() < learned else None
    return turn if turn is not None else Sent(raw, parsed)
