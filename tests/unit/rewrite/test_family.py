"""The prompt family's digests (family.py) are the value's, whether the system prompt and
the tools' bytes are found by identity (an earlier accepted call's very objects), are an
equal copy, or no memo is given."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from gateway.cache.bounded import LearnedState
from gateway.cache.learned import LearnedMemory
from gateway.rewrite import family
from gateway.rewrite.family import family_of, prefix, unmarked
from gateway.rewrite.memo import CallMemo
from gateway.rewrite.request import LLMRequest

TENANT = b"tenant-a"
LONG = "You are a support agent. Answer in one line.\n" * 60
SYSTEMS: list[Any] = [
    LONG,
    "short",
    [{"type": "text", "text": LONG}, {"type": "text", "text": "today is 2026-11-30"}],
    [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}],
    [],
]
TOOLS = [{"name": "read", "description": "Reads a file. " * 100, "input_schema": {}}]


def _body(system: Any) -> dict[str, Any]:
    return {"model": "m", "system": system, "tools": TOOLS, "messages": []}


def _learned(memory: LearnedMemory, memo: CallMemo) -> None:
    request = memo.observed(LLMRequest("anthropic", {}))
    memory.learn(request.observations)


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("stable", [None, 1, 0])
@pytest.mark.parametrize("given", [True, False])
def test_found_by_identity_equal_copy_or_no_memo_alike(
    system: Any, stable: int | None, given: bool
) -> None:
    memory = LearnedMemory.within(LearnedState.default())
    assert memory.memo is not None
    body = _body(system)
    tools = unmarked(TOOLS) if given else None
    plain = prefix(copy.deepcopy(body), stable, None, None)
    memo = CallMemo(memory.memo, TENANT)
    assert prefix(body, stable, tools, memo) == plain
    _learned(memory, memo)
    for again in (body, copy.deepcopy(body), orjson.loads(orjson.dumps(body))):
        memo = CallMemo(memory.memo, TENANT)
        assert prefix(again, stable, tools, memo) == plain
        assert prefix(again, stable, None, memo) == plain
        assert family_of(again, stable, TENANT, tools, memo) == family_of(again, stable, TENANT)
    # The same system object with other tools: their own digest, not the held one's.
    other = [{"name": "write", "description": "Writes a file.", "input_schema": {}}]
    changed = {**body, "tools": other}
    expect = prefix(copy.deepcopy(changed), stable, None, None)
    for handed in (unmarked(other), None):
        memo = CallMemo(memory.memo, TENANT)
        assert prefix(changed, stable, handed, memo) == expect
    # Another stable block count on the same object: derived for it.
    memo = CallMemo(memory.memo, TENANT)
    assert prefix(body, 5, tools, memo) == prefix(copy.deepcopy(body), 5, None, None)


def test_a_long_string_system_prompt_seen_before_is_not_serialized_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    memory = LearnedMemory.within(LearnedState.default())
    assert memory.memo is not None
    body, tools = _body(LONG), unmarked(TOOLS)
    memo = CallMemo(memory.memo, TENANT)
    first = prefix(body, None, bytes(bytearray(tools)), memo)  # other bytes, equal
    _learned(memory, memo)
    memo = CallMemo(memory.memo, TENANT)
    assert prefix(body, None, tools, memo) == first  # held with these bytes from now on
    _learned(memory, memo)

    def refused(blocks: Any) -> bytes:
        raise AssertionError("serialized again")

    monkeypatch.setattr(family, "unmarked", refused)
    monkeypatch.setattr(family.digest, "content", refused)
    assert prefix(body, None, tools, CallMemo(memory.memo, TENANT)) == first


def _layers(texts: list[Any]) -> dict[str, Any]:
    """A body as openai_text.layers makes it: its system list new, of text blocks."""
    return {"model": "m", "tools": [], "system": [{"type": "text", "text": t} for t in texts]}


def test_a_system_made_anew_is_found_by_its_texts_and_only_by_the_very_texts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    memory = LearnedMemory.within(LearnedState.default())
    assert memory.memo is not None
    texts: list[Any] = [LONG, "user rules", [{"type": "input_text", "text": "x"}]]
    tools = unmarked(TOOLS)
    memo = CallMemo(memory.memo, TENANT)
    first = prefix(_layers(texts), None, tools, memo, tuple(texts))
    assert first == prefix(_layers(texts), None, tools, None)
    _learned(memory, memo)
    # Equal texts that are other objects, other texts, fewer: derived anew.
    for made in (
        copy.deepcopy(texts),
        [*texts[:2], [{"type": "input_text", "text": "y"}]],
        texts[:2],
    ):
        other = _layers(made)
        memo = CallMemo(memory.memo, TENANT)
        assert prefix(other, 1, tools, memo, tuple(made)) == prefix(other, 1, tools, None)
        assert prefix(other, None, tools, memo, tuple(made)) == prefix(other, None, tools, None)

    def refused(blocks: Any) -> bytes:
        raise AssertionError("serialized again")

    monkeypatch.setattr(family, "unmarked", refused)
    monkeypatch.setattr(family.digest, "content", refused)
    assert prefix(_layers(texts), None, tools, CallMemo(memory.memo, TENANT), tuple(texts)) == first
