"""Messages validation: mid-conversation system turns, where the API takes them."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.emulator.anthropic.validation import (
    MID_CONVERSATION_SYSTEM_BETA,
    check_request,
    request_betas,
)
from gateway.emulator.errors import EmulatedError

VERSION = "2023-06-01"
WITH_SYSTEM = [
    {"role": "user", "content": "say hi"},
    {"role": "system", "content": [{"type": "text", "text": "Today is Monday."}]},
]


def body(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"model": "claude-opus-4-8", "max_tokens": 100, "messages": messages}


def test_system_turn_needs_the_model_or_the_beta() -> None:
    with pytest.raises(EmulatedError, match=r"messages\.1\.role: Input should be 'user'"):
        check_request(body(WITH_SYSTEM), VERSION, counting=False)
    check_request(body(WITH_SYSTEM), VERSION, counting=False, system_messages=lambda m: True)


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"role": "system", "content": "first"}, {"role": "user", "content": "hi"}],
         r"messages\.0: a system message must follow a user message"),
        ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yes"},
          {"role": "system", "content": "late"}],
         r"messages\.2: a system message must follow a user message"),
        ([{"role": "user", "content": "hi"},
          {"role": "system", "content": [{"type": "image", "source": {}}]}],
         r"messages\.1\.content\.0\.type: a system message holds only text"),
        ([{"role": "user", "content": "hi"}, {"role": "system", "content": ""}],
         r"messages\.1\.content\.0: text content blocks must be non-empty"),
    ],
)  # fmt: skip
def test_system_turn_placement_and_content(messages: list[dict[str, Any]], error: str) -> None:
    with pytest.raises(EmulatedError, match=error):
        check_request(body(messages), VERSION, counting=False, system_messages=lambda m: True)


def test_system_turn_after_a_tool_result_then_more_turns() -> None:
    messages = [
        {"role": "user", "content": "list files"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "ls", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt"}]},
        {"role": "system", "content": "The user is in a hurry."},
        {"role": "system", "content": "Answer in one line."},
        {"role": "assistant", "content": "a.txt"},
        {"role": "user", "content": "thanks"},
    ]  # fmt: skip
    check_request(body(messages), VERSION, counting=False, system_messages=lambda m: True)


def test_betas_are_a_comma_separated_list_maybe_repeated() -> None:
    betas = request_betas(
        ["claude-code-20250219, " + MID_CONVERSATION_SYSTEM_BETA, "effort-2025-11-24"]
    )
    assert MID_CONVERSATION_SYSTEM_BETA in betas
    assert "effort-2025-11-24" in betas
    assert MID_CONVERSATION_SYSTEM_BETA not in request_betas(["mid-conversation-system"])
