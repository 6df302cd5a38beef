from __future__ import annotations

from typing import Any

import pytest

from gateway.catalog import ModelCatalog, ModelSpec
from gateway.catalog.tokens import count_tokens
from gateway.emulator.anthropic.prompt import (
    MEDIA_TOKENS,
    MESSAGE_OVERHEAD_TOKENS,
    REQUEST_OVERHEAD_TOKENS,
    Prompt,
    build_prompt,
)
from gateway.emulator.errors import EmulatedError

CATALOG = ModelCatalog.load()


def spec(name: str = "claude-sonnet-4-6") -> ModelSpec:
    found = CATALOG.resolve(name)
    assert found is not None
    return found


EPHEMERAL = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search"}


def tool(name: str, cache_control: dict[str, str] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": name,
        "description": f"the {name} tool",
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    if cache_control:
        entry["cache_control"] = cache_control
    return entry


def text(value: str, cache_control: dict[str, str] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": value}
    if cache_control:
        block["cache_control"] = cache_control
    return block


def body(**extra: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 16,
        "tools": [tool("search"), tool("fetch")],
        "system": [text("You are terse.")],
        "messages": [{"role": "user", "content": "hello"}],
    }
    request.update(extra)
    return request


def sections(prompt: Prompt) -> list[str]:
    return [block.section for block in prompt.blocks]


def test_count_tokens_is_ceil_of_chars_and_zero_for_empty() -> None:
    assert count_tokens("", 4.0) == 0
    assert count_tokens("abcd", 4.0) == 1
    assert count_tokens("abcde", 4.0) == 2
    assert count_tokens("abcdefg", 3.1) == count_tokens("abcdefg", 3.1) == 3


def test_blocks_follow_tools_system_messages_order_with_overheads() -> None:
    request = body(
        system="You are terse.",
        messages=[
            {"role": "user", "content": "hello there"},
            {"role": "assistant", "content": [text("hi"), text("how can I help")]},
        ],
    )
    prompt = build_prompt(request, spec())
    assert sections(prompt) == ["tools", "tools", "system", "messages", "messages", "messages"]
    assert prompt.blocks[3].tokens == count_tokens("hello there", 4.0) + MESSAGE_OVERHEAD_TOKENS
    assert prompt.blocks[5].tokens == count_tokens("how can I help", 4.0)
    assert prompt.overhead_tokens == REQUEST_OVERHEAD_TOKENS
    assert prompt.total_tokens == sum(b.tokens for b in prompt.blocks) + REQUEST_OVERHEAD_TOKENS
    assert len(prompt.messages_digests) == 2
    assert prompt.messages_digests[-1] == prompt.blocks[-1].digest


def test_media_with_binary_source_counts_a_fixed_size() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "x"}}
    prompt = build_prompt(body(messages=[{"role": "user", "content": [image]}]), spec())
    assert prompt.blocks[-1].tokens == MEDIA_TOKENS + MESSAGE_OVERHEAD_TOKENS


def test_string_content_hashes_like_one_text_block() -> None:
    as_string = build_prompt(body(), spec())
    as_block = build_prompt(body(messages=[{"role": "user", "content": [text("hello")]}]), spec())
    assert as_string.blocks[-1].digest == as_block.blocks[-1].digest


def test_moving_a_breakpoint_does_not_change_content_hashes() -> None:
    plain = build_prompt(body(), spec())
    marked = build_prompt(body(tools=[tool("search", EPHEMERAL), tool("fetch")]), spec())
    assert [b.digest for b in plain.blocks] == [b.digest for b in marked.blocks]
    assert marked.blocks[0].ttl == "5m"
    assert plain.blocks[0].ttl is None


def test_role_is_part_of_the_hash() -> None:
    user = build_prompt(body(), spec())
    assistant = build_prompt(body(messages=[{"role": "assistant", "content": "hello"}]), spec())
    assert user.blocks[-1].digest != assistant.blocks[-1].digest


def test_key_order_in_a_tool_changes_every_hash() -> None:
    reordered = {"description": "the search tool", **tool("search")}
    before = build_prompt(body(), spec())
    after = build_prompt(body(tools=[reordered, tool("fetch")]), spec())
    assert all(a.digest != b.digest for a, b in zip(before.blocks, after.blocks, strict=True))


def test_model_is_the_root_of_the_chain() -> None:
    sonnet = build_prompt(body(), spec("claude-sonnet-4-6"))
    older = build_prompt(body(), spec("claude-sonnet-4-5"))
    assert older.model == "claude-sonnet-4-5-20250929"
    assert all(a.digest != b.digest for a, b in zip(sonnet.blocks, older.blocks, strict=True))


@pytest.mark.parametrize(
    ("change", "tools_kept", "system_kept"),
    [
        ({"tools": [tool("fetch"), tool("search")]}, False, False),
        ({"speed": "fast"}, True, False),
        ({"tools": [tool("search"), tool("fetch"), WEB_SEARCH]}, True, False),
        ({"tool_choice": {"type": "any"}}, True, True),
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, True, True),
    ],
)
def test_invalidation_table(change: dict[str, Any], tools_kept: bool, system_kept: bool) -> None:
    """The documented table: which sections keep their hashes when a request-level setting
    changes (docs/wire.md)."""
    before = build_prompt(body(), spec())
    after = build_prompt(body(**change), spec())
    assert (before.tools_digest == after.tools_digest) is tools_kept
    assert (before.system_digest == after.system_digest) is system_kept
    assert before.messages_digests != after.messages_digests


def test_adding_an_image_in_a_tool_result_keeps_system_but_misses_messages() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    result = {"type": "tool_result", "tool_use_id": "t1", "content": [image]}
    call = {"type": "tool_use", "id": "t1", "name": "search", "input": {"q": "x"}}
    history = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": [call]}]
    before = build_prompt(body(messages=history), spec())
    after = build_prompt(body(messages=[*history, {"role": "user", "content": [result]}]), spec())
    assert before.system_digest == after.system_digest
    assert before.messages_digests[0] != after.messages_digests[0]


def thinking_conversation() -> list[dict[str, Any]]:
    thought = {"type": "thinking", "thinking": "let me think " * 20, "signature": "sig"}
    return [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": [thought, text("first answer")]},
        {"role": "user", "content": "second question"},
    ]


def test_older_models_and_haiku_strip_earlier_thinking_after_a_plain_user_turn() -> None:
    haiku = build_prompt(body(messages=thinking_conversation()), spec("claude-haiku-4-5"))
    sonnet = build_prompt(body(messages=thinking_conversation()), spec("claude-sonnet-4-6"))
    assert len(haiku.blocks) == len(sonnet.blocks) - 1


def breakpoint_error(request: dict[str, Any]) -> str:
    with pytest.raises(EmulatedError) as caught:
        build_prompt(request, spec())
    assert caught.value.status == 400
    assert caught.value.error_type == "invalid_request_error"
    return caught.value.message


def test_five_breakpoints_are_rejected() -> None:
    request = body(
        tools=[tool("search", EPHEMERAL), tool("fetch", EPHEMERAL)],
        system=[text("a", EPHEMERAL), text("b", EPHEMERAL)],
        messages=[{"role": "user", "content": [text("hello", EPHEMERAL)]}],
    )
    message = breakpoint_error(request)
    assert message == "A maximum of 4 blocks with cache_control may be provided. Found 5."


def test_one_hour_breakpoint_after_a_five_minute_one_is_rejected() -> None:
    request = body(
        system=[text("a", EPHEMERAL)],
        messages=[{"role": "user", "content": [text("hello", HOUR)]}],
    )
    assert breakpoint_error(request).startswith(
        "messages.0.content.0.cache_control.ttl: a ttl='1h' cache_control block must not come "
        "after a ttl='5m' cache_control block."
    )
    fine = body(
        system=[text("a", HOUR)], messages=[{"role": "user", "content": [text("x", EPHEMERAL)]}]
    )
    assert [b.ttl for b in build_prompt(fine, spec()).blocks if b.ttl] == ["1h", "5m"]


def test_unknown_ttl_is_rejected() -> None:
    request = body(system=[text("a", {"type": "ephemeral", "ttl": "10m"})])
    assert breakpoint_error(request) == "system.0.cache_control.ttl: Input should be '5m' or '1h'"


def test_breakpoint_on_thinking_is_rejected() -> None:
    thought = {"type": "thinking", "thinking": "hm", "signature": "s", "cache_control": EPHEMERAL}
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": [thought]}]
    assert "messages.1.content.0.thinking.cache_control" in breakpoint_error(
        body(messages=messages)
    )


def test_breakpoint_on_empty_text_is_rejected() -> None:
    messages = [{"role": "user", "content": [text("q"), text("", EPHEMERAL)]}]
    assert breakpoint_error(body(messages=messages)) == (
        "messages.0.content.1.text: cache_control cannot be set for empty text blocks"
    )


def test_automatic_caching_marks_the_last_cacheable_block() -> None:
    messages = [{"role": "user", "content": [text("question"), text("")]}]
    prompt = build_prompt(body(messages=messages, cache_control=HOUR), spec())
    assert [b.ttl for b in prompt.blocks] == [None, None, None, "1h", None]


def four_explicit(last: dict[str, str]) -> dict[str, Any]:
    return body(
        tools=[tool("search", HOUR), tool("fetch", HOUR)],
        system=[text("a", HOUR)],
        messages=[{"role": "user", "content": [text("hello", last)]}],
    )


def test_automatic_caching_takes_a_slot() -> None:
    request = body(
        tools=[tool("search", HOUR), tool("fetch", HOUR)],
        system=[text("a", HOUR), text("b", HOUR)],
        cache_control=EPHEMERAL,
    )
    assert "no slots left for automatic caching" in breakpoint_error(request)


def test_automatic_caching_on_an_explicit_breakpoint_with_the_same_ttl_changes_nothing() -> None:
    prompt = build_prompt({**four_explicit(EPHEMERAL), "cache_control": EPHEMERAL}, spec())
    assert [b.ttl for b in prompt.blocks] == ["1h", "1h", "1h", "5m"]


def test_automatic_caching_with_a_different_ttl_than_the_explicit_one_is_rejected() -> None:
    request = {**four_explicit(EPHEMERAL), "cache_control": HOUR}
    assert "conflicts" in breakpoint_error(request)
