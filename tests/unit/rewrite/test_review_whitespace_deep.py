"""A message holding a value nested deeper than orjson writes (it reads up to 1024 levels,
writes up to 254): the whitespace rule with the memo rewrites it as without."""

from __future__ import annotations

import json
from typing import Any

import orjson

from gateway.cache.bounded import LearnedState
from gateway.cache.learned import LearnedMemory
from gateway.rewrite.request import LLMRequest
from gateway.rewrite.whitespace import whitespace


def test_a_deeply_nested_member_rewrites_as_without_the_memo() -> None:
    deep: Any = "x"
    for _ in range(300):
        deep = [deep]
    message = {"role": "user", "content": "a line  \n" * 200, "meta": deep}
    raw = json.dumps({"model": "m", "messages": [message, {"role": "assistant", "content": "ok"}]})
    plain = whitespace(LLMRequest("anthropic", orjson.loads(raw), tenant=b"t"), True, None)
    assert plain.rewrites
    learned = LearnedMemory.within(LearnedState.default())
    out = whitespace(LLMRequest("anthropic", orjson.loads(raw), tenant=b"t"), True, learned.memo)
    assert json.dumps(out.body) == json.dumps(plain.body)
