"""Learned state: bounded in bytes, per tenant and in all, and never shared
between tenants: one caller's traffic neither pins the gateway's memory nor evicts or
changes what another caller's requests taught it."""

from __future__ import annotations

import gc
import tracemalloc
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.cache.bounded import ENTRY_OVERHEAD_BYTES, LearnedState, LearnedTable
from gateway.cache.learned import LearnedMemory
from gateway.cache.lines import LineStats
from gateway.cache.registry import PrefixRegistry
from gateway.cli import deprecation_warnings
from gateway.metering.pricing import Pricing
from gateway.rewrite.fingerprint import fingerprint
from gateway.rewrite.memo import Derived
from gateway.rewrite.request import LLMRequest
from gateway.rewrite.snapshot import LinesSeen
from gateway.rewrite.volatile import volatile
from gateway.settings import load_settings
from gateway.upstream.request import Urls
from gateway.wire.usage import Usage
from tests.support.rewrite import NOW, accepted, context, memory

MODEL = "claude-sonnet-4-6"
A, B = b"tenant-a", b"tenant-b"
MIB = 1024 * 1024


def table(max_bytes: int, per_tenant: int) -> LearnedTable[int, str]:
    return LearnedTable(LearnedState(max_bytes, per_tenant), "t")


# --------------------------------------------------------------------- the structure


def test_entries_are_forgotten_by_bytes_least_recently_used_first() -> None:
    entries = table(10 * (ENTRY_OVERHEAD_BYTES + 100), 10**9)
    for key in range(10):
        entries.put(A, key, "v", 100)
    assert entries.get(A, 0) == "v"  # used: now the most recent
    entries.put(A, 10, "v", 250)  # needs the room of two entries of 100
    assert [entries.get(A, key) for key in (1, 2, 3)] == [None, None, "v"]
    assert entries.get(A, 0) == "v"
    assert entries.state.bytes <= entries.state.max_bytes


def test_an_entry_larger_than_a_tenants_share_is_not_kept() -> None:
    entries = table(10**6, 10_000)
    assert entries.put(A, 1, "small", 100)
    assert not entries.put(A, 2, "huge", 20_000)
    assert entries.get(A, 2) is None
    assert entries.get(A, 1) == "small"  # and it pushed nothing out


def test_replacing_an_entry_counts_its_new_size_only() -> None:
    entries = table(10**6, 10**6)
    entries.put(A, 1, "v", 100)
    entries.put(A, 1, "w", 300)
    assert entries.state.bytes == ENTRY_OVERHEAD_BYTES + 300
    entries.pop(A, 1)
    assert entries.state.bytes == 0
    assert entries.state.tenant_bytes(A) == 0


def test_a_tenant_past_its_cap_forgets_its_own_entries_only() -> None:
    entry = ENTRY_OVERHEAD_BYTES + 100
    entries = table(100 * entry, 10 * entry)
    for key in range(5):
        entries.put(B, key, "b", 100)
    for key in range(1000, 3000):
        entries.put(A, key, "a", 100)
    assert entries.state.tenant_bytes(A) <= 10 * entry
    assert all(entries.get(B, key) == "b" for key in range(5))


def test_a_flood_past_the_global_cap_never_evicts_a_tenant_within_its_share() -> None:
    # Each tenant may hold all of it: only the fair-share rule protects B.
    entry = ENTRY_OVERHEAD_BYTES + 100
    entries = table(40 * entry, 40 * entry)
    for key in range(15):  # B: 15 entries, within its share of 20
        entries.put(B, key, "b", 100)
    for key in range(1000, 5000):
        entries.put(A, key, "a", 100)
    assert all(entries.get(B, key) == "b" for key in range(15))
    assert entries.state.bytes <= entries.state.max_bytes
    assert entries.state.tenant_bytes(A) == 25 * entry  # the rest is A's


def test_a_tenant_within_its_share_takes_room_from_the_oldest() -> None:
    entry = ENTRY_OVERHEAD_BYTES + 100
    entries = table(20 * entry, 20 * entry)
    for key in range(20):
        entries.put(A, key, "a", 100)
    for key in range(5):
        entries.put(B, key, "b", 100)
    assert entries.state.tenant_bytes(B) == 5 * entry
    assert entries.state.tenant_bytes(A) == 15 * entry
    assert entries.get(A, 0) is None
    assert entries.get(A, 19) == "a"


def test_tables_share_one_budget_and_keep_their_keys_apart() -> None:
    state = LearnedState(10**6, 10**6)
    one: LearnedTable[int, str] = LearnedTable(state, "one")
    two: LearnedTable[int, str] = LearnedTable(state, "two")
    one.put(A, 1, "one", 10)
    two.put(A, 1, "two", 10)
    assert (one.get(A, 1), two.get(A, 1), one.get(B, 1)) == ("one", "two", None)
    assert state.bytes == 2 * (ENTRY_OVERHEAD_BYTES + 10)


def test_the_bytes_held_are_reported() -> None:
    reported: list[int] = []
    entries: LearnedTable[int, str] = LearnedTable(LearnedState(10**6, 10**6, reported.append), "t")
    entries.put(A, 1, "v", 10)
    assert reported == [ENTRY_OVERHEAD_BYTES + 10]


# --------------------------------------------------------------------- the rewrite pipeline


def request(tenant: bytes, **fields: Any) -> LLMRequest:
    body = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    return LLMRequest("anthropic", {**body, **fields}, tenant=tenant)


def accepted_volatile(sent: LLMRequest, policy: Any, learned: LearnedMemory) -> LLMRequest:
    out = volatile(sent, policy, learned.lines, NOW)
    learned.learn(out.observations)
    return out


def distinct_prompt() -> str:
    tag = uuid.uuid4().hex[:6]  # 950 short lines, each unique: the most lines per byte
    return "\n".join(f"{i:03d} {tag}xx" for i in range(950))


def unique_tool(size: int) -> dict[str, Any]:
    return {
        "name": "t_" + uuid.uuid4().hex[:12],
        "description": (uuid.uuid4().hex * (size // 32 + 1))[:size],
        "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
    }


def retained(send: Any) -> int:
    """Bytes still allocated after `send()` ran and its garbage was collected."""
    with warnings.catch_warnings():
        # Earlier tests' garbage (an unclosed socket) is not this test's to report.
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        send()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def flooded(count: int, make: Callable[[], LLMRequest]) -> tuple[LearnedState, int]:
    """`count` requests of one tenant into 8 MiB of learned state (1 MiB per tenant); the
    state, and the bytes still allocated after them."""
    state = LearnedState(8 * MIB, 1 * MIB)
    ctx = context(memory(state=state))

    def send() -> None:
        for _ in range(count):
            accepted(make(), ctx)

    return state, retained(send)


def test_a_flood_of_distinct_system_prompts_keeps_at_most_a_tenants_share() -> None:
    # 100 distinct 10 KB prompts (1 MB sent): counting their lines held ~12 MB before.
    state, held = flooded(100, lambda: request(A, system=distinct_prompt()))
    assert state.tenant_bytes(A) <= 1 * MIB
    assert held < 2 * MIB, f"{held / MIB:.1f} MiB retained"


def test_a_flood_of_unique_large_tools_keeps_at_most_a_tenants_share() -> None:
    # 60 unique 200 KB tools (12 MB sent): their first-seen forms held ~100 MB before.
    state, held = flooded(60, lambda: request(A, tools=[unique_tool(200_000)]))
    assert state.tenant_bytes(A) <= 1 * MIB
    assert held < 2 * MIB, f"{held / MIB:.1f} MiB retained"


def test_another_tenants_flood_leaves_a_tenants_tool_forms_in_place() -> None:
    state = LearnedState(4 * MIB, 4 * MIB)
    ctx = context(memory(state=state))
    search = {"name": "search", "description": "Search", "input_schema": {"type": "object"}}
    fetch = {"name": "fetch", "input_schema": {"type": "object", "properties": {}}}
    accepted(request(B, tools=[search, fetch]), ctx)
    for _ in range(100):  # 10 MB: more than all the learned state may hold
        accepted(request(A, tools=[unique_tool(100_000)]), ctx)
    shuffled = [{**dict(reversed(fetch.items()))}, {**dict(reversed(search.items()))}]
    again = accepted(request(B, tools=shuffled), ctx)
    assert [list(tool) for tool in again.body["tools"]] == [list(search), list(fetch)]
    assert state.bytes <= state.max_bytes


def test_one_tenants_tool_form_is_never_imposed_on_another() -> None:
    ctx = context()
    first = {"name": "lookup", "input_schema": {"type": "object"}, "description": "Find"}
    accepted(request(A, tools=[first]), ctx)
    own = {"description": "Find", "name": "lookup", "input_schema": {"type": "object"}}
    sent = accepted(request(B, tools=[own]), ctx)
    assert list(sent.body["tools"][0]) == list(own)  # B's first-seen form is its own
    assert "tool_json" not in [r.rule for r in sent.rewrites]


def test_one_tenants_requests_never_make_anothers_lines_volatile() -> None:
    lines = memory(learn_volatile_after=5)
    system = "You are Acme's agent.\nRefunds within 30 days only.\nBe brief."
    for _ in range(5):
        accepted_volatile(request(B, system=system), "move", lines)
    for i in range(20):  # the same family (first line, no tools), other lines
        accepted_volatile(request(A, system=f"You are Acme's agent.\nnoise {i}"), "move", lines)
    after = accepted_volatile(request(B, system=system), "move", lines)
    assert not after.changed
    assert not after.findings


def test_one_tenants_unread_tails_never_stop_anothers() -> None:
    registry = PrefixRegistry()
    usage = Usage(input=10, output=5, cache_read=0, cache_write_5m=1300)
    body: dict[str, Any] = {"model": MODEL, "system": "S" * 5000}
    for i in range(40):  # A: conversations that never continue
        messages = [{"role": "user", "content": f"question {i}"}]
        fp = fingerprint({**body, "messages": messages}, None, 4.0, A)
        registry.record(fp, usage, i, i, 1024, ("anthropic", MODEL, "search"), step="search")
    assert not all(registry.tail_pays(A, "search", MODEL) for _ in range(16))
    assert all(registry.tail_pays(B, "search", MODEL) for _ in range(16))


def test_a_call_is_remembered_in_a_constant_size_however_long_its_conversation() -> None:
    state = LearnedState.default()
    registry = PrefixRegistry(state)
    usage = Usage(input=10, output=5, cache_read=0, cache_write_5m=0)
    owner = ("anthropic", MODEL, "chat")
    turns = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}"} for i in range(2001)
    ]

    def fp(messages: list[Any]) -> Any:
        return fingerprint({"model": MODEL, "messages": messages}, None, 4.0, A)

    registry.record(fp(turns), usage, 0, 0, 1024, owner)
    assert state.bytes < 8_000  # its 2,001 message digests were ~100 KB, twice
    # The comparison with the last call still tells an extension from an edit.
    more = [*turns, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "go"}]
    assert registry.record(fp(more), usage, 10, 10, 1024, owner).cause == "cold"
    edited = [*more[:1000], {"role": "user", "content": "edited"}, *more[1001:]]
    assert registry.record(fp(edited), usage, 20, 20, 1024, owner).cause == "messages_changed"
    assert state.bytes < 8_000


def test_the_entry_limits_of_before_still_load_and_are_reported_ignored(tmp_path: Any) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("rewrite:\n  tool_forms_max_entries: 10000\n  registry_max_entries: 5\n")
    settings = load_settings(config)
    assert settings.rewrite.learned_state_max_bytes == 64 * MIB
    assert [w.split(" ")[0] for w in deprecation_warnings(settings)] == [
        "rewrite.tool_forms_max_entries",
        "rewrite.registry_max_entries",
    ]
    shipped = Path(__file__).resolve().parents[3] / "config" / "gateway.yaml"
    assert not deprecation_warnings(load_settings(shipped))


# --------------------------------------------------------------------- other caches a client fills


def test_prices_of_long_model_names_are_resolved_but_not_kept() -> None:
    pricing = Pricing.load()
    names = [f"{i}-" + "m" * 1_000_000 for i in range(20)]  # 20 MB of names

    def ask() -> None:
        for name in names:
            assert pricing.price("anthropic", name) is None

    assert retained(ask) < MIB  # each name was kept as a cache key: 20 MB


def test_upstream_urls_with_long_query_strings_are_parsed_but_not_kept() -> None:
    urls = Urls({"anthropic": "http://127.0.0.1:9"}, httpx.URL)
    # Each under httpx's URL limit (64 KiB), as the server's header limit keeps them.
    targets = [f"/v1/messages?q={i}" + "a" * 60_000 for i in range(100)]  # 6 MB of targets

    def send() -> None:
        for target in targets:
            assert str(urls.get("anthropic", target)).endswith(target[-10:])

    assert retained(send) < MIB  # each URL was kept: 6 MB


def test_the_memo_in_its_own_state_never_pushes_out_what_decides_a_rewrite() -> None:
    """A tenant whose memo of large texts fills its share keeps its line counts, tool forms
    and registry: the memo has a bound of its own."""
    learned, memo = LearnedState(4 * MIB, MIB), LearnedState(4 * MIB, MIB)
    memory = LearnedMemory.within(learned, memo=memo)
    texts = [(("whitespace", str(i) * 2048), "x" * 2048, 300 * 1024) for i in range(10)]
    memory.learn([Derived(A, tuple(texts))])
    assert learned.bytes == 0  # nothing of the memo's went into the shared state
    assert 0 < memo.tenant_bytes(A) <= MIB  # the memo holds its own, within its bound
    shared = LearnedState(4 * MIB, MIB)
    LearnedMemory.within(shared).learn([Derived(A, tuple(texts))])
    assert shared.bytes > 0  # without a state of its own it shares the tables' (the test bites)


@pytest.mark.parametrize(
    ("seen", "asked", "varying"),
    [
        ([{1, 2, 3}] * 6, [1, 2, 3], set()),  # every line at or above the floor
        ([{1, 2, 3}] * 2 + [{1, 2}] * 4, [1, 2, 3], {2}),  # one below
        ([{1, 2, 3}] * 6, [4, 1], {0}),  # never seen: counted 0
        ([{1, 2, 3}] * 6, [], set()),
        ([{1}] * 3, [1, 2], set()),  # before min_requests: nothing judged
    ],
)
def test_varying_lines_are_those_below_the_floor(
    seen: list[set[int]], asked: list[int], varying: set[int]
) -> None:
    stats = LineStats()
    for lines in seen:
        stats.learn(LinesSeen(b"t", b"family", frozenset(lines)))
    assert stats.varying(b"t", b"family", asked, frozenset(asked)) == varying
