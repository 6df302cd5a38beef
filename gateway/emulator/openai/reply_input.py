"""An OpenAI request as the shared reply machinery (gateway/emulator/reply.py) reads it.

compose_reply speaks Messages: max_tokens, messages with text blocks, tools with input_schema,
tool_choice {type: auto|any|tool|none}, stop_sequences. Both OpenAI formats map onto that, so
the REPLY: / USE_TOOL: directives and the deterministic text work the same on every wire.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.catalog import ModelSpec

_TEXT_PARTS = ("text", "input_text")


def _user_texts(content: Any) -> list[dict[str, str]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [
        {"type": "text", "text": str(part.get("text", ""))}
        for part in content or ()
        if isinstance(part, Mapping) and part.get("type") in _TEXT_PARTS
    ]


def _tool_choice(choice: Any, function_name: str | None) -> dict[str, Any]:
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if function_name is not None:
        return {"type": "tool", "name": function_name}
    return {"type": "auto"}


def chat_reply_input(body: Mapping[str, Any], spec: ModelSpec) -> dict[str, Any]:
    messages: Sequence[Mapping[str, Any]] = body["messages"]
    users = [{"role": "user", "content": _user_texts(m.get("content"))} for m in messages
             if m.get("role") == "user"]  # fmt: skip
    tools = [
        {"name": t["function"]["name"], "input_schema": t["function"].get("parameters") or {}}
        for t in body.get("tools") or ()
        if t.get("type") == "function"
    ]
    choice = body.get("tool_choice")
    named = choice["function"]["name"] if isinstance(choice, Mapping) else None
    stop = body.get("stop")
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or spec.max_tokens
    return {
        "max_tokens": limit,
        "messages": users[-1:],
        "tools": tools,
        "tool_choice": _tool_choice(choice, named),
        "stop_sequences": [stop] if isinstance(stop, str) else stop or [],
    }


def responses_reply_input(body: Mapping[str, Any], spec: ModelSpec) -> dict[str, Any]:
    raw = body.get("input")
    items: Sequence[Any] = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw or []
    users = [
        {"role": "user", "content": _user_texts(item.get("content"))}
        for item in items
        if isinstance(item, Mapping) and item.get("role") == "user"
    ]
    tools = [
        {"name": t["name"], "input_schema": t.get("parameters") or {}}
        for t in body.get("tools") or ()
        if t.get("type") == "function"
    ]
    choice = body.get("tool_choice")
    named = choice.get("name") if isinstance(choice, Mapping) else None
    return {
        "max_tokens": body.get("max_output_tokens") or spec.max_tokens,
        "messages": users[-1:],
        "tools": tools,
        "tool_choice": _tool_choice(choice, named),
    }
