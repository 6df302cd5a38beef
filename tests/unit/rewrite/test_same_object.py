"""The steps that measure and mark the body find what an earlier accepted call derived from
the very objects it sent (rewrite/memo.py's `get_same`): the breakpoint plan returns the same
output objects for the same input objects, and the digests are those of the value, found by
identity or derived anew alike (the memo is invisible in the output)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from gateway.cache.bounded import LearnedState
from gateway.cache.learned import LearnedMemory
from gateway.rewrite.fingerprint import conversation_of, family_of, fingerprint
from gateway.rewrite.memo import CallMemo
from gateway.rewrite.pipeline import ANTHROPIC_STAGES, OPENAI_STAGES, rewrite
from gateway.rewrite.request import LLMRequest
from tests.support.fixtures import FIXTURES, load
from tests.support.rewrite import context

TENANT = b"tenant-a"
RECORDINGS = sorted(path.stem for path in FIXTURES.glob("*.jsonl"))


def _turns(name: str) -> list[tuple[str, tuple[Any, ...], bytes]]:
    out = []
    for call in load(FIXTURES / f"{name}.jsonl").calls:
        anthropic = call.wire == "anthropic"
        stages = ANTHROPIC_STAGES if anthropic else OPENAI_STAGES
        out.append(("anthropic" if anthropic else "openai", stages, call.raw_body()))
    return out


@pytest.mark.parametrize("name", RECORDINGS)
def test_the_same_input_object_gives_the_same_output_objects_and_bytes(name: str) -> None:
    """The plan and the audit run again on the very request an accepted call sent (prefix
    reuse shares its parts): the output is the first output's bytes, and every part of it is
    the first output's object (a marked block or list too)."""
    memory = LearnedMemory.within(LearnedState.default())
    ctx = context(memory)
    for provider, stages, raw in _turns(name):
        at = next(i for i, s in enumerate(stages) if "breakpoints" in s.__name__)
        before = rewrite(LLMRequest(provider, orjson.loads(raw), None, TENANT), ctx, stages[:at])
        first = rewrite(before, ctx, stages[at:])
        memory.learn(first.observations)
        again = rewrite(before, ctx, stages[at:])
        assert orjson.dumps(again.body) == orjson.dumps(first.body)
        assert again.fingerprint == first.fingerprint
        assert again.rewrites == first.rewrites
        assert again.findings == first.findings
        for key in ("tools", "system"):
            if isinstance(first.body.get(key), list):
                assert again.body[key] is first.body[key], key
        for key in ("messages", "input"):
            if isinstance(first.body.get(key), list):
                assert all(x is y for x, y in zip(first.body[key], again.body[key], strict=True))


def test_the_plan_marks_an_equal_but_new_object_alike() -> None:
    calls = _turns("claude-long")
    memory = LearnedMemory.within(LearnedState.default())
    ctx = context(memory)
    for provider, stages, raw in calls:
        first = rewrite(LLMRequest(provider, orjson.loads(raw), None, TENANT), ctx, stages)
        memory.learn(first.observations)
        equal = rewrite(LLMRequest(provider, orjson.loads(raw), None, TENANT), ctx, stages)
        assert orjson.dumps(equal.body) == orjson.dumps(first.body)
        assert equal.fingerprint == first.fingerprint


def test_digests_are_the_values_found_by_identity_or_derived() -> None:
    memory = LearnedMemory.within(LearnedState.default())
    assert memory.memo is not None
    raws = [raw for _, _, raw in _turns("claude-long")]
    for raw in raws:
        body = orjson.loads(raw)
        plain = fingerprint(body, 1, 4.0, TENANT)
        memo = CallMemo(memory.memo, TENANT)
        assert fingerprint(body, 1, 4.0, TENANT, memo=memo) == plain
        memory.learn([memo.observed(LLMRequest("anthropic", body)).observations[0]])
        for again in (body, json.loads(raw)):  # the same object, then an equal one
            memo = CallMemo(memory.memo, TENANT)
            assert fingerprint(again, 1, 4.0, TENANT, memo=memo) == plain
            assert family_of(again, 1, TENANT, memo=memo) == plain.family
            assert conversation_of(again, TENANT, memo) == plain.conversation
        # A part found by identity in another chain (a message moved): its own digests.
        moved = {**body, "messages": body["messages"][1:]}
        memo = CallMemo(memory.memo, TENANT)
        assert fingerprint(moved, 1, 4.0, TENANT, memo=memo) == fingerprint(
            json.loads(json.dumps(moved)), 1, 4.0, TENANT
        )
