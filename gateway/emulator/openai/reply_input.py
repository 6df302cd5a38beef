"""An OpenAI request as the shared reply machinery (gateway/emulator/reply.py) reads it.

compose_reply speaks Messages: max_tokens, messages with text blocks (a tool result is a user
turn holding a tool_result), tools with input_schema, tool_choice {type: auto|any|tool|none},
stop_sequences, output_config.format (structured outputs). Both OpenAI formats map onto that,
so the REPLY: / USE_TOOL: directives, the deterministic text and the schema instances work
the same on every wire.
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


_TOOL_RESULT = [{"type": "tool_result"}]


def _turn(role: Any, content: Any) -> dict[str, Any] | None:
    """A message as compose_reply reads it: user text, a tool result (a user turn holding
    only a tool_result), or an assistant turn; instructions (system, developer) are left out."""
    if role == "user":
        return {"role": "user", "content": _user_texts(content)}
    if role in ("tool", "function"):
        return {"role": "user", "content": _TOOL_RESULT}
    if role == "assistant":
        return {"role": "assistant", "content": []}
    return None


def _item_turn(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, Mapping):
        return None
    kind = item.get("type", "message")
    if kind == "message":
        return _turn(item.get("role"), item.get("content"))
    if str(kind).endswith("_call_output"):
        return _turn("tool", None)
    if str(kind).endswith("_call") or kind == "reasoning":
        return _turn("assistant", None)
    return None


def _output_config(output_format: Any) -> dict[str, Any]:
    """Structured outputs in Messages' shape: output_config.format {type, schema}."""
    if not isinstance(output_format, Mapping):
        return {}
    kind = output_format.get("type")
    if kind == "json_object":
        return {"format": {"type": "json_object"}}
    if kind != "json_schema":
        return {}
    # Chat nests the schema under json_schema; Responses' text.format holds it directly.
    nested = output_format.get("json_schema")
    holder = nested if isinstance(nested, Mapping) else output_format
    return {"format": {"type": "json_schema", "schema": holder.get("schema") or {}}}


def chat_reply_input(body: Mapping[str, Any], spec: ModelSpec) -> dict[str, Any]:
    messages: Sequence[Mapping[str, Any]] = body["messages"]
    turns = [t for m in messages if (t := _turn(m.get("role"), m.get("content"))) is not None]
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
        "messages": turns,
        "tools": tools,
        "tool_choice": _tool_choice(choice, named),
        "stop_sequences": [stop] if isinstance(stop, str) else stop or [],
        "output_config": _output_config(body.get("response_format")),
    }


# A custom (freeform) tool's call carries one string: the reply machinery fills it as the one
# string property of this schema, and responses.py writes it as the call's `input`.
CUSTOM_INPUT_SCHEMA = {
    "type": "object",
    "properties": {"input": {"type": "string"}},
    "required": ["input"],
}


def responses_tools(body: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The function and custom tools a Responses request offers, by the name a call uses:
    the top-level `tools`, then those of every `additional_tools` input item (the
    "responses-lite" shape Codex sends GPT-6 models: tools placed at a point in the input,
    not in `tools`), with `namespace` tools opened up — their children are called by name
    and the call names the namespace. The first tool of a name wins."""
    groups: list[Any] = [body.get("tools")]
    raw = body.get("input")
    if isinstance(raw, list):
        groups += [
            item.get("tools")
            for item in raw
            if isinstance(item, Mapping) and item.get("type") == "additional_tools"
        ]
    found: dict[str, dict[str, Any]] = {}

    def add(tool: Any, namespace: str | None) -> None:
        if not isinstance(tool, Mapping) or not isinstance(tool.get("name"), str):
            return
        kind = tool.get("type")
        if kind == "namespace" and namespace is None:
            for child in tool.get("tools") or ():
                add(child, tool["name"])
        elif kind in ("function", "custom") and tool["name"] not in found:
            found[tool["name"]] = {**tool, "namespace": namespace}

    for group in groups:
        for tool in group if isinstance(group, list) else ():
            add(tool, None)
    return found


def responses_reply_input(body: Mapping[str, Any], spec: ModelSpec) -> dict[str, Any]:
    raw = body.get("input")
    items: Sequence[Any] = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw or []
    turns = [t for item in items if (t := _item_turn(item)) is not None]
    tools = [
        {
            "name": name,
            "input_schema": (
                CUSTOM_INPUT_SCHEMA if t["type"] == "custom" else t.get("parameters") or {}
            ),
        }
        for name, t in responses_tools(body).items()
    ]
    choice = body.get("tool_choice")
    named = choice.get("name") if isinstance(choice, Mapping) else None
    text = body.get("text")
    text = text if isinstance(text, Mapping) else {}
    return {
        "max_tokens": body.get("max_output_tokens") or spec.max_tokens,
        "messages": turns,
        "tools": tools,
        "tool_choice": _tool_choice(choice, named),
        "output_config": _output_config(text.get("format")),
    }
