"""The emulated OpenAI prefix cache against docs/wire.md, rule by rule."""

from __future__ import annotations

from typing import Any

from gateway.catalog import ModelCatalog
from gateway.emulator.openai.cache import CacheUsage, PrefixCache, Retention
from gateway.emulator.openai.prompt import Prompt, build_chat_prompt

CATALOG = ModelCatalog.load()
OLD = CATALOG.resolve("gpt-4.1")
NEW = CATALOG.resolve("gpt-5.6-terra")
assert OLD is not None
assert NEW is not None
SYSTEM = "policy " * 1000  # ~1,750 tokens at 4 chars per token


def prompt(*users: str, system: str = SYSTEM, new: bool = False) -> Prompt:
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    messages += [{"role": "user", "content": u} for u in users]
    spec = NEW if new else OLD
    assert spec is not None
    return build_chat_prompt({"messages": messages}, spec)


def apply(
    cache: PrefixCache,
    p: Prompt,
    now: float,
    *,
    exact: bool = False,
    retention: Retention = "24h",
    key: str | None = None,
    workspace: str = "ws",
    breakpoints: frozenset[int] | None = None,
) -> CacheUsage:
    points = frozenset({len(p.blocks) - 1}) if breakpoints is None else breakpoints
    return cache.apply(
        (workspace, key),
        p,
        exact=exact,
        retention=retention,
        breakpoints=points,
        now=now,
        response_start=lambda _: now,
    )


def test_older_models_round_reads_down_to_128_and_never_bill_writes() -> None:
    cache = PrefixCache()
    first = apply(cache, prompt("a"), 0)
    assert (first.cached_tokens, first.cache_write_tokens) == (0, 0)
    second = apply(cache, prompt("b"), 1)
    system_tokens = prompt("a").blocks[0].tokens
    assert second.cached_tokens == system_tokens - system_tokens % 128
    assert second.cache_write_tokens == 0
    assert second.prompt_tokens == prompt("b").total_tokens  # cached tokens included


def test_nothing_under_1024_tokens_is_read() -> None:
    cache = PrefixCache()
    short = "policy " * 500  # ~875 tokens
    apply(cache, prompt("a", system=short), 0)
    assert apply(cache, prompt("b", system=short), 1).cached_tokens == 0
    # The whole earlier prompt is over the minimum once it grew: the next turn reads it.
    longer = prompt("a", "x " * 400, system=short)
    apply(cache, longer, 2)
    assert apply(cache, prompt("a", "x " * 400, "more", system=short), 3).cached_tokens == 1024


def test_newer_models_write_at_breakpoints_and_report_exact_boundaries() -> None:
    cache = PrefixCache()
    first = apply(cache, prompt("a", new=True), 0, exact=True, retention="30m")
    written = prompt("a", new=True).total_tokens - prompt("a", new=True).overhead_tokens
    assert (first.cached_tokens, first.cache_write_tokens) == (0, written)
    grown = prompt("a", "b", new=True)
    second = apply(cache, grown, 1, exact=True, retention="30m")
    assert second.cached_tokens == written  # exact, not a multiple of 128
    assert second.cache_write_tokens == grown.total_tokens - grown.overhead_tokens - written
    # Without a breakpoint at the system prompt, a changed last message reads nothing.
    other = apply(cache, prompt("c", new=True), 2, exact=True, retention="30m")
    assert other.cached_tokens == 0
    # Explicit mode with no markers caches nothing.
    none = apply(cache, prompt("d", new=True), 3, exact=True, breakpoints=frozenset())
    assert (none.cached_tokens, none.cache_write_tokens) == (0, 0)


def test_retention_in_memory_expires_idle_entries_and_24h_keeps_them_longer() -> None:
    cache = PrefixCache()
    apply(cache, prompt("a"), 0, retention="in_memory")
    assert apply(cache, prompt("b"), 299, retention="in_memory").cached_tokens > 0
    assert apply(cache, prompt("c"), 299 + 301, retention="in_memory").cached_tokens == 0
    cache = PrefixCache()
    apply(cache, prompt("a"), 0, retention="24h")
    assert apply(cache, prompt("b"), 1500, retention="24h").cached_tokens > 0
    assert apply(cache, prompt("c"), 1500 + 1801, retention="24h").cached_tokens == 0


def test_in_memory_entries_live_at_most_an_hour_even_when_read() -> None:
    cache = PrefixCache()
    apply(cache, prompt("a"), 0, retention="in_memory")
    for minute in range(4, 60, 4):  # read every 4 minutes: never idle for 5
        assert apply(cache, prompt(f"q{minute}"), minute * 60.0).cached_tokens > 0
    assert apply(cache, prompt("late"), 3601).cached_tokens == 0


def test_newer_models_keep_entries_30_minutes_after_the_last_use() -> None:
    cache = PrefixCache()
    apply(cache, prompt("a", new=True), 0, exact=True, retention="30m")
    assert apply(cache, prompt("a", "b", new=True), 1799, exact=True).cached_tokens > 0
    assert apply(cache, prompt("a", "c", new=True), 1799 + 1799, exact=True).cached_tokens > 0
    assert apply(cache, prompt("a", "d", new=True), 3598 + 1801, exact=True).cached_tokens == 0


def test_workspaces_and_cache_keys_never_share() -> None:
    cache = PrefixCache()
    apply(cache, prompt("a"), 0, key="family-1")
    assert apply(cache, prompt("b"), 1, key="family-2").cached_tokens == 0
    assert apply(cache, prompt("b"), 1, key=None).cached_tokens == 0
    assert apply(cache, prompt("b"), 1, key="family-1", workspace="other").cached_tokens == 0
    assert apply(cache, prompt("b"), 1, key="family-1").cached_tokens > 0


def test_parallel_requests_on_a_new_prefix_all_miss() -> None:
    cache = PrefixCache()
    p = prompt("a")
    usage = cache.apply(("ws", None), p, exact=False, retention="24h", breakpoints=frozenset(),
                        now=0, response_start=lambda _: 2.0)  # fmt: skip
    assert usage.cached_tokens == 0
    assert apply(cache, prompt("b"), 1).cached_tokens == 0  # the first response began at 2
    assert apply(cache, prompt("c"), 3).cached_tokens > 0


def test_settings_that_invalidate_the_cache_change_every_digest() -> None:
    assert OLD is not None
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "a"}]
    plain = build_chat_prompt({"messages": messages}, OLD)
    formatted = build_chat_prompt(
        {"messages": messages, "response_format": {"type": "json_object"}}, OLD
    )
    effort = build_chat_prompt({"messages": messages, "reasoning_effort": "high"}, OLD)
    tools = build_chat_prompt(
        {"messages": messages, "tools": [{"type": "function", "function": {"name": "f"}}]}, OLD
    )
    assert len({p.blocks[0].digest for p in (plain, formatted, effort)}) == 3
    assert tools.blocks[1].digest != plain.blocks[0].digest
