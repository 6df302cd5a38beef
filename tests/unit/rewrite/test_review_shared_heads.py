"""The breakpoint plan when a tenant's calls share their head's objects (as prefix reuse
shares an earlier parse's): the very same system prompt and tools objects sent with other
models (another token ratio and minimum), with and without tools (absent, empty, a list),
above and below the minimum, with the client's own breakpoints on them or not, and with new
messages. Each call rewrites as a fresh parse of its bytes does without the memo."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from gateway.rewrite.memo import Derived
from gateway.rewrite.pipeline import ANTHROPIC_STAGES
from tests.support.rewrite import rewritten_alike, with_and_without_memo

TENANT = b"tenant-a"
# Token ratios 3.1 and 4.0; minimums 512, 1024, 2048 and 4096.
MODELS = [
    "claude-sonnet-5-5",
    "claude-sonnet-4-6",
    "claude-opus-4-7",
    "claude-opus-4-6",
    "claude-haiku-4-5",
]
WORDS = [
    "the",
    "cache",
    "of",
    "a",
    "prompt",
    "holds",
    "what",
    "its",
    "prefix",
    "repeats",
    "from",
    "the",
    "call",
    "before",
]


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _system(rng: random.Random) -> Any:
    """A string, or blocks (some with the client's breakpoint), from ~50 to ~20 K chars."""
    size = rng.choice([10, 300, 700, 1500, 3000])
    if rng.random() < 0.4:
        return _text(rng, size)
    blocks: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 3)):
        block: dict[str, Any] = {"type": "text", "text": _text(rng, size)}
        if rng.random() < 0.3:
            block["cache_control"] = {"type": "ephemeral"}
        blocks.append(block)
    return blocks


def _tools(rng: random.Random) -> Any:
    shape = rng.randrange(4)
    if shape == 0:
        return None  # absent
    if shape == 1:
        return []
    return [
        {
            "name": f"tool_{i}",
            "description": _text(rng, rng.choice([20, 400])),
            "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}},
        }
        for i in range(rng.randint(1, 4))
    ]


@pytest.mark.parametrize("seed", range(12))
def test_shared_heads_with_other_models_plan_as_a_fresh_parse(seed: int) -> None:
    rng = random.Random(seed)
    memories, contexts = with_and_without_memo()
    systems = [_system(rng) for _ in range(4)]
    tools = [_tools(rng) for _ in range(3)]
    messages: list[dict[str, Any]] = []
    kept = 0
    for _ in range(40):
        if rng.random() < 0.3 or not messages:
            messages = []
        messages = [*messages, {"role": "user", "content": _text(rng, rng.choice([5, 200]))}]
        body: dict[str, Any] = {
            "model": rng.choice(MODELS),
            "max_tokens": 100,
            "system": rng.choice(systems),  # the very object an earlier call sent
            "messages": list(messages),
        }
        chosen = rng.choice(tools)
        if chosen is not None:
            body["tools"] = chosen
        out = rewritten_alike(
            "anthropic",
            (body, copy.deepcopy(body)),
            memories,
            contexts,
            ANTHROPIC_STAGES,
            TENANT,
        )
        kept += sum(
            str(entry[0][0]).startswith("breakpoints")
            for o in out.observations
            if isinstance(o, Derived)
            for entry in o.entries
        )
    assert kept  # the plan's memo was used: the comparison compared something
