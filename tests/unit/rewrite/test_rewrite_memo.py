"""The memo of derived values (rewrite/memo.py) is invisible: every turn of a recorded
conversation rewrites to the same body, rewrites, findings and observations with it as
without it, and a turn sent again does too."""

from __future__ import annotations

import json

import pytest

from gateway.cache.bounded import LearnedState
from gateway.cache.learned import LearnedMemory
from gateway.rewrite.memo import Derived
from gateway.rewrite.pipeline import ANTHROPIC_STAGES, OPENAI_STAGES, rewrite
from gateway.rewrite.request import LLMRequest
from tests.support.fixtures import FIXTURES, load
from tests.support.rewrite import context, rewritten_alike

TENANT = b"tenant-a"
RECORDINGS = sorted(path.stem for path in FIXTURES.glob("*.jsonl"))


@pytest.mark.parametrize("name", RECORDINGS)
def test_a_recorded_conversation_rewrites_the_same_with_and_without_the_memo(name: str) -> None:
    calls = load(FIXTURES / f"{name}.jsonl").calls
    memories = [LearnedMemory.within(LearnedState.default(), memo=memo) for memo in (True, False)]
    contexts = [context(memory) for memory in memories]
    derived = 0
    for call in calls:
        stages = ANTHROPIC_STAGES if call.wire == "anthropic" else OPENAI_STAGES
        provider = "anthropic" if call.wire == "anthropic" else "openai"
        raw = call.raw_body()
        parsed = json.loads(raw)
        # A turn, the same turn again (a retry: all found in the memo by value), and the same
        # parsed objects again (as prefix reuse shares them: found by identity).
        for again in (json.loads(raw), json.loads(raw), parsed, parsed):
            pair = (again, json.loads(raw))
            out = rewritten_alike(provider, pair, memories, contexts, stages, TENANT)
            derived += sum(isinstance(o, Derived) for o in out.observations)
    assert derived, "the memo was never used: the comparison compared nothing"


def test_a_repeated_long_text_is_derived_once() -> None:
    memory = LearnedMemory.within(LearnedState.default())
    ctx = context(memory)
    text = "A line with a trailing space \n" * 100
    body = {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": text}]}
    first = rewrite(LLMRequest("anthropic", json.loads(json.dumps(body)), None, TENANT), ctx)
    memory.learn(first.observations)
    again = rewrite(LLMRequest("anthropic", json.loads(json.dumps(body)), None, TENANT), ctx)
    assert _by_value(first)
    assert not _by_value(again)  # found by its value (a new parse: new objects, new ids)
    assert again.body == first.body


def _by_value(request: LLMRequest) -> list[object]:
    """What a call derived anew, found by value (not by a part's identity: memo.keep_same)."""
    return [
        key
        for o in request.observations
        if isinstance(o, Derived)
        for key, value, _ in o.entries
        if not (isinstance(value, tuple) and key == (key[0], id(value[0])))
    ]


def test_what_one_tenant_derived_never_answers_anothers_lookup() -> None:
    """The family and the digests hold the tenant: B's call with A's body, after A's, gets its
    own, as it does with nothing remembered."""
    calls = load(FIXTURES / "claude-long.jsonl").calls[:3]
    shared = LearnedMemory.within(LearnedState.default())
    ctx = context(shared)
    unshared = LearnedMemory.within(LearnedState.default(), memo=False)
    reference = context(unshared)
    for call in calls:
        raw = call.raw_body()
        for tenant in (b"tenant-a", b"tenant-b"):
            out = rewrite(LLMRequest("anthropic", json.loads(raw), None, tenant), ctx)
            shared.learn(out.observations)
            alone = rewrite(LLMRequest("anthropic", json.loads(raw), None, tenant), reference)
            unshared.learn(alone.observations)
            assert out.fingerprint == alone.fingerprint
            assert json.dumps(out.body) == json.dumps(alone.body)
