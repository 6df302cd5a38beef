from __future__ import annotations

from typing import Any

from gateway.catalog import ModelCatalog
from gateway.emulator.anthropic.diagnostics import CacheDiagnostics
from gateway.emulator.anthropic.prompt import Prompt, build_prompt

CATALOG = ModelCatalog.load()
TOOL = {"name": "search", "description": "find things", "input_schema": {"type": "object"}}


def prompt(model: str = "claude-sonnet-4-6", **extra: Any) -> Prompt:
    request: dict[str, Any] = {
        "model": model,
        "max_tokens": 16,
        "tools": [TOOL],
        "system": "You are terse. " * 50,
        "messages": [
            {"role": "user", "content": "first question " * 40},
            {"role": "assistant", "content": "first answer " * 40},
        ],
    }
    request.update(extra)
    spec = CATALOG.resolve(model)
    assert spec is not None
    return build_prompt(request, spec)


def recorded(before: Prompt | None = None, workspace: str = "ws") -> CacheDiagnostics:
    diagnostics = CacheDiagnostics()
    diagnostics.record("msg_1", workspace, before or prompt())
    return diagnostics


def cacheable(p: Prompt) -> int:
    return p.total_tokens - p.overhead_tokens


def test_unknown_previous_message() -> None:
    reason = recorded().diagnose("msg_unknown", "ws", prompt())
    assert reason == {"type": "previous_message_not_found"}


def test_another_workspaces_message_is_not_found() -> None:
    reason = recorded(workspace="a").diagnose("msg_1", "b", prompt())
    assert reason == {"type": "previous_message_not_found"}


def test_appended_turn_reuses_the_whole_prefix() -> None:
    before = prompt()
    messages = [
        {"role": "user", "content": "first question " * 40},
        {"role": "assistant", "content": "first answer " * 40},
        {"role": "user", "content": "second question"},
    ]
    assert recorded(before).diagnose("msg_1", "ws", prompt(messages=messages)) is None


def test_model_and_speed_changes_report_model_changed() -> None:
    before = prompt()
    expected = {"type": "model_changed", "cache_missed_input_tokens": cacheable(before)}
    assert recorded(before).diagnose("msg_1", "ws", prompt("claude-sonnet-4-5")) == expected
    assert recorded(before).diagnose("msg_1", "ws", prompt(speed="fast")) == expected


def test_tools_changed() -> None:
    before = prompt()
    after = prompt(tools=[{**TOOL, "description": "find other things"}])
    reason = recorded(before).diagnose("msg_1", "ws", after)
    assert reason == {"type": "tools_changed", "cache_missed_input_tokens": cacheable(before)}


def test_system_changed_counts_what_followed_the_tools() -> None:
    before = prompt()
    reason = recorded(before).diagnose("msg_1", "ws", prompt(system="Be verbose."))
    assert reason == {
        "type": "system_changed",
        "cache_missed_input_tokens": cacheable(before) - before.tools_tokens,
    }


def test_other_prompt_parameters_are_unavailable() -> None:
    reason = recorded().diagnose("msg_1", "ws", prompt(tool_choice={"type": "any"}))
    assert reason == {"type": "unavailable"}


def test_edited_earlier_message_is_messages_changed() -> None:
    before = prompt()
    messages = [
        {"role": "user", "content": "first question " * 40},
        {"role": "assistant", "content": "an edited answer"},
        {"role": "user", "content": "second question"},
    ]
    reason = recorded(before).diagnose("msg_1", "ws", prompt(messages=messages))
    missed = before.messages_tokens[1] - before.messages_tokens[0]
    assert reason == {"type": "messages_changed", "cache_missed_input_tokens": missed}


def test_records_are_bounded() -> None:
    diagnostics = CacheDiagnostics(max_records=1)
    diagnostics.record("msg_1", "ws", prompt())
    diagnostics.record("msg_2", "ws", prompt())
    assert diagnostics.diagnose("msg_1", "ws", prompt()) == {"type": "previous_message_not_found"}
    assert diagnostics.diagnose("msg_2", "ws", prompt()) is None
