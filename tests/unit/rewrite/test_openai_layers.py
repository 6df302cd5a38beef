"""openai_text.layers in one walk, and prompt_tools, equal the layers made from the tools
items and the leading system messages apart, over a grid of bodies."""

from __future__ import annotations

import itertools
from typing import Any

from gateway.rewrite.openai_text import (
    is_tools_item,
    items,
    layers,
    leading_system,
    prompt_tools,
)


def _prompt_tools(body: dict[str, Any]) -> list[Any]:
    tools = body.get("tools")
    out = list(tools) if isinstance(tools, list) else []
    for item in items(body):
        if is_tools_item(item):
            if isinstance(item.get("tools"), list):
                out += item["tools"]
        elif not (
            isinstance(item, dict)
            and item.get("type", "message") == "message"
            and item.get("role") in ("system", "developer")
        ):
            break
    return out


def _reference(body: dict[str, Any]) -> dict[str, Any]:
    conversation = items(body)
    lead = leading_system(conversation)
    system = [
        {"type": "text", "text": text}
        for text in (
            body.get("instructions"),
            *(m.get("content") for m in conversation[:lead] if not is_tools_item(m)),
        )
        if text
    ]
    return {
        "model": body.get("model"),
        "tools": _prompt_tools(body),
        "system": system,
        "messages": conversation[lead:],
    }


_TOOL = {"type": "function", "name": "f", "parameters": {}}
_ITEMS: list[Any] = [
    {"role": "developer", "content": "rules"},
    {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "a"}]},
    {"role": "developer", "content": ""},
    {"type": "additional_tools", "role": "developer", "tools": [_TOOL]},
    {"type": "additional_tools", "tools": "not a list"},
    {"role": "user", "content": "hi"},
    {"type": "function_call_output", "output": "x"},
    "not a dict",
]


def _bodies() -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    for n in range(4):
        for conversation in itertools.permutations(_ITEMS, n):
            for extra in ({}, {"instructions": "be"}, {"instructions": ""}, {"tools": [_TOOL]}):
                bodies.append({"model": "m", "input": list(conversation), **extra})
    bodies += [
        {"input": "a string"},
        {"messages": [{"role": "system", "content": "s"}], "tools": "bad"},
        {"messages": None},
        {},
    ]
    return bodies


def test_layers_equal_the_parts_made_apart() -> None:
    for body in _bodies():
        got, want = layers(body), _reference(body)
        assert got == want, body
        assert prompt_tools(body) == want["tools"]
        assert list(got) == list(want)
        assert [list(b) for b in got["system"]] == [list(b) for b in want["system"]]
        if not isinstance(body.get("input"), str):  # a string is made a message each time
            pairs = zip(got["messages"], want["messages"], strict=True)
            assert all(a is b for a, b in pairs)
