"""A stage adds what its memo kept to the one request it makes last (`CallMemo.derived`): so
it must take it when it is done with the memo. Every entry a stage keeps, over every turn of
the recorded conversations, new and resent, reaches the call's observations once."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Hashable

import pytest

from gateway.cache.bounded import LearnedState
from gateway.cache.learned import LearnedMemory
from gateway.rewrite.memo import CallMemo, Derived
from gateway.rewrite.pipeline import ANTHROPIC_STAGES, OPENAI_STAGES, rewrite
from gateway.rewrite.request import LLMRequest
from tests.support.fixtures import FIXTURES, load
from tests.support.rewrite import context

RECORDINGS = sorted(path.stem for path in FIXTURES.glob("*.jsonl"))


@pytest.mark.parametrize("name", RECORDINGS)
def test_every_entry_a_stage_keeps_is_observed(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    kept: Counter[Hashable] = Counter()
    keep = CallMemo.keep

    def counted(memo: CallMemo, key: Hashable, value: object, size: int) -> None:
        kept[key] += 1
        keep(memo, key, value, size)

    monkeypatch.setattr(CallMemo, "keep", counted)
    memory = LearnedMemory.within(LearnedState.default())
    ctx = context(memory)
    total = 0
    for call in load(FIXTURES / f"{name}.jsonl").calls:
        stages = ANTHROPIC_STAGES if call.wire == "anthropic" else OPENAI_STAGES
        provider = "anthropic" if call.wire == "anthropic" else "openai"
        parsed = json.loads(call.raw_body())
        for body in (parsed, json.loads(call.raw_body()), parsed):
            kept.clear()
            out = rewrite(LLMRequest(provider, body, None, b"t"), ctx, stages)
            observed: Counter[Hashable] = Counter(
                key for o in out.observations if isinstance(o, Derived) for key, _, _ in o.entries
            )
            assert observed == kept
            total += sum(kept.values())
            memory.learn(out.observations)
    assert total, "no stage kept anything: the test compared nothing"
