"""The Messages tap's search for the next watched event (two byte searches, the pattern
matched only at their hits) against the default search by the pattern alone: the same block
from every position of streams that hold the watched names where they are events and where
they are not (in text, in data lines, glued to other names, without the space)."""

from __future__ import annotations

import random

from gateway.wire.anthropic_usage import StreamUsage
from gateway.wire.event_blocks import EventBlocks

NAMES = [
    "message_start",
    "message_delta",
    "message_stop",
    "error",
    "content_block_delta",
    "ping",
    "message_",
    "message_startx",
    "errors",
    "xerror",
    "message_deltamessage_stop",
]
DATA = [
    '{"type":"content_block_delta","delta":{"text":"message_delta"}}',
    '{"text":"error"}',
    "error",
    "message_stop",
    "event: error",
    "{}",
    "",
]


def block(rng: random.Random) -> str:
    name = rng.choice(NAMES)
    event = rng.choice(["event: ", "event:", "event:  ", "data: "]) + name
    lines = [event] + [f"data: {rng.choice(DATA)}" for _ in range(rng.randint(0, 2))]
    return "\n".join(lines) + "\n\n"


def streams() -> list[bytes]:
    rng = random.Random(20261201)
    made = [
        b"event: ping\ndata: {}\n\nevent: message_delta\ndata: {}\n\n",
        b"event: error\n\nevent:error\n\nevent: message_stop\n",
        b"data: message_\n\nevent: message_start\ndata: x\n\n",
        b"\nevent: message_stop\n\n",
    ]
    for _ in range(300):
        made.append("".join(block(rng) for _ in range(rng.randint(1, 8))).encode())
    return made


def test_the_next_watched_block_is_the_patterns() -> None:
    tap = StreamUsage()
    for chunk in streams():
        for pos in range(1, len(chunk) + 1):
            expected = EventBlocks.next_block(tap, chunk, pos)
            assert tap.next_block(chunk, pos) == expected, (chunk, pos)


def test_the_streams_hold_watched_and_unwatched_lines() -> None:
    """What the comparison covers: found blocks, none found, and hits that are not events."""
    tap = StreamUsage()
    found = missing = decoys = 0
    for chunk in streams():
        at = EventBlocks.next_block(tap, chunk, 1)
        found += at >= 0
        missing += at < 0
        decoys += b"data: message_" in chunk or b"xerror\n" in chunk
    assert found
    assert missing
    assert decoys
