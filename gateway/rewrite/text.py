"""Where model-visible text lives in an Anthropic request, and a way to rewrite all of it.

Stages that change text (whitespace, volatile content) share this walk, so they agree on
which strings are the prompt: system, tool descriptions, and message text blocks
(tool results included).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TextEdit = Callable[[str], str]


def edit_system(system: Any, edit: TextEdit) -> Any:
    if isinstance(system, str):
        return edit(system)
    if isinstance(system, list):
        return [_edit_block(block, edit) for block in system]
    return system


def edit_tools(tools: Any, edit: TextEdit) -> Any:
    if not isinstance(tools, list):
        return tools
    out = []
    for tool in tools:
        description = tool.get("description") if isinstance(tool, dict) else None
        if isinstance(description, str) and (new := edit(description)) != description:
            tool = {**tool, "description": new}
        out.append(tool)
    return out


def edit_messages(messages: Any, edit: TextEdit) -> Any:
    if not isinstance(messages, list):
        return messages
    out = []
    for message in messages:
        if isinstance(message, dict):
            content = message.get("content")
            new = edit_content(content, edit)
            if new is not content:
                message = {**message, "content": new}
        out.append(message)
    return out


PartEdit = Callable[[Any, TextEdit], Any]


def edit_content(content: Any, edit: TextEdit, part: PartEdit | None = None) -> Any:
    """The content with `edit` applied to its text; the same object when nothing changed.
    `part` edits one block of a list (Anthropic's blocks by default; OpenAI's parts differ)."""
    if isinstance(content, str):
        new = edit(content)
        return content if new == content else new
    if not isinstance(content, list):
        return content
    each = part or _edit_block
    blocks = [each(block, edit) for block in content]
    return content if all(a is b for a, b in zip(blocks, content, strict=True)) else blocks


def _edit_block(block: Any, edit: TextEdit) -> Any:
    if not isinstance(block, dict):
        return block
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        new = edit(block["text"])
        return block if new == block["text"] else {**block, "text": new}
    if kind == "tool_result":
        content = block.get("content")
        new_content = edit_content(content, edit)
        return block if new_content is content else {**block, "content": new_content}
    return block
