"""The whitespace rule's list runs (whitespace.py's `ItemsRun`) on odd lists, as a caller
may send them and parse reuse may share them: items that are not dicts (texts, numbers,
None, lists; a cached small int or interned text first, whose identity every body shares),
the same object twice, lists that shrink to nothing, reorder, swap their first item, and
non-ASCII or CRLF texts. Each call rewrites as without the memo, on both wires."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from gateway.cache.bounded import LearnedState
from gateway.cache.learned import LearnedMemory
from gateway.rewrite.memo import Derived
from gateway.rewrite.pipeline import ANTHROPIC_STAGES, OPENAI_STAGES
from gateway.rewrite.request import LLMRequest
from gateway.rewrite.whitespace import whitespace, whitespace_openai
from tests.support.rewrite import rewritten_alike, with_and_without_memo

TENANT = b"tenant-a"
DIRTY = "a line  \r\n" * 120  # over MIN_CHARS, changed by the rule
CLEAN = "a line\n" * 160
WIDE = "ünïcödé ✓  \n" * 120  # non-ASCII, changed


def _pool(rng: random.Random, odd: bool = True) -> list[Any]:
    """Items of every shape: messages (string or block contents, long or short, changed or
    not), OpenAI items, and (`odd`) blocks and items that are no message at all."""
    texts = [DIRTY, CLEAN, WIDE, "short  ", "short", "", "  \n  "]
    pool: list[Any] = []
    for i in range(14):
        text = f"{i} " + rng.choice(texts)
        shape = rng.randrange(6)
        if shape == 0:
            pool.append({"role": "user", "content": text})
        elif shape == 1:
            blocks = [{"type": "text", "text": text}, *(["not a block", 7] if odd else [])]
            pool.append({"role": "assistant", "content": blocks})
        elif shape == 2:
            parts = [{"type": "input_text", "text": text}, {"type": "image"}]
            pool.append({"role": "user", "content": parts})
        elif shape == 3:
            pool.append({"type": "function_call_output", "call_id": "c", "output": text})
        elif shape == 4:
            result = {"type": "tool_result", "content": [{"type": "text", "text": text}]}
            pool.append({"role": "user", "content": [result]})
        elif odd:
            pool.append({"role": "user", "content": None})
    return [*pool, "x", 1, None, [DIRTY], 3.5, True] if odd else pool


def _next(rng: random.Random, last: list[Any], pool: list[Any]) -> list[Any]:
    move = rng.choice(
        ["grow", "grow", "shrink", "empty", "reorder", "twice", "first", "middle", "same", "copy"]
    )
    if move == "grow":
        return [*last, *rng.sample(pool, rng.randint(1, 4))]
    if move == "shrink":
        return last[: rng.randint(0, len(last))]
    if move == "empty":
        return []
    if move == "reorder":
        return rng.sample(last, len(last))
    if move == "twice" and last:
        return [*last, rng.choice(last), last[0]]
    if move == "first" and last:
        return [rng.choice(pool), *last[1:]]
    if move == "middle" and last:
        items = list(last)
        items[rng.randrange(len(items))] = copy.deepcopy(rng.choice(pool))
        return items
    if move == "same":
        return last
    return list(last)


def _outcome(request: LLMRequest) -> tuple[Any, ...]:
    observed = tuple(o for o in request.observations if not isinstance(o, Derived))
    return json.dumps(request.body), request.rewrites, request.findings, observed


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
@pytest.mark.parametrize("seed", range(25))
def test_odd_lists_sharing_items_rewrite_as_without_the_memo(provider: str, seed: int) -> None:
    rng = random.Random(seed)
    pool = _pool(rng)
    rule = whitespace if provider == "anthropic" else whitespace_openai
    key = "messages" if provider == "anthropic" or seed % 2 else "input"
    learned = LearnedMemory.within(LearnedState.default())
    items: list[Any] = [pool[rng.randrange(len(pool))]]
    runs = 0
    for _ in range(40):
        items = _next(rng, items, pool)
        if rng.random() < 0.2:  # a first item whose identity every body shares
            items = [rng.choice(["x", 1, None, True]), *items]
        body = {"model": "m", key: items}
        out = rule(LLMRequest(provider, body, tenant=TENANT), True, learned.memo)
        plain = rule(LLMRequest(provider, copy.deepcopy(body), tenant=TENANT), True, None)
        assert _outcome(out) == _outcome(plain)
        if not out.rewrites:
            assert out.body is body
        learned.learn(out.observations)
        runs += any(
            str(entry[0][0]).endswith(".run")
            for o in out.observations
            if isinstance(o, Derived)
            for entry in o.entries
        )
    assert runs  # a run was kept, and later calls could find it


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
@pytest.mark.parametrize("seed", range(8))
def test_odd_lists_through_every_stage_rewrite_as_without_the_memo(
    provider: str, seed: int
) -> None:
    """The same, through the whole pipeline (the stages after whitespace see the run's
    objects), both memories learning what they were shown; well-formed messages only (a
    message or block that is not an object fails a later stage either way, and the call is
    then forwarded unchanged)."""
    rng = random.Random(1000 + seed)
    pool = _pool(rng, odd=False)
    stages = ANTHROPIC_STAGES if provider == "anthropic" else OPENAI_STAGES
    memories, contexts = with_and_without_memo()
    items: list[Any] = [pool[0]]
    for _ in range(25):
        items = _next(rng, items, pool) or [pool[1]]
        body: dict[str, Any] = {"model": "claude-haiku-4-5", "messages": items}
        if provider == "openai":
            body = {"model": "gpt-5", "input": items, "instructions": DIRTY}
        else:
            body["system"] = [{"type": "text", "text": DIRTY}]
        pair = (body, copy.deepcopy(body))
        rewritten_alike(provider, pair, memories, contexts, stages, TENANT)
