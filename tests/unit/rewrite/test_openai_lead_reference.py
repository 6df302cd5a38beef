"""rewrite/openai_text.py's leading items found by one walk (`system_lead`) against the three
walks it replaced: `layers`, `OpenAISystem.system_part` (the former `texts` and `tools`),
`prompt_tools` and `leading_system` give what the former ones gave, over random Responses
and chat bodies (tools items with and without content or tools, non-dict items, content
lists, string input, instructions not a string), and leave the body as it was."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from gateway.rewrite.openai_text import (
    INSTRUCTIONS,
    SYSTEM_ROLES,
    TEXT_PARTS,
    TOOLS_ITEM,
    OpenAISystem,
    items,
    layers,
    leading_system,
    prompt_tools,
)


def _lead(messages: list[Any]) -> int:
    count = 0
    for message in messages:
        if not isinstance(message, dict):
            break
        kind = message.get("type", "message")
        if kind != TOOLS_ITEM and (kind != "message" or message.get("role") not in SYSTEM_ROLES):
            break
        count += 1
    return count


def _tools(body: dict[str, Any]) -> list[Any]:
    tools = body.get("tools")
    out = list(tools) if isinstance(tools, list) else []
    for item in items(body):
        if not isinstance(item, dict):
            break
        kind = item.get("type", "message")
        if kind == TOOLS_ITEM:
            if isinstance(item.get("tools"), list):
                out += item["tools"]
        elif kind != "message" or item.get("role") not in SYSTEM_ROLES:
            break
    return out


def _layers(body: dict[str, Any]) -> dict[str, Any]:
    conversation = items(body)
    lead = _lead(conversation)
    instructions = body.get("instructions")
    system = [{"type": "text", "text": instructions}] if instructions else []
    tools = body.get("tools")
    prompt = list(tools) if isinstance(tools, list) else []
    for item in conversation[:lead]:
        if item.get("type") == TOOLS_ITEM:
            if isinstance(item.get("tools"), list):
                prompt += item["tools"]
        elif content := item.get("content"):
            system.append({"type": "text", "text": content})
    return {"model": body.get("model"), "tools": prompt, "system": system,
            "messages": conversation[lead:]}  # fmt: skip


def _texts(body: dict[str, Any]) -> list[tuple[tuple[int, ...], str]]:
    conversation = items(body)
    found: list[tuple[tuple[int, ...], str]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        found.append((INSTRUCTIONS, instructions))
    for m, message in enumerate(conversation[: _lead(conversation)]):
        content = message.get("content")
        if isinstance(content, str):
            found.append(((m,), content))
        elif isinstance(content, list):
            found += [
                ((m, p), part["text"])
                for p, part in enumerate(content)
                if isinstance(part, dict)
                and part.get("type") in TEXT_PARTS
                and isinstance(part.get("text"), str)
            ]
    return found


_CONTENT: list[Any] = [
    "", "hi", None, 3, [], ["x"], {"a": 1},
    [{"type": "input_text", "text": "a"}, {"type": "text", "text": 5}, "s",
     {"type": "output_text", "text": "b"}, {"type": "input_image"}],
]  # fmt: skip
_TOOL_LISTS: list[Any] = [[{"name": "a"}], [], "x", None, [{"name": "b"}, {"name": "c"}]]


def _item(rng: random.Random) -> Any:
    if rng.random() < 0.1:
        return rng.choice(["text", 3, None, ["list"]])
    item: dict[str, Any] = {}
    if rng.random() < 0.7:
        item["type"] = rng.choice(["message", TOOLS_ITEM, "function_call", TOOLS_ITEM])
    if rng.random() < 0.9:
        item["role"] = rng.choice(["system", "developer", "developer", "user", None])
    if rng.random() < 0.6:
        item["content"] = rng.choice(_CONTENT)
    if rng.random() < 0.5:
        item["tools"] = rng.choice(_TOOL_LISTS)
    return item


@pytest.mark.parametrize("seed", range(4))
def test_one_walk_gives_what_the_three_gave(seed: int) -> None:
    rng = random.Random(seed)
    system = OpenAISystem()
    for _ in range(2000):
        body: dict[str, Any] = {"model": "m"}
        key = rng.choice(["input", "messages", "input"])
        if rng.random() < 0.9:
            listed = [_item(rng) for _ in range(rng.randrange(6))]
            body[key] = rng.choice([listed, listed, listed, "string input", None, 5])
        if rng.random() < 0.6:
            body["instructions"] = rng.choice(["rules", "", None, 3, ["x"]])
        if rng.random() < 0.6:
            body["tools"] = rng.choice([[{"name": "t"}], [], "x", None])
        before = copy.deepcopy(body)
        conversation = items(body)
        assert leading_system(conversation) == _lead(conversation)
        assert prompt_tools(body) == _tools(body)
        assert layers(body) == _layers(body)
        assert system.system_part(body) == (_texts(body), _tools(body))
        assert body == before
