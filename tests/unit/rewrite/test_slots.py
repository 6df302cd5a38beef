"""The breakpoint plan's slots (slots.py) are the value's, whether the tools, the system
prompt and the messages are found by identity (an earlier accepted call's very objects),
are equal copies, or no memo is given; and a part that changed is walked again."""

from __future__ import annotations

import copy
import random
from typing import Any

import orjson
import pytest

from gateway.cache.bounded import LearnedState
from gateway.cache.learned import LearnedMemory
from gateway.rewrite import slots as slots_module
from gateway.rewrite.memo import CallMemo
from gateway.rewrite.request import LLMRequest
from gateway.rewrite.slots import Table, slot_table, slots_of
from tests.support.fixtures import FIXTURES, load

TENANT = b"tenant-a"


def _memory() -> LearnedMemory:
    memory = LearnedMemory.within(LearnedState.default())
    assert memory.memo is not None
    return memory


def _memo(memory: LearnedMemory) -> CallMemo:
    assert memory.memo is not None
    return CallMemo(memory.memo, TENANT)


def _learn(memory: LearnedMemory, memo: CallMemo) -> None:
    memory.learn(memo.observed(LLMRequest("anthropic", {})).observations)


def _bodies() -> list[dict[str, Any]]:
    calls = load(FIXTURES / "claude-long.jsonl").calls
    return [orjson.loads(call.raw_body()) for call in calls if call.wire == "anthropic"]


def _variants(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The body, with a message changed in the middle, one added and one left off, another
    system prompt (a string), no tools, a client breakpoint moved."""
    messages = body["messages"]
    middle = len(messages) // 2
    changed = [*messages[:middle], {"role": "user", "content": "changed"}, *messages[middle + 1 :]]
    mark = {"type": "ephemeral", "ttl": "1h"}
    block = {"type": "text", "text": "x" * 5000, "cache_control": mark}
    marked = [*messages[:-1], {**messages[-1], "content": [block]}]
    return [
        body,
        {**body, "messages": changed},
        {**body, "messages": [*messages, {"role": "user", "content": "more " * 400}]},
        {**body, "messages": messages[:-1]},
        {**body, "system": "You answer. " * 300},
        {key: value for key, value in body.items() if key != "tools"},
        {**body, "messages": marked},
    ]


def _consistent(table: Table) -> None:
    """The client's marks beside the slots are the slots' own; the counts, their sections'."""
    marks = tuple((i, slot.client_ttl) for i, slot in enumerate(table.slots) if slot.client_ttl)
    assert table.client == marks
    assert table.tools == sum(slot.section == "tools" for slot in table.slots)
    assert table.head == sum(slot.section != "messages" for slot in table.slots)


@pytest.mark.parametrize("enough", [1, 1024, 4096, 10**9])
def test_found_by_identity_equal_copy_or_no_memo_alike(enough: int) -> None:
    memory = _memory()
    for body in _bodies():
        for variant in _variants(body):
            plain = slot_table(copy.deepcopy(variant), 4.0, enough)
            _consistent(plain)
            memo = _memo(memory)
            assert slot_table(variant, 4.0, enough, memo) == plain
            _learn(memory, memo)
            for again in (variant, copy.deepcopy(variant)):
                assert slot_table(again, 4.0, enough, _memo(memory)) == plain
            # Another ratio on the same objects: derived for it.
            other = slot_table(copy.deepcopy(variant), 3.0, enough)
            assert slot_table(variant, 3.0, enough, _memo(memory)) == other


def test_the_same_objects_are_not_walked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    memory = _memory()
    body = _bodies()[-1]
    memo = _memo(memory)
    first = slots_of(body, 4.0, 4096, memo)
    _learn(memory, memo)
    again = {**body, "messages": [*body["messages"], {"role": "user", "content": "next " * 400}]}
    expected = slots_of(copy.deepcopy(again), 4.0, 4096)
    walked: list[int] = []
    walk = slots_module._walk

    def counted(slots: Any, messages: Any, *rest: Any) -> None:
        walked.append(len(messages))
        walk(slots, messages, *rest)

    monkeypatch.setattr(slots_module, "_walk", counted)
    monkeypatch.setattr(slots_module, "count_json_tokens", None)  # the tools: not counted
    found = slots_of(again, 4.0, 4096, _memo(memory))
    assert walked == [1]
    assert found[: len(first)] == first
    assert found == expected


def test_a_run_is_shared_as_far_as_its_messages_are_the_very_objects_or_equal() -> None:
    """`_same_start`: at least every leading message that is the run's very object, and
    none past the first that differs in value (the slots are the values' own); only the
    very objects where the run counted its messages."""
    rng = random.Random(20261201)
    for _ in range(2000):
        kept = tuple({"role": "user", "content": str(i)} for i in range(rng.randint(1, 8)))
        messages = list(kept[: rng.randint(0, len(kept))])
        messages += [{"role": "user", "content": str(i)} for i in range(rng.randint(0, 3))]
        for _ in range(rng.randint(0, 2)):  # an equal copy, or another value, somewhere
            if messages:
                at = rng.randrange(len(messages))
                copy_of = dict(messages[at])
                messages[at] = copy_of if rng.random() < 0.5 else {**copy_of, "content": "x"}
        same = slots_module._same_start(kept, messages, True)
        identical = 0
        while identical < min(len(kept), len(messages)) and kept[identical] is messages[identical]:
            identical += 1
        assert identical <= same <= min(len(kept), len(messages))
        assert list(kept[:same]) == messages[:same]
        assert slots_module._same_start(kept, messages, False) == identical


def test_a_message_equal_in_value_but_sent_otherwise_is_walked_again() -> None:
    """`1` and `1.0` are equal values in Python and not the same bytes: where the estimate
    is still counted (no tools to pass the minimum), a message resent so is measured anew,
    not taken from the run as an equal value."""
    memory = _memory()
    use = {"type": "tool_use", "id": "t", "name": "f", "input": {"n": 1}}
    messages: list[Any] = [
        {"role": "user", "content": "Go " * 10},
        {"role": "assistant", "content": [use]},
        {"role": "user", "content": "More " * 10},
    ]
    body = {"system": "S", "messages": messages}
    memo = _memo(memory)
    slot_table(body, 4.0, 10**6, memo)
    _learn(memory, memo)
    again = [messages[0], {**messages[1], "content": [{**use, "input": {"n": 1.0}}]}, messages[2]]
    assert again == messages
    resent = {"system": "S", "messages": [*again, {"role": "assistant", "content": "Ok"}]}
    expected = slot_table(copy.deepcopy(resent), 4.0, 10**6)
    assert slot_table(resent, 4.0, 10**6, _memo(memory)) == expected
