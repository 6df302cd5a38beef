"""The OpenAI audit's layers (pipeline.py's `_layers`): the very dict an earlier accepted
call made where the body sends the same conversation list, model, instructions and tools,
and `layers(body)` for every other body (an equal copy, one value changed, no memo)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from gateway.cache.bounded import LearnedState
from gateway.cache.learned import LearnedMemory
from gateway.rewrite.memo import CallMemo
from gateway.rewrite.openai_text import layers
from gateway.rewrite.pipeline import _layers
from gateway.rewrite.request import LLMRequest

TENANT = b"tenant-a"

BODY: dict[str, Any] = {
    "model": "gpt-5",
    "instructions": "Be brief. " * 200,
    "tools": [{"type": "function", "name": "run", "parameters": {"type": "object"}}],
    "input": [
        {"type": "message", "role": "developer", "content": "Rules. " * 300},
        {"type": "message", "role": "user", "content": "Hello"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ],
}

# Each: the body a later call sends, from the body the first call sent; True where the
# first call's very dict is the answer.
LATER: list[tuple[str, Callable[[dict[str, Any]], dict[str, Any]], bool]] = [
    ("the same object", lambda b: b, True),
    ("a new dict of the same values", lambda b: dict(b), True),
    (
        "equal instructions, a new string",
        lambda b: {**b, "instructions": "".join(b["instructions"])},
        True,
    ),
    ("an equal copy", copy.deepcopy, False),
    ("the conversation list copied", lambda b: {**b, "input": list(b["input"])}, False),
    ("other instructions", lambda b: {**b, "instructions": "Be long."}, False),
    ("no instructions", lambda b: {k: v for k, v in b.items() if k != "instructions"}, False),
    ("another model", lambda b: {**b, "model": "gpt-5-mini"}, False),
    ("an equal tools list", lambda b: {**b, "tools": list(b["tools"])}, False),
    ("other tools", lambda b: {**b, "tools": b["tools"][:0]}, False),
    ("no tools", lambda b: {k: v for k, v in b.items() if k != "tools"}, False),
]


def _memo(memory: LearnedMemory) -> CallMemo:
    assert memory.memo is not None
    return CallMemo(memory.memo, TENANT)


@pytest.mark.parametrize(("name", "later", "same"), LATER, ids=[n for n, _, _ in LATER])
def test_layers_found_by_identity_are_the_bodys_layers(
    name: str, later: Callable[[dict[str, Any]], dict[str, Any]], same: bool
) -> None:
    memory = LearnedMemory.within(LearnedState.default())
    body = copy.deepcopy(BODY)
    memo = _memo(memory)
    first = _layers(body, memo)
    assert first == layers(body)
    memory.learn(memo.observed(LLMRequest("openai", body)).observations)
    again = later(body)
    found = _layers(again, _memo(memory))
    assert found == layers(again)
    assert (found is first) == same, name
    assert _layers(again, None) == layers(again)


def test_another_tenant_never_gets_the_dict() -> None:
    memory = LearnedMemory.within(LearnedState.default())
    body = copy.deepcopy(BODY)
    memo = _memo(memory)
    first = _layers(body, memo)
    memory.learn(memo.observed(LLMRequest("openai", body)).observations)
    assert memory.memo is not None
    assert _layers(body, CallMemo(memory.memo, b"tenant-b")) is not first
