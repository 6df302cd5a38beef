"""`plan_short` is `plan_breakpoints` where it answers: the same request, findings and
observations, and nothing left for the memo to keep."""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from typing import Any

import pytest

from gateway.rewrite.breakpoints import BreakpointPolicy, plan_breakpoints, plan_short
from gateway.rewrite.memo import CallMemo
from gateway.rewrite.request import Finding, LLMRequest
from gateway.rewrite.snapshot import TailJudged

OBSERVED = (TailJudged(b"t", None, "m"),)
SYSTEMS: tuple[Any, ...] = (None, "", "be brief", "s" * 5000, [{"type": "text", "text": "x"}])
CONTENTS: tuple[Any, ...] = (
    "hi",
    "",
    "q" * 1000,
    "q" * 1023,
    "q" * 2000,
    [{"type": "text", "text": "a"}],
)
POLICIES: tuple[BreakpointPolicy, ...] = ("augment", "replace", "respect")


class _NoMemo:
    def derived(self, tenant: bytes, key: Hashable) -> object | None:
        return None


def _bodies() -> list[dict[str, Any]]:
    bodies = []
    for system, count in itertools.product(SYSTEMS, range(4)):
        for contents in itertools.product(CONTENTS, repeat=count):
            body: dict[str, Any] = {"model": "m", "max_tokens": 5}
            if system is not None:
                body["system"] = system
            body["messages"] = [
                {"role": ("user", "assistant")[i % 2], "content": c} for i, c in enumerate(contents)
            ]
            bodies.append(body)
    bodies.append({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [{}]})
    bodies.append(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "cache_control": {}}
    )
    bodies.append({"model": "m"})
    return bodies


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("min_tokens", [1, 4, 1024, 4096])
def test_a_short_plan_is_the_whole_plan(policy: BreakpointPolicy, min_tokens: int) -> None:
    answered = 0
    for body in _bodies():
        for dates_at in (None, (0, 0)):
            request = LLMRequest("anthropic", body, dates_at=dates_at)
            short = plan_short(
                request, min_tokens=min_tokens, chars_per_token=4.0, observed=OBSERVED
            )
            if short is None:
                continue
            answered += 1
            memo = CallMemo(_NoMemo(), b"t")
            whole = plan_breakpoints(
                request,
                policy=policy,
                min_tokens=min_tokens,
                chars_per_token=4.0,
                observed=OBSERVED,
                memo=memo,
            )
            assert short == whole
            assert short.body is whole.body is body
            assert memo.observed(whole) is whole  # the whole plan kept nothing either
    assert answered


def test_the_question_of_a_1kb_body_is_answered_short() -> None:
    body = {"model": "m", "max_tokens": 200, "messages": [{"role": "user", "content": "hi"}]}
    short = plan_short(
        LLMRequest("anthropic", body), min_tokens=4096, chars_per_token=4.0, observed=OBSERVED
    )
    assert short is not None
    assert short.findings == (Finding("prefix_below_minimum", "~1 tokens < 4096"),)
    assert short.observations == OBSERVED


def test_a_body_at_the_minimum_is_left_to_the_whole_plan() -> None:
    body = {"model": "m", "system": "s" * 4000, "messages": [{"role": "user", "content": "q"}]}
    request = LLMRequest("anthropic", body)
    assert plan_short(request, min_tokens=1001, chars_per_token=4.0) is None
    assert plan_short(request, min_tokens=1002, chars_per_token=4.0) is not None
