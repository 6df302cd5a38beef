"""Where model-visible text lives in an Anthropic request, and a way to rewrite all of it.

Stages that change text (whitespace, volatile content) share this walk, so they agree on
which strings are the prompt: system, tool descriptions, and message text blocks
(tool results included).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

TextEdit = Callable[[str], str]
# One part of a body a rule edits, with its edit: a field's value, or one item of a list.
PartEdit = Callable[[Any, TextEdit], Any]

# What an object of a parsed body holds beside its own text (a small dict, a list, a str's
# header), about.
NODE_BYTES = 64
# A block of dates a move leaves at a turn's end is a few lines; a longer text is not one.
DATES_BLOCK_LINES = 64


@dataclass(frozen=True, slots=True)
class TextField:
    """A field of a body that holds model-visible text, as a rule walks it: `edit` the whole
    value; `item` one item of it where it is a list (the unit a later turn resends: a
    message), None where the value is taken whole. `kind`: the memo's name for what a rule
    derived from it (rewrite/memo.py's `get_same`), one per wire and field."""

    name: str
    kind: str
    edit: PartEdit
    item: PartEdit | None = None


def edit_system(system: Any, edit: TextEdit) -> Any:
    """The system prompt with `edit` applied; the same object when unchanged."""
    if isinstance(system, str):
        new = edit(system)
        return system if new == system else new
    return edit_content(system, edit)


def edit_tools(tools: Any, edit: TextEdit) -> Any:
    """The tools with `edit` applied to their descriptions; the same list when unchanged."""
    if not isinstance(tools, list):
        return tools
    for i, tool in enumerate(tools):
        if (new := _edit_tool(tool, edit)) is not tool:
            return [*tools[:i], new, *[_edit_tool(other, edit) for other in tools[i + 1 :]]]
    return tools


def _edit_tool(tool: Any, edit: TextEdit) -> Any:
    description = tool.get("description") if isinstance(tool, dict) else None
    if isinstance(description, str) and (new := edit(description)) != description:
        return {**tool, "description": new}
    return tool


def edit_messages(messages: Any, edit: TextEdit) -> Any:
    """The messages with `edit` applied to their text; the same list when unchanged."""
    if not isinstance(messages, list):
        return messages
    for i, message in enumerate(messages):
        if (new := edit_message(message, edit)) is not message:
            rest = [edit_message(other, edit) for other in messages[i + 1 :]]
            return [*messages[:i], new, *rest]
    return messages


def edit_message(message: Any, edit: TextEdit) -> Any:
    """One message with `edit` applied to its text; the same object when unchanged."""
    if not isinstance(message, dict):
        return message
    content = message.get("content")
    new = edit_content(content, edit)
    return message if new is content else {**message, "content": new}


def held(part: Any) -> int:
    """About the bytes a part of a body holds (a message or item, its blocks, a system prompt,
    a tool), for the memo's bounds: its texts by their length, a content's blocks likewise,
    anything else by its JSON bytes. Shallow, where a walk of every node costs ~0.3 us a node
    and JSON bytes of a fresh parse's non-ASCII texts ~1 us a KB (their UTF-8 made anew)."""
    kind = type(part)
    if kind is str:
        return NODE_BYTES + (len(part) if part.isascii() else 4 * len(part))
    if kind is list:
        return NODE_BYTES + sum(map(held, part))
    if kind is not dict:
        return NODE_BYTES
    total = NODE_BYTES * (1 + len(part))
    for key, value in part.items():
        kind = type(value)
        if kind is str:
            total += len(value) if value.isascii() else 4 * len(value)
        elif key == "content":
            total += held(value)
        elif kind is dict or kind is list:
            try:
                total += len(orjson.dumps(value))
            except orjson.JSONEncodeError:  # nested past orjson's 254 levels (parsed to 1024)
                total += _walked(value)
    return total


def _walked(value: Any) -> int:
    """`held`'s bytes of a value too deeply nested to serialize: every node and text, by a
    walk with a stack of its own (no recursion)."""
    total, stack = 0, [value]
    while stack:
        node = stack.pop()
        total += NODE_BYTES
        if type(node) is str:
            total += len(node) if node.isascii() else 4 * len(node)
        elif type(node) is dict:
            stack.extend(node.keys())
            stack.extend(node.values())
        elif type(node) is list:
            stack.extend(node)
    return total


# The fields of a Messages body whose text the rules edit, in the prompt's order as findings
# name them (OpenAI's: openai_text.fields).
FIELDS = (
    TextField("system", "messages.system", edit_system),
    TextField("tools", "messages.tools", edit_tools),
    TextField("messages", "messages.messages", edit_messages, edit_message),
)


def edit_content(content: Any, edit: TextEdit, part: PartEdit | None = None) -> Any:
    """The content with `edit` applied to its text; the same object when nothing changed.
    `part` edits one block of a list (Anthropic's blocks by default; OpenAI's parts differ).
    Lists are copied only from the first block that changes (most history changes none)."""
    if isinstance(content, str):
        new = edit(content)
        return content if new == content else new
    if not isinstance(content, list):
        return content
    each = part or _edit_block
    for i, block in enumerate(content):
        new = each(block, edit)
        if new is not block:
            return [*content[:i], new, *[each(other, edit) for other in content[i + 1 :]]]
    return content


def _edit_block(block: Any, edit: TextEdit) -> Any:
    if not isinstance(block, dict):
        return block
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        if isinstance(text, str) and (new := edit(text)) != text:
            return {**block, "text": new}
        return block
    if kind == "tool_result":
        content = block.get("content")
        new_content = edit_content(content, edit)
        return block if new_content is content else {**block, "content": new_content}
    return block


# The system prompt as the volatile rule reads it (volatile.py's SystemPart): its text
# blocks, a string being one, each at its place (its index among the system's blocks).
Place = tuple[int, ...]


class AnthropicSystem:
    """`system` (a string or blocks); dates go to the end of the newest user turn."""

    def system_part(self, body: dict[str, Any]) -> tuple[list[tuple[Place, str]], Any]:
        """The system's texts, and the prompt's tools."""
        tools = body.get("tools") or []
        system = body.get("system")
        if isinstance(system, str):
            return [((0,), system)], tools
        if not isinstance(system, list):
            return [], tools
        return [
            ((i,), block["text"])
            for i, block in enumerate(system)
            if isinstance(block, dict) and isinstance(block.get("text"), str)
        ], tools

    def replaced(self, body: dict[str, Any], texts: dict[Place, str]) -> dict[str, Any]:
        system = body["system"]
        if isinstance(system, str):  # a string stays a string
            return {**body, "system": texts.get((0,), system)}
        blocks = list(system)
        for (i,), text in texts.items():
            blocks[i] = {**blocks[i], "text": text}
        return {**body, "system": blocks}

    def layers(self, body: dict[str, Any]) -> int:
        system = body.get("system")
        return len(system) if isinstance(system, list) else 1

    def layer_of(self, body: dict[str, Any], place: Place) -> int:
        return place[0]

    def turn_takes_dates(self, body: dict[str, Any]) -> bool:
        return _newest(body).get("role") == "user"

    def ends_pay(self, body: dict[str, Any]) -> bool:
        return False  # a cache entry ends at a block's end: a move within one saves nothing

    def with_dates(
        self, body: dict[str, Any], dates: str
    ) -> tuple[dict[str, Any], tuple[int, int]]:
        # At the end: a user turn that answers tool calls must start with its tool results.
        messages = body["messages"]
        newest = len(messages) - 1
        content = messages[newest].get("content")
        blocks = (
            [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
        )
        message = {**messages[newest], "content": [*blocks, {"type": "text", "text": dates}]}
        return {**body, "messages": [*messages[:newest], message]}, (newest, len(blocks))

    def dated_turn(
        self, body: dict[str, Any], is_date: Callable[[str], bool]
    ) -> tuple[int, int] | None:
        """A newest user turn that ends in a block of dates alone (as a move leaves it): where
        it is. A string content is its one block, as the breakpoint plan counts it."""
        newest = _newest(body)
        content = newest.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if newest.get("role") != "user" or not isinstance(content, list) or not content:
            return None
        last = content[-1]
        text = last.get("text") if isinstance(last, dict) and last.get("type") == "text" else None
        if (
            isinstance(text, str)
            and text
            and text.count("\n") < DATES_BLOCK_LINES  # judged line by line: bounded
            and all(map(is_date, text.split("\n")))
        ):
            return (len(body["messages"]) - 1, len(content) - 1)
        return None


def _newest(body: dict[str, Any]) -> dict[str, Any]:
    messages = body.get("messages") or []
    return messages[-1] if messages and isinstance(messages[-1], dict) else {}
