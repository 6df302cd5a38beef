from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.catalog import ModelCatalog, ModelSpec
from gateway.emulator.anthropic.cache import CacheUsage, PromptCache
from gateway.emulator.anthropic.prompt import Prompt, build_prompt

CATALOG = ModelCatalog.load()
EPHEMERAL = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}


def spec(name: str = "claude-sonnet-4-6") -> ModelSpec:
    found = CATALOG.resolve(name)
    assert found is not None
    return found


def words(tokens: int, seed: str = "w") -> str:
    """About `tokens` tokens at 4 chars per token (Sonnet 4.6, Haiku 4.5)."""
    return (f"{seed} lorem ipsum " * tokens)[: tokens * 4]


def block(value: str, cache_control: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "text", "text": value}
    if cache_control:
        out["cache_control"] = cache_control
    return out


def blocks_request(
    sizes: list[int], marks: dict[int, dict[str, str]], **extra: Any
) -> dict[str, Any]:
    """One user message whose content blocks have the given token sizes and breakpoints."""
    content = [block(words(size, str(i)), marks.get(i)) for i, size in enumerate(sizes)]
    request: dict[str, Any] = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": content}],
    }
    request.update(extra)
    return request


def run(
    cache: PromptCache,
    request: dict[str, Any],
    now: float = 0.0,
    *,
    workspace: str = "ws",
    model: str = "claude-sonnet-4-6",
    available_at: float | None = None,
) -> CacheUsage:
    model_spec = spec(model)
    prompt = build_prompt(request, model_spec)
    usage = cache.apply(
        workspace,
        prompt,
        model_spec.min_cacheable_tokens,
        now,
        lambda _usage: now if available_at is None else available_at,
    )
    assert_invariant(usage, prompt)
    return usage


def assert_invariant(usage: CacheUsage, prompt: Prompt) -> None:
    assert min(usage.input_tokens, usage.cache_read_input_tokens) >= 0
    assert min(usage.cache_creation_5m, usage.cache_creation_1h) >= 0
    billed = usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens
    assert billed == prompt.total_tokens


def prefix_tokens(request: dict[str, Any], position: int, model: str = "claude-sonnet-4-6") -> int:
    prompt = build_prompt(request, spec(model))
    return sum(b.tokens for b in prompt.blocks[: position + 1])


BIG = blocks_request([1500, 50], {1: EPHEMERAL})


def test_hit_after_write() -> None:
    cache = PromptCache()
    first = run(cache, BIG)
    assert first.cache_read_input_tokens == 0
    assert first.cache_creation_5m == prefix_tokens(BIG, 1)
    assert first.input_tokens == 3
    second = run(cache, BIG, now=10)
    assert second.cache_read_input_tokens == prefix_tokens(BIG, 1)
    assert second.cache_creation_input_tokens == 0


def test_one_changed_byte_before_the_breakpoint_misses() -> None:
    cache = PromptCache()
    run(cache, BIG)
    changed = blocks_request([1500, 50], {1: EPHEMERAL})
    changed["messages"][0]["content"][0]["text"] = (
        "X" + changed["messages"][0]["content"][0]["text"][1:]
    )
    assert run(cache, changed, now=1).cache_read_input_tokens == 0


def tooled(tool: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return blocks_request([1500, 20], {1: EPHEMERAL}, tools=[tool], **extra)


SEARCH = {"name": "search", "description": words(1200, "tool"), "input_schema": {"type": "object"}}


def test_key_order_change_in_a_tool_misses() -> None:
    cache = PromptCache()
    run(cache, tooled(SEARCH))
    reordered = {
        "description": SEARCH["description"],
        "name": "search",
        "input_schema": {"type": "object"},
    }
    assert run(cache, tooled(reordered), now=1).cache_read_input_tokens == 0
    assert run(cache, tooled(SEARCH), now=2).cache_read_input_tokens > 0


def test_below_the_model_minimum_nothing_is_cached() -> None:
    request = blocks_request([2000, 50], {1: EPHEMERAL})
    cache = PromptCache()
    for now in (0, 1):
        usage = run(cache, request, now, model="claude-haiku-4-5")  # minimum 4,096
        assert usage.cache_read_input_tokens == usage.cache_creation_input_tokens == 0
    assert run(cache, request, 2).cache_creation_5m > 0  # Sonnet 4.6: minimum 1,024


def test_writes_happen_only_at_breakpoints() -> None:
    cache = PromptCache()
    run(cache, blocks_request([1500, 20, 20], {2: EPHEMERAL}))
    earlier = run(cache, blocks_request([1500, 20, 20], {0: EPHEMERAL}), now=1)
    assert earlier.cache_read_input_tokens == 0


def test_lookback_finds_an_entry_20_blocks_back_but_not_21() -> None:
    sizes = [1500] + [5] * 25
    cache = PromptCache()
    run(cache, blocks_request(sizes, {0: EPHEMERAL}))
    written = prefix_tokens(blocks_request(sizes, {}), 0)
    at_20 = run(cache, blocks_request(sizes, {19: EPHEMERAL}), now=1)
    assert at_20.cache_read_input_tokens == written
    fresh = PromptCache()
    run(fresh, blocks_request(sizes, {0: EPHEMERAL}))
    assert run(fresh, blocks_request(sizes, {20: EPHEMERAL}), now=1).cache_read_input_tokens == 0


def test_moving_a_breakpoint_later_reads_the_earlier_entry() -> None:
    sizes = [1500, 10, 10, 10, 10, 10]
    cache = PromptCache()
    run(cache, blocks_request(sizes, {0: EPHEMERAL}))
    moved = blocks_request(sizes, {5: EPHEMERAL})
    usage = run(cache, moved, now=1)
    assert usage.cache_read_input_tokens == prefix_tokens(moved, 0)
    assert usage.cache_creation_5m == prefix_tokens(moved, 5) - prefix_tokens(moved, 0)


def test_five_minute_entry_expires_after_300_seconds() -> None:
    live, gone = PromptCache(), PromptCache()
    run(live, BIG, now=0)
    run(gone, BIG, now=0)
    assert run(live, BIG, now=299).cache_read_input_tokens > 0
    assert run(gone, BIG, now=301).cache_read_input_tokens == 0


def test_one_hour_entry_is_refreshed_by_a_hit() -> None:
    request = blocks_request([1500, 50], {1: HOUR})
    refreshed, idle = PromptCache(), PromptCache()
    for cache in (refreshed, idle):
        assert run(cache, request, now=0).cache_creation_1h == prefix_tokens(request, 1)
    assert run(refreshed, request, now=3000).cache_read_input_tokens > 0
    assert run(refreshed, request, now=6000).cache_read_input_tokens > 0
    assert run(idle, request, now=6000).cache_read_input_tokens == 0


def test_automatic_caching_moves_forward_as_the_conversation_grows() -> None:
    turn_1: dict[str, Any] = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 16,
        "cache_control": EPHEMERAL,
        "messages": [{"role": "user", "content": words(1500)}],
    }
    cache = PromptCache()
    first = run(cache, turn_1)
    turn_2 = {
        **turn_1,
        "messages": [
            *turn_1["messages"],
            {"role": "assistant", "content": "an answer"},
            {"role": "user", "content": "a follow-up"},
        ],
    }
    second = run(cache, turn_2, now=5)
    assert second.cache_read_input_tokens == first.cache_creation_5m
    assert second.cache_creation_5m == prefix_tokens(turn_2, 2) - prefix_tokens(turn_2, 0)
    assert run(cache, turn_2, now=6).cache_read_input_tokens == prefix_tokens(turn_2, 2)


def test_parallel_requests_on_a_new_prefix_all_miss() -> None:
    cache = PromptCache()
    first = run(cache, BIG, now=0, available_at=2)
    second = run(cache, BIG, now=1, available_at=3)
    assert first.cache_read_input_tokens == second.cache_read_input_tokens == 0
    assert second.cache_creation_5m == first.cache_creation_5m > 0
    assert run(cache, BIG, now=2.5).cache_read_input_tokens == first.cache_creation_5m


def three_sections(**extra: Any) -> dict[str, Any]:
    return blocks_request(
        [1500, 20],
        {1: EPHEMERAL},
        tools=[SEARCH | {"cache_control": EPHEMERAL}],
        system=[block(words(300, "sys"), EPHEMERAL)],
        **extra,
    )


def test_tool_choice_change_keeps_tools_and_system_but_misses_messages() -> None:
    cache = PromptCache()
    run(cache, three_sections())
    usage = run(cache, three_sections(tool_choice={"type": "any"}), now=1)
    assert usage.cache_read_input_tokens == prefix_tokens(three_sections(), 1)  # through system
    assert usage.cache_creation_5m > 0


def test_speed_change_keeps_tools_but_misses_system_and_messages() -> None:
    cache = PromptCache()
    run(cache, three_sections())
    usage = run(cache, three_sections(speed="fast"), now=1)
    assert usage.cache_read_input_tokens == prefix_tokens(three_sections(), 0)  # the last tool


def test_tool_definition_change_misses_everything() -> None:
    cache = PromptCache()
    run(cache, three_sections())
    changed = three_sections()
    changed["tools"][0]["name"] = "lookup"
    assert run(cache, changed, now=1).cache_read_input_tokens == 0


def test_model_change_misses() -> None:
    cache = PromptCache()
    run(cache, BIG)
    assert run(cache, BIG, now=1, model="claude-sonnet-4-5").cache_read_input_tokens == 0


def test_mixed_ttl_billing_splits_at_the_last_one_hour_breakpoint() -> None:
    sizes = [1200, 300, 400, 25]
    cache = PromptCache()
    run(cache, blocks_request(sizes, {0: HOUR}))
    request = blocks_request(sizes, {0: HOUR, 1: HOUR, 2: EPHEMERAL})
    usage = run(cache, request, now=1)
    a, b, c = (prefix_tokens(request, i) for i in range(3))
    assert (usage.cache_read_input_tokens, usage.cache_creation_1h) == (a, b - a)
    assert usage.cache_creation_5m == c - b
    assert usage.input_tokens == build_prompt(request, spec()).total_tokens - c


def test_workspaces_do_not_share_entries() -> None:
    cache = PromptCache()
    run(cache, BIG, workspace="a")
    assert run(cache, BIG, now=1, workspace="b").cache_read_input_tokens == 0
    assert run(cache, BIG, now=2, workspace="a").cache_read_input_tokens > 0


def test_least_recently_used_entries_are_evicted() -> None:
    cache = PromptCache(max_entries=1)
    other = blocks_request([1500, 60], {1: EPHEMERAL})
    run(cache, BIG)
    run(cache, other, now=1)
    assert len(cache) == 1
    assert run(cache, BIG, now=2).cache_read_input_tokens == 0


GAPS = (0.0, 1.0, 120.0, 299.0, 301.0, 3599.0, 3601.0)


@st.composite
def conversations(draw: st.DrawFn) -> list[tuple[dict[str, Any], float]]:
    """Requests sharing one growing list of blocks, so prefixes hit, miss and expire."""
    sizes = draw(st.lists(st.integers(1, 1500), min_size=1, max_size=30))
    steps = []
    for _ in range(draw(st.integers(1, 8))):
        length = draw(st.integers(1, len(sizes)))
        positions = sorted(draw(st.sets(st.integers(0, length - 1), max_size=4)))
        hours = draw(st.integers(0, len(positions)))  # 1h breakpoints must come first
        marks = {p: HOUR if i < hours else EPHEMERAL for i, p in enumerate(positions)}
        steps.append((blocks_request(sizes[:length], marks), draw(st.sampled_from(GAPS))))
    return steps


@settings(max_examples=200, deadline=None)
@given(conversations())
def test_usage_always_adds_up_to_the_prompt(steps: list[tuple[dict[str, Any], float]]) -> None:
    cache = PromptCache(max_entries=8)
    now = 0.0
    for request, gap in steps:
        now += gap
        run(cache, request, now)  # asserts input + creation + read == total_tokens
