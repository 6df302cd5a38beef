"""Random conversations, turn by turn, each turn made from the previous one's objects as
prefix reuse and the breakpoint stages make them (messages added, a breakpoint's marked copy
of any message, the first included, an unmarked one again, copies parsed anew, a message
changed, fewer messages): every turn's fingerprint through the runs the memo kept is the
whole walk's."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from gateway.cache.bounded import LearnedState
from gateway.cache.learned import LearnedMemory
from gateway.rewrite.fingerprint import fingerprint
from gateway.rewrite.memo import CallMemo
from gateway.rewrite.request import LLMRequest

TENANT = b"tenant-a"
MARK = {"type": "ephemeral"}


def _message(rng: random.Random, i: int) -> dict[str, Any]:
    role = ("user", "assistant")[i % 2]
    if rng.random() < 0.3:
        return {"role": role, "content": f"question {i} " + "q" * rng.choice((10, 1500))}
    blocks = [
        {"type": "text", "text": f"part {i}.{j} " + "b" * rng.choice((0, 700, 1400))}
        for j in range(rng.randint(1, 4))
    ]
    return {"role": role, "content": blocks}


def _marked(message: dict[str, Any], at: int) -> dict[str, Any]:
    content = message["content"]
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    at %= len(blocks)
    blocks[at] = {**blocks[at], "cache_control": MARK}
    return {**message, "content": blocks}


def _next(rng: random.Random, turn: list[Any], plain: list[Any], made: int) -> list[Any]:
    """The next turn from this one (`plain`: each place's message as the client sent it)."""
    out = list(turn)
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        at = rng.randrange(len(out))
        if op < 0.3:
            out.extend(plain[len(out) : len(out) + rng.randint(1, 3)])
        elif op < 0.5:
            out[at] = _marked(plain[at], rng.randrange(4))
        elif op < 0.6:
            out[0] = _marked(plain[0], rng.randrange(4))  # the gateway's mark on the first
        elif op < 0.75:
            out[at] = plain[at]
        elif op < 0.82:
            out[at] = json.loads(json.dumps(out[at]))
        elif op < 0.87:
            out[at] = copy.deepcopy(out[at])
        elif op < 0.93:
            out[at] = _message(rng, made + at)
        else:
            del out[rng.randint(1, len(out)) :]
    return out or [plain[0]]


def _whole(messages: list[Any]) -> Any:
    body = {"model": "m", "system": "be brief", "messages": messages}
    return fingerprint(json.loads(json.dumps(body)), 1, 4.0, TENANT)


@pytest.mark.parametrize("seed", range(40))
def test_random_turns_digest_what_the_whole_walk_does(seed: int) -> None:
    rng = random.Random(seed)
    plain = [_message(rng, i) for i in range(30)]
    memory = LearnedMemory.within(LearnedState.default())
    assert memory.memo is not None
    turn = plain[: rng.randint(1, 3)]
    for step in range(25):
        body = {"model": "m", "system": "be brief", "messages": turn}
        memo = CallMemo(memory.memo, TENANT)
        assert fingerprint(body, 1, 4.0, TENANT, memo=memo) == _whole(turn), (seed, step)
        if rng.random() < 0.9:  # accepted: what it derived kept
            memory.learn(memo.observed(LLMRequest("anthropic", body)).observations)
        turn = _next(rng, turn, plain, 100 * (step + 1))
