"""tool_json's answer for a tools list an accepted call sent, kept with the learned forms'
version (cache/tool_forms.py): taken while no form or order was added or forgotten, derived
anew, as without the memo, once one was."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.cache.bounded import LearnedState
from gateway.cache.learned import LearnedMemory
from gateway.cache.tool_forms import ToolForms
from gateway.rewrite.request import LLMRequest
from gateway.rewrite.snapshot import ToolsSeen
from gateway.rewrite.tool_json import CANONICAL, identity, stable_tool_json

TENANT = b"tenant-a"
TOOLS = [
    {"name": f"tool{i}", "description": "Does a thing. " * 40, "input_schema": {"type": "object"}}
    for i in range(3)
]
# The same tools, each with its keys in another order (a client re-serializing them).
REORDERED = [dict(reversed(list(tool.items()))) for tool in TOOLS]


def _call(memory: LearnedMemory, tools: list[Any]) -> LLMRequest:
    request = LLMRequest("anthropic", {"model": "m", "tools": tools}, tenant=TENANT)
    out = stable_tool_json(request, memory.tools, True, memory.memo)
    memory.learn(out.observations)
    return out


def _derived_canonical(request: LLMRequest) -> bool:
    return any(
        key[0] == CANONICAL
        for o in request.observations
        for key, _, _ in getattr(o, "entries", ())
        if isinstance(key, tuple)
    )


def test_the_version_moves_on_each_form_added_or_forgotten() -> None:
    state = LearnedState.default()
    forms = ToolForms(state)
    start = forms.version()
    seen = ToolsSeen(TENANT, ((identity(TOOLS[0]), orjson.dumps(TOOLS[0])),), None)
    forms.learn(seen)
    learned = forms.version()
    assert learned != start
    forms.learn(seen)  # nothing new
    assert forms.version() == learned
    state.put(TENANT, ("other", TENANT, 1), "x", 10)
    state.pop(("other", TENANT, 1))  # another table's entry
    assert forms.version() == learned
    state.pop(("tool_form", TENANT, identity(TOOLS[0])))
    assert forms.version() != learned


def test_the_answer_is_kept_and_taken_until_a_form_changes() -> None:
    memory = LearnedMemory.within(LearnedState.default())
    first = _call(memory, REORDERED)  # teaches the reordered forms
    assert first.body["tools"] is REORDERED
    second = _call(memory, REORDERED)
    assert _derived_canonical(second)
    third = _call(memory, REORDERED)
    assert not _derived_canonical(third)
    assert (third.body, third.rewrites) == (second.body, second.rewrites)
    # A form forgotten: the answer is derived again, and sees the form as new.
    memory.tools._forms.pop(TENANT, identity(TOOLS[1]))
    fourth = _call(memory, REORDERED)
    assert _derived_canonical(fourth)
    seen = [o for o in fourth.observations if isinstance(o, ToolsSeen)]
    assert [i for s in seen for i, _ in s.forms] == [identity(TOOLS[1])]
    assert orjson.dumps(fourth.body) == orjson.dumps(third.body)


def test_forms_learned_by_another_call_are_taken_at_once() -> None:
    memory = LearnedMemory.within(LearnedState.default())
    for _ in range(3):
        _call(memory, REORDERED)  # the answer kept: REORDERED's forms are the first seen
    # The forms forgotten and learned again in TOOLS' key order: the kept answer for
    # REORDERED's list no longer holds, and the list goes in the forms learned now.
    for tool in TOOLS:
        memory.tools._forms.pop(TENANT, identity(tool))
    memory.tools.learn(
        ToolsSeen(TENANT, tuple((identity(t), orjson.dumps(t)) for t in TOOLS), None)
    )
    out = _call(memory, REORDERED)
    assert orjson.dumps(out.body["tools"]) == orjson.dumps(TOOLS)
