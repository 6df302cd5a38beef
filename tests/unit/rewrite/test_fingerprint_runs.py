"""A turn's fingerprint extends the run of messages the previous accepted turn kept (by
identity), taking the run's places again past a message that only its breakpoint parts
from the run's: the digests are the whole walk's, whatever the turn shares with the run."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import pytest

from gateway.cache.bounded import LearnedState
from gateway.cache.learned import LearnedMemory
from gateway.rewrite.fingerprint import fingerprint
from gateway.rewrite.memo import CallMemo, Derived
from gateway.rewrite.request import LLMRequest
from gateway.rewrite.runs import RUN
from gateway.rewrite.walk import again

TENANT = b"tenant-a"
MARK = {"type": "ephemeral"}


def _message(i: int) -> dict[str, Any]:
    role = ("user", "assistant")[i % 2]
    if i % 3 == 0:
        return {"role": role, "content": f"question {i} " + "q" * 1500}
    blocks = [{"type": "text", "text": f"part {i}.{j} " + "b" * (700 * j)} for j in range(3)]
    return {"role": role, "content": blocks}


def _marked(message: dict[str, Any], at: int = -1) -> dict[str, Any]:
    """The message as a breakpoint stage marks it: a copy, its block at `at` copied."""
    content = message["content"]
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    blocks[at] = {**blocks[at], "cache_control": MARK}
    return {**message, "content": blocks}


def _typed(value: Any) -> dict[str, Any]:
    """A tool's result holding a value that is not a string (equal ones may dump apart)."""
    return {"role": "user", "content": [{"type": "tool_result", "value": value}]}


def _whole(messages: list[Any]) -> Any:
    body = {"model": "m", "system": "be brief", "messages": messages}
    return fingerprint(json.loads(json.dumps(body)), 1, 4.0, TENANT)


def _learned(memory: LearnedMemory, messages: list[Any]) -> Any:
    """The turn's fingerprint with the memo, and what it derived kept (an accepted call)."""
    assert memory.memo is not None
    body = {"model": "m", "system": "be brief", "messages": messages}
    memo = CallMemo(memory.memo, TENANT)
    found = fingerprint(body, 1, 4.0, TENANT, memo=memo)
    memory.learn(memo.observed(LLMRequest("anthropic", body)).observations)
    return found


def _turns() -> list[tuple[str, list[Any], list[Any]]]:
    """(case, turn N's messages, turn N+1's), the later sharing the earlier's objects."""
    base = [_message(i) for i in range(8)]
    shared = base[:6]
    cases = [
        ("same objects", [*shared], [*shared]),
        ("one added", [*shared], [*shared, base[6]]),
        ("the mark moved on", [*shared[:-1], _marked(shared[-1])], [*shared, _marked(base[6])]),
        ("a mark in the middle gone", [*shared[:2], _marked(shared[2]), *shared[3:]], [*base]),
        ("a mark in the middle kept", [*shared[:2], _marked(shared[2]), *shared[3:]],
         [*shared[:2], _marked(shared[2]), *shared[3:], base[6]]),
        ("a mark on another block", [*shared[:4], _marked(shared[4], 0), shared[5]],
         [*shared[:4], _marked(shared[4], 1), shared[5]]),
        ("a mark added", [*shared], [*shared[:4], _marked(shared[4]), shared[5]]),
        ("equal copies", [*shared], copy.deepcopy([*shared, base[6]])),
        ("parsed again", [*shared], json.loads(json.dumps([*shared, base[6]]))),
        ("a changed part", [*shared], [*shared[:3], _message(3 + 100), *shared[4:], base[6]]),
        ("a changed block", [*shared],
         [*shared[:4], {**shared[4], "content": [*shared[4]["content"][:2], {"type": "text",
          "text": "other"}]}, shared[5]]),
        ("a block fewer", [*shared],
         [*shared[:4], {**shared[4], "content": shared[4]["content"][:2]}, shared[5]]),
        ("another role", [*shared], [*shared[:4], {**shared[4], "role": "user"}, shared[5]]),
        ("keys reordered", [*shared], [*shared[:4], {**shared[4], "content": [
            dict(reversed(shared[4]["content"][0].items())), *shared[4]["content"][1:]]},
            shared[5]]),
        ("the first changed", [*shared], [_message(100), *shared[1:]]),
        ("a mark added on a first block", [*shared],
         [*shared[:4], _marked(shared[4], 0), shared[5]]),
        ("marks added on two blocks", [*shared],
         [*shared[:4], _marked(_marked(shared[4], 0)), shared[5]]),
        ("the client's mark gone, parsed anew", [*shared[:-1], _marked(shared[-1])],
         [*shared[:-1], *json.loads(json.dumps([shared[-1], base[6]]))]),
        ("a mark moved, parsed anew", [*shared[:-1], _marked(shared[-1])],
         [*shared[:-2], *json.loads(json.dumps([_marked(shared[-2]), shared[-1]]))]),
        ("a changed part, then a mark added", [*shared],
         [*shared[:2], _message(102), shared[3], _marked(shared[4]), shared[5]]),
        ("a number as true", [*shared[:-1], _typed(1)], [*shared[:-1], _typed(True), base[6]]),
        ("a number as a float", [*shared[:-1], _typed(1)], [*shared[:-1], _typed(1.0)]),
        ("a nested value copied", [*shared[:-1], _typed([1])], [*shared[:-1], _typed([1])]),
        ("a nested value changed", [*shared[:-1], _typed([1])], [*shared[:-1], _typed([True])]),
        ("fewer", [*shared], [*shared[:3]]),
    ]  # fmt: skip
    return cases


@pytest.mark.parametrize(("case", "before", "after"), _turns(), ids=[c[0] for c in _turns()])
def test_a_turn_digests_what_the_whole_walk_does(
    case: str, before: list[Any], after: list[Any]
) -> None:
    memory = LearnedMemory.within(LearnedState.default())
    assert _learned(memory, before) == _whole(before)
    assert _learned(memory, after) == _whole(after), case
    assert _learned(memory, after) == _whole(after)  # the turn's own run, kept now
    assert fingerprint({"model": "m", "system": "be brief", "messages": after}, 1, 4.0,
                       TENANT) == _whole(after)  # fmt: skip


def test_a_run_place_is_taken_again_only_for_the_same_bytes() -> None:
    walked, after = (b"m",), b"a"
    message = _message(1)
    typed = {"role": "user", "content": [{"type": "tool_result", "n": 1, "ok": True}]}
    for kept, new, expected in [
        (message, message, walked),
        (_marked(message), message, ()),
        (_marked(message), _marked(message), walked),
        (_marked(message, 0), _marked(message, 1), None),
        (message, _marked(message), (b"a",)),  # the chain after it
        (message, _marked(message, 0), None),  # a block's chain the walk did not keep
        (message, _marked(_marked(message, 0)), None),
        (message, {**message, "role": "user"}, None),
        (message, copy.deepcopy(message), walked),  # copies of the same strings
        (message, json.loads(json.dumps(message)), walked),  # equal strings: the same bytes
        (_marked(message), json.loads(json.dumps(message)), ()),
        (message, {**message, "content": message["content"][:2]}, None),
        (message, {**message, "content": [*message["content"][:2], {"type": "text"}]}, None),
        ("text", "text", walked),
        ("text", "other", None),
        ({"role": "user", "content": ["text"]}, {"role": "user", "content": ["text"]}, walked),
        ({"role": "user", "content": ["a", "cache_control"]},
         {"role": "user", "content": ["a", "cache_control"]}, walked),
        ({"role": "user", "content": [{"text": "a"}, "cache_control"]},
         {"role": "user", "content": [{"text": "a", "cache_control": MARK}, "cache_control"]},
         None),
        (typed, json.loads(json.dumps(typed)), walked),
        (typed, {**typed, "content": [{"type": "tool_result", "n": True, "ok": True}]}, None),
        (typed, {**typed, "content": [{"type": "tool_result", "n": 1.0, "ok": True}]}, None),
        (typed, {**typed, "content": [{"type": "tool_result", "n": 1, "ok": 1}]}, None),
        (typed, {**typed, "content": [{"type": "tool_result", "ok": True, "n": 1}]}, None),
        ({"role": "user", "content": [{"type": "x", "v": [1]}]},
         {"role": "user", "content": [{"type": "x", "v": [1]}]}, None),  # equal, not strings
    ]:  # fmt: skip
        assert again(kept, new, walked, after) == expected, (kept, new)
    for string, other in itertools.product(("s" * 10, "t" * 10), repeat=2):
        expected = walked if string == other else None
        assert again({"role": "user", "content": string},
                     {"role": "user", "content": other}, walked, after) == expected  # fmt: skip


def test_turns_that_add_messages_carry_the_run_s_totals() -> None:
    """Each turn sends the previous one's objects and adds some (marked or not): the run's
    tail, first block and size carried on are the whole walk's."""
    base = [_message(i) for i in range(12)]
    kept_mark = _marked(base[2])
    turns = [
        [base[0]],
        [base[0], base[1], kept_mark],
        [base[0], base[1], kept_mark, base[3]],
        [base[0], base[1], kept_mark, base[3], _marked(base[4], 0), base[5]],
        [base[0], base[1], kept_mark, base[3], _marked(base[4], 0), base[5], _marked(base[6])],
        [base[0], base[1], kept_mark, base[3], _marked(base[4], 0), base[5], _marked(base[6]),
         *base[7:12]],
    ]  # fmt: skip
    memory = LearnedMemory.within(LearnedState.default())
    for turn in turns:
        assert _learned(memory, turn) == _whole(turn)


def test_a_call_on_the_first_messages_leaves_the_longer_run_kept() -> None:
    """A call that sends the start of a kept run (a side question on the conversation's first
    messages) digests that start and keeps no run of its own: the next turn extends the
    longer run, whose messages it would otherwise walk or look up one by one."""
    base = [_message(i) for i in range(8)]
    memory = LearnedMemory.within(LearnedState.default())
    assert memory.memo is not None
    _learned(memory, base[:6])
    body = {"model": "m", "system": "be brief", "messages": base[:3]}
    memo = CallMemo(memory.memo, TENANT)
    assert fingerprint(body, 1, 4.0, TENANT, memo=memo) == _whole(base[:3])
    derived = memo.observed(LLMRequest("anthropic", body)).observations
    kept = [key for o in derived if isinstance(o, Derived) for key, _, _ in o.entries]
    assert not any(isinstance(key, tuple) and key[0] == RUN for key in kept)
    assert _learned(memory, base) == _whole(base)
