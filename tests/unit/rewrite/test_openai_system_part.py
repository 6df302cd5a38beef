"""OpenAISystem.system_part, the system part's texts and the prompt's tools in one walk of the
leading items, equals the texts found over the leading items counted apart and
`prompt_tools`, over a grid of bodies and random ones; the audit's system texts are those of
the layers' system blocks."""

from __future__ import annotations

import itertools
import random
from typing import Any

from gateway.rewrite.openai_text import (
    INSTRUCTIONS,
    TEXT_PARTS,
    OpenAISystem,
    items,
    layers,
    leading_system,
    prompt_tools,
)

_TOOL = {"type": "function", "name": "f", "parameters": {}}
_ITEMS: list[Any] = [
    {"role": "developer", "content": "rules"},
    {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "a"}]},
    {"role": "developer", "content": [{"type": "input_image"}, {"type": "text", "text": "b"}]},
    {"role": "developer", "content": ""},
    {"type": "additional_tools", "role": "developer", "tools": [_TOOL]},
    {"type": "additional_tools", "tools": [_TOOL], "content": "tools and a text"},
    {"type": "additional_tools", "tools": "not a list"},
    {"role": "user", "content": "hi"},
    {"type": "function_call_output", "output": "x"},
    "not a dict",
]


def _texts_apart(body: dict[str, Any]) -> list[tuple[tuple[int, ...], str]]:
    """The texts as found before system_part: over the items `leading_system` counts."""
    conversation = items(body)
    found: list[tuple[tuple[int, ...], str]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        found.append((INSTRUCTIONS, instructions))
    for m, message in enumerate(conversation[: leading_system(conversation)]):
        content = message.get("content")
        if isinstance(content, str):
            found.append(((m,), content))
        elif isinstance(content, list):
            for p, part in enumerate(content):
                if not isinstance(part, dict) or part.get("type") not in TEXT_PARTS:
                    continue
                if isinstance(part.get("text"), str):
                    found.append(((m, p), part["text"]))
    return found


def _bodies() -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    for n in range(4):
        for conversation in itertools.permutations(_ITEMS, n):
            for extra in ({}, {"instructions": "be"}, {"instructions": ""}, {"tools": [_TOOL]}):
                bodies.append({"model": "m", "input": list(conversation), **extra})
    rng = random.Random(16)
    for _ in range(500):
        conversation = [rng.choice(_ITEMS) for _ in range(rng.randrange(8))]
        key = rng.choice(("input", "messages"))
        bodies.append({key: conversation, "instructions": rng.choice(("", "i", None))})
    return [
        *bodies,
        {"input": "a string"},
        {"messages": [{"role": "system", "content": "s"}], "tools": "bad"},
        {"messages": None},
        {},
    ]


def test_system_part_equals_texts_and_tools_found_apart() -> None:
    part = OpenAISystem()
    for body in _bodies():
        texts, tools = part.system_part(body)
        assert texts == _texts_apart(body), body
        assert tools == prompt_tools(body), body


def test_the_audits_texts_are_the_layers_system_texts() -> None:
    for body in _bodies():
        system = layers(body)["system"]
        # Text blocks alone, in the keys' order they are dumped in: family.prefix keys such a
        # list by its texts, its bytes a function of them.
        assert all(list(block) == ["type", "text"] for block in system), body
        assert all(block["type"] == "text" for block in system), body
