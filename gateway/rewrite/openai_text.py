"""Where model-visible text lives in an OpenAI request: Chat Completions and Responses alike.

The OpenAI counterpart of text.py. A chat body holds `messages`; a Responses body holds
`instructions` and `input` (a string, or items). The prompt's prefix, in the order the cache
hashes it: tools, then the instructions, then the messages or items. Its *system part* is
the instructions and the leading system/developer messages: what a prompt family shares.

Tools may also sit in the input: an `additional_tools` item (role developer, a `tools` list,
no content) places them at a point in the conversation — Codex's "responses-lite" shape for
GPT-6 models puts all its tools in one, first. Such an item is not a message: no rule edits
it, a leading one belongs to the system part (as `tools` would), its tools to the prompt's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.rewrite.text import TextEdit, TextField
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


def leading_system(messages: list[Any], tools: list[Any] | None = None) -> int:
    """How many items at the start are system or developer messages, or tools items; the
    tools of those tools items appended to `tools`, where given (one walk, one `type`
    lookup an item)."""
    count = 0
    for message in messages:
        if not isinstance(message, dict):
            break
        kind = message.get("type", "message")
        if kind == TOOLS_ITEM:
            if tools is not None and isinstance(message.get("tools"), list):
                tools += message["tools"]
        elif kind != "message" or message.get("role") not in SYSTEM_ROLES:
            break
        count += 1
    return count


def system_lead(body: dict[str, Any]) -> tuple[list[Any], int, list[Any]]:
    """The conversation (`items`), how many of its items lead as the system part
    (`leading_system`), and the tools of the prompt's prefix: `tools`, then those of the
    leading tools items; in one walk."""
    conversation = items(body)
    tools = body.get("tools")
    prompt = list(tools) if isinstance(tools, list) else []
    return conversation, leading_system(conversation, prompt), prompt


def prompt_tools(body: dict[str, Any]) -> list[Any]:
    """The tools of the prompt's prefix (`system_lead`'s)."""
    return system_lead(body)[2]


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
    """Messages or input items with their text edited (function outputs included); the same
    list when unchanged (copied only from the first item that changes)."""
    if isinstance(value, str):
        return edit_content(value, edit)
    if not isinstance(value, list):
        return value
    for i, item in enumerate(value):
        if (new := edit_item(item, edit)) is not item:
            return [*value[:i], new, *[edit_item(other, edit) for other in value[i + 1 :]]]
    return value


def edit_item(item: Any, edit: TextEdit) -> Any:
    """One message or input item with its text edited; the same object when unchanged."""
    if not isinstance(item, dict):
        return item
    if "content" in item:
        new = edit_content(item["content"], edit)
        return item if new is item["content"] else {**item, "content": new}
    if item.get("type") == "function_call_output" and isinstance(item.get("output"), str):
        new = edit_content(item["output"], edit)
        return item if new is item["output"] else {**item, "output": new}
    return item


def edit_tools(tools: Any, edit: TextEdit) -> Any:
    """Function descriptions: nested under `function` in chat, flat in Responses."""
    if not isinstance(tools, list):
        return tools
    for i, tool in enumerate(tools):
        if (new := _edit_tool(tool, edit)) is not tool:
            return [*tools[:i], new, *[_edit_tool(other, edit) for other in tools[i + 1 :]]]
    return tools


def _edit_tool(tool: Any, edit: TextEdit) -> Any:
    if not isinstance(tool, dict):
        return tool
    nested = tool.get("function")
    if isinstance(nested, dict):
        new = _described(nested, edit)
        return tool if new is nested else {**tool, "function": new}
    return _described(tool, edit)


def _described(spec: dict[str, Any], edit: TextEdit) -> dict[str, Any]:
    description = spec.get("description")
    if not isinstance(description, str) or (new := edit(description)) == description:
        return spec
    return {**spec, "description": new}


# The fields whose text the rules edit (text.py's FIELDS for Messages), in the prompt's order.
_INSTRUCTIONS = TextField("instructions", "openai.instructions", edit_content)
_TOOLS = TextField("tools", "openai.tools", edit_tools)
_FIELDS = {
    key: (_INSTRUCTIONS, _TOOLS, TextField(key, f"openai.{key}", edit_items, edit_item))
    for key in ("messages", "input")
}


def fields(body: dict[str, Any]) -> tuple[TextField, ...]:
    """The fields of this body (chat or Responses) whose text the rules edit."""
    return _FIELDS[items_key(body)]


def layers(body: dict[str, Any]) -> dict[str, Any]:
    """The body in the shape fingerprint.py reads (tools, system blocks, messages): the
    instructions and leading system messages as system blocks, the rest as messages. One
    walk of the leading items (`system_lead`) finds them and the prompt's tools together."""
    conversation, lead, prompt = system_lead(body)
    instructions = body.get("instructions")
    system = [{"type": "text", "text": instructions}] if instructions else []
    system += [
        {"type": "text", "text": content}
        for item in conversation[:lead]
        if item.get("type", "message") != TOOLS_ITEM and (content := item.get("content"))
    ]
    return {
        "model": body.get("model"),
        "tools": prompt,
        "system": system,
        "messages": conversation[lead:],
    }


# The system part as the volatile rule reads it (volatile.py's SystemPart): the instructions
# (at place ()), then each leading system message's string content (at (m,)) or text part
# (at (m, p)).
Place = tuple[int, ...]
INSTRUCTIONS: Place = ()


class OpenAISystem:
    """Dates go to the end of the newest user message; learned lines to the end of their text,
    which pays where the provider caches by token prefix — not on a Responses call that
    continues a stored conversation (`previous_response_id`)."""

    def system_part(self, body: dict[str, Any]) -> tuple[list[tuple[Place, str]], list[Any]]:
        """The texts of the leading items (tools items too) and the prompt's tools, found in
        one walk (`system_lead`)."""
        found: list[tuple[Place, str]] = []
        instructions = body.get("instructions")
        if isinstance(instructions, str) and instructions:
            found.append((INSTRUCTIONS, instructions))
        conversation, lead, prompt = system_lead(body)
        for m in range(lead):
            content = conversation[m].get("content")
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
        return found, prompt

    def replaced(self, body: dict[str, Any], texts: dict[Place, str]) -> dict[str, Any]:
        new_body = dict(body)
        conversation = list(items(body))
        for place, new in texts.items():
            if place == INSTRUCTIONS:
                new_body["instructions"] = new
                continue
            message = conversation[place[0]]
            if len(place) == 1:
                conversation[place[0]] = {**message, "content": new}
            else:
                parts = list(message["content"])
                parts[place[1]] = {**parts[place[1]], "text": new}
                conversation[place[0]] = {**message, "content": parts}
        if isinstance(body.get(items_key(body)), list):
            new_body[items_key(body)] = conversation
        return new_body

    def layers(self, body: dict[str, Any]) -> int:
        """The system part's layers (as `layers` shapes them): instructions, each message."""
        return bool(body.get("instructions")) + leading_system(items(body))

    def layer_of(self, body: dict[str, Any], place: Place) -> int:
        return 0 if place == INSTRUCTIONS else bool(body.get("instructions")) + place[0]

    def turn_takes_dates(self, body: dict[str, Any]) -> bool:
        return True  # a user message of their own where the newest is not the user's

    def ends_pay(self, body: dict[str, Any]) -> bool:
        return "previous_response_id" not in body

    def with_dates(
        self, body: dict[str, Any], dates: str
    ) -> tuple[dict[str, Any], tuple[int, int]]:
        """Dates as a last text part of the newest user message (in chat a string content is
        one text part: it gains the dates' part). Where that would change the message before
        them — a Responses string content would become input_text parts, other bytes next
        turn — or the newest message is not the user's (tool results), they are a user
        message of their own after it."""
        conversation = items(body)
        chat = items_key(body) == "messages"
        newest = len(conversation) - 1
        last = conversation[newest] if conversation else None
        is_user = isinstance(last, dict) and last.get("role") == "user"
        content = last.get("content") if is_user and isinstance(last, dict) else None
        kind = "text" if chat else "input_text"
        if isinstance(content, str) and chat:
            content = [{"type": kind, "text": content}]
        if isinstance(content, list) and content and isinstance(last, dict):
            message = {**last, "content": [*content, {"type": kind, "text": dates}]}
            out, at = [*conversation[:newest], message], (newest, len(content))
        else:
            out, at = [*conversation, {"role": "user", "content": dates}], (newest + 1, 0)
        return {**body, items_key(body): out}, at

    def dated_turn(self, body: dict[str, Any], is_date: Callable[[str], bool]) -> None:
        return None  # dates a client put at the end itself are not looked for on this wire
