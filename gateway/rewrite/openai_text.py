"""Where model-visible text lives in an OpenAI request: Chat Completions and Responses alike.

The OpenAI counterpart of text.py. A chat body holds `messages`; a Responses body holds
`instructions` and `input` (a string, or items). The prompt's prefix, in the order the cache
hashes it: tools, then the instructions, then the messages or items. Its *system part* is
the instructions and the leading system/developer messages: what a prompt family shares.

Tools may also sit in the input: an `additional_tools` item (role developer, a `tools` list,
no content) places them at a point in the conversation — Codex's "responses-lite" shape for
GPT-6 models puts all its tools in one, first. Such an item is not a message: no rule edits
it, a leading one belongs to the system part (as `tools` would) and its tools to the
prompt's tools.
"""

from __future__ import annotations

from typing import Any

from gateway.rewrite.text import TextEdit
from gateway.rewrite.text import edit_content as edit_blocks

SYSTEM_ROLES = frozenset({"system", "developer"})
TEXT_PARTS = frozenset({"text", "input_text", "output_text"})
TOOLS_ITEM = "additional_tools"


def is_tools_item(item: Any) -> bool:
    """An input item that places tools in the conversation (no text to edit)."""
    return isinstance(item, dict) and item.get("type") == TOOLS_ITEM


def items_key(body: dict[str, Any]) -> str:
    """The field holding the conversation: `messages` (chat) or `input` (Responses)."""
    return "input" if "input" in body and "messages" not in body else "messages"


def items(body: dict[str, Any]) -> list[Any]:
    """The conversation as a list (a Responses string input is one user message)."""
    value = body.get(items_key(body))
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return value if isinstance(value, list) else []


def leading_system(messages: list[Any]) -> int:
    """How many items at the start are system or developer messages, or tools items."""
    count = 0
    for message in messages:
        if not (is_tools_item(message) or _is_system_message(message)):
            break
        count += 1
    return count


def _is_system_message(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and item.get("type", "message") == "message"
        and item.get("role") in SYSTEM_ROLES
    )


def prompt_tools(body: dict[str, Any]) -> list[Any]:
    """The tools of the prompt's prefix: `tools`, then those of leading tools items."""
    tools = body.get("tools")
    out = list(tools) if isinstance(tools, list) else []
    conversation = items(body)
    for item in conversation[: leading_system(conversation)]:
        if is_tools_item(item) and isinstance(item.get("tools"), list):
            out += item["tools"]
    return out


def content_text(content: Any) -> str | None:
    """A content's text when it is only text (a string, or text parts), else None."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        return None
    texts = [
        str(p["text"])
        for p in content
        if isinstance(p, dict) and p.get("type") in TEXT_PARTS and isinstance(p.get("text"), str)
    ]
    return "\n".join(texts) if len(texts) == len(content) else None


def edit_content(content: Any, edit: TextEdit) -> Any:
    """The content with `edit` applied to its text parts; the same object when unchanged."""
    return edit_blocks(content, edit, _edit_part)


def _edit_part(part: Any, edit: TextEdit) -> Any:
    if not isinstance(part, dict) or part.get("type") not in TEXT_PARTS:
        return part
    text = part.get("text")
    if not isinstance(text, str) or (new := edit(text)) == text:
        return part
    return {**part, "text": new}


def edit_items(value: Any, edit: TextEdit) -> Any:
    """Messages or input items with their text edited (function outputs included)."""
    if isinstance(value, str):
        return edit_content(value, edit)
    if not isinstance(value, list):
        return value
    out = []
    for item in value:
        if isinstance(item, dict):
            if "content" in item:
                new = edit_content(item["content"], edit)
                if new is not item["content"]:
                    item = {**item, "content": new}
            elif item.get("type") == "function_call_output" and isinstance(item.get("output"), str):
                new = edit_content(item["output"], edit)
                if new is not item["output"]:
                    item = {**item, "output": new}
        out.append(item)
    return out if any(a is not b for a, b in zip(out, value, strict=True)) else value


def edit_tools(tools: Any, edit: TextEdit) -> Any:
    """Function descriptions: nested under `function` in chat, flat in Responses."""
    if not isinstance(tools, list):
        return tools
    out = []
    for tool in tools:
        if isinstance(tool, dict):
            nested = tool.get("function")
            if isinstance(nested, dict):
                new = _described(nested, edit)
                tool = tool if new is nested else {**tool, "function": new}
            else:
                tool = _described(tool, edit)
        out.append(tool)
    return out if any(a is not b for a, b in zip(out, tools, strict=True)) else tools


def _described(spec: dict[str, Any], edit: TextEdit) -> dict[str, Any]:
    description = spec.get("description")
    if not isinstance(description, str) or (new := edit(description)) == description:
        return spec
    return {**spec, "description": new}


def layers(body: dict[str, Any]) -> dict[str, Any]:
    """The body in the shape fingerprint.py reads (tools, system blocks, messages): the
    instructions and leading system messages as system blocks, the rest as messages."""
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
        "tools": prompt_tools(body),
        "system": system,
        "messages": conversation[lead:],
    }
