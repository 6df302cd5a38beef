"""The emulated model's reply: tool loops that end, and structured outputs on every wire."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson

from gateway.catalog import ModelCatalog
from gateway.emulator.openai.reply_input import chat_reply_input, responses_reply_input
from gateway.emulator.reply import Reply, compose_reply

SPEC = ModelCatalog.load().resolve("gpt-4.1")
assert SPEC is not None
TOOL_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
CHAT_TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": TOOL_SCHEMA}}]
RESPONSES_TOOLS = [{"type": "function", "name": "lookup", "parameters": TOOL_SCHEMA}]
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temps": {"type": "array", "minItems": 2,
                                                           "items": {"type": "number"}}},
    "required": ["city", "temps"],
    "additionalProperties": False,
}  # fmt: skip
ASK = "REPLY: all done\nUSE_TOOL: lookup"


def reply(body: dict[str, Any]) -> Reply:
    return compose_reply(body, 4.0, b"seed", 10)


def kinds(answer: Reply) -> list[str]:
    return [part.block["type"] for part in answer.blocks]


def text(answer: Reply) -> str:
    return "".join(part.block["text"] for part in answer.blocks if part.block["type"] == "text")


def test_chat_tool_loop_ends_after_the_tool_result() -> None:
    asking = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": ASK}]
    first = reply(chat_reply_input({"messages": asking, "tools": CHAT_TOOLS}, SPEC))
    assert kinds(first) == ["tool_use"]
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    after = [
        *asking,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    second = reply(chat_reply_input({"messages": after, "tools": CHAT_TOOLS}, SPEC))
    assert kinds(second) == ["text"]
    assert text(second) == "all done"  # REPLY: still comes from the user's text


def test_responses_tool_loop_ends_after_the_function_output() -> None:
    asking: list[dict[str, Any]] = [{"role": "user", "content": ASK}]
    first = reply(responses_reply_input({"input": asking, "tools": RESPONSES_TOOLS}, SPEC))
    assert kinds(first) == ["tool_use"]
    after = [
        *asking,
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
    ]
    second = reply(responses_reply_input({"input": after, "tools": RESPONSES_TOOLS}, SPEC))
    assert kinds(second) == ["text"]
    # previous_response_id: only the output is sent, and the model answers it with text.
    chained = {"input": after[-1:], "tools": RESPONSES_TOOLS, "previous_response_id": "resp_1"}
    assert kinds(reply(responses_reply_input(chained, SPEC))) == ["text"]


def test_a_new_user_turn_after_a_tool_result_can_call_again() -> None:
    messages = [
        {"role": "user", "content": "USE_TOOL: lookup"},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "user", "content": "USE_TOOL: lookup"},
    ]
    assert kinds(reply(chat_reply_input({"messages": messages, "tools": CHAT_TOOLS}, SPEC))) == [
        "tool_use"
    ]


def test_anthropic_tool_loop_ends_and_system_turns_do_not_hide_the_user_turn() -> None:
    tools = [{"name": "lookup", "input_schema": TOOL_SCHEMA}]
    asking = [
        {"role": "user", "content": ASK},
        {"role": "system", "content": "A reminder from the harness."},
    ]
    first = reply({"max_tokens": 100, "messages": asking, "tools": tools})
    assert kinds(first) == ["tool_use"]
    after = [
        *asking,
        {"role": "assistant", "content": [first.blocks[0].block]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": first.blocks[0].block["id"], "content": "ok"},
            {"type": "text", "text": "USE_TOOL: lookup"},
        ]},
    ]  # fmt: skip
    assert kinds(reply({"max_tokens": 100, "messages": after, "tools": tools})) == ["text"]


def test_chat_json_schema_reply_is_an_instance() -> None:
    body = {
        "messages": [{"role": "user", "content": "Weather?"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": ANSWER_SCHEMA, "strict": True},
        },
    }
    answer = reply(chat_reply_input(body, SPEC))
    value = orjson.loads(text(answer))
    jsonschema.validate(value, ANSWER_SCHEMA)
    assert len(answer.blocks[0].pieces) > 1  # streamed in pieces like any text


def test_responses_text_format_and_json_object() -> None:
    body = {
        "input": "Weather?",
        "text": {"format": {"type": "json_schema", "name": "a", "schema": ANSWER_SCHEMA}},
    }
    jsonschema.validate(orjson.loads(text(reply(responses_reply_input(body, SPEC)))), ANSWER_SCHEMA)
    plain = {"messages": [{"role": "user", "content": "REPLY: hi"}],
             "response_format": {"type": "json_object"}}  # fmt: skip
    assert orjson.loads(text(reply(chat_reply_input(plain, SPEC)))) == {"reply": "hi"}


def test_anthropic_output_config_format() -> None:
    body = {
        "max_tokens": 500,
        "messages": [{"role": "user", "content": "Weather?"}],
        "output_config": {"format": {"type": "json_schema", "schema": ANSWER_SCHEMA}},
    }
    jsonschema.validate(orjson.loads(text(reply(body))), ANSWER_SCHEMA)


def test_consecutive_user_messages_are_one_turn() -> None:
    """A user message after the user's question (the gateway's moved date line, as its own
    message where the question's content is a string) does not hide the question's
    directives; after a tool result it still does not call again."""
    asking: list[dict[str, Any]] = [
        {"role": "user", "content": ASK},
        {"role": "user", "content": "Today's date is 2026-11-30."},
    ]
    first = reply(responses_reply_input({"input": asking, "tools": RESPONSES_TOOLS}, SPEC))
    assert kinds(first) == ["tool_use"]
    answered = [{"role": "user", "content": "REPLY: exactly this"}, asking[1]]
    assert text(reply(responses_reply_input({"input": answered}, SPEC))) == "exactly this"
    after = [
        asking[0],
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        asking[1],
    ]
    assert kinds(
        reply(responses_reply_input({"input": after, "tools": RESPONSES_TOOLS}, SPEC))
    ) == ["text"]
