"""Miss causes and wasted writes, one case per cause."""

from __future__ import annotations

from typing import Any, cast

import pytest

from gateway.cache.bounded import LearnedState
from gateway.cache.registry import PrefixRegistry
from gateway.rewrite.fingerprint import Fingerprint, fingerprint
from gateway.wire.usage import Usage

SYSTEM = "Policy line.\n" * 400
MODEL = "claude-sonnet-4-6"
OWNER = ("anthropic", MODEL, "chat")


def fp(
    system: str = SYSTEM, model: str = "claude-sonnet-4-6", turns: int = 1, **body: Any
) -> Fingerprint:
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}"}
        for i in range(turns)
    ]
    return fingerprint({"model": model, "system": system, "messages": messages, **body}, None, 4.0)


def record(
    registry: PrefixRegistry,
    f: Fingerprint,
    read: int,
    write: int,
    at: float,
    answered: float | None = None,
) -> Any:
    usage = Usage(input=10, output=5, cache_read=read, cache_write_5m=write)
    return registry.record(f, usage, at, at if answered is None else answered, 1024, OWNER)


def test_first_call_is_cold_and_a_hit_is_no_miss() -> None:
    registry = PrefixRegistry()
    assert record(registry, fp(), read=0, write=1300, at=0).cause == "cold"
    assert record(registry, fp(turns=3), read=1300, write=20, at=10).cause is None


@pytest.mark.parametrize(
    ("second", "cause"),
    [
        (fp(model="claude-opus-4-6"), "model_changed"),
        (fp(tools=[{"name": "t", "input_schema": {"type": "object"}}]), "tools_changed"),
        (fp(system=SYSTEM + "v2"), "system_changed"),
    ],
)
def test_a_changed_layer_is_named(second: Fingerprint, cause: str) -> None:
    registry = PrefixRegistry()
    record(registry, fp(), read=0, write=1300, at=0)
    verdict = record(registry, second, read=0, write=1300, at=10)
    assert verdict.cause == cause
    assert verdict.missed_tokens == 1300


def test_edited_history_is_messages_changed() -> None:
    registry = PrefixRegistry()
    first = fp(turns=3)
    record(registry, first, read=0, write=1300, at=0)
    edited = fingerprint(
        {"model": "claude-sonnet-4-6", "system": SYSTEM, "messages": [
            {"role": "user", "content": "turn 0"}, {"role": "assistant", "content": "changed"},
            {"role": "user", "content": "turn 2"}, {"role": "assistant", "content": "x"},
            {"role": "user", "content": "y"}]},
        None, 4.0,
    )  # fmt: skip
    assert record(registry, edited, read=0, write=1300, at=10).cause == "messages_changed"


def test_ttl_expiry_parallel_cold_and_below_minimum() -> None:
    registry = PrefixRegistry(ttl_s=300)
    record(registry, fp(), read=0, write=1300, at=0)
    assert record(registry, fp(turns=3), read=0, write=1400, at=400).cause == "ttl_expired"
    parallel = PrefixRegistry()
    record(parallel, fp(), read=0, write=1300, at=0, answered=2.0)
    assert record(parallel, fp(turns=3), read=0, write=1300, at=1).cause == "parallel_cold"
    short = fp(system="Short.")
    assert record(PrefixRegistry(), short, read=0, write=0, at=0).cause == "below_minimum"


def test_writes_never_read_are_reported_once_expired() -> None:
    registry = PrefixRegistry(ttl_s=300)
    record(registry, fp(system=SYSTEM + "a"), read=0, write=1300, at=0)
    record(registry, fp(system=SYSTEM + "b"), read=0, write=1500, at=10)
    record(registry, fp(system=SYSTEM + "b", turns=3), read=1500, write=30, at=20)
    later = record(registry, fp(system=SYSTEM + "c"), read=0, write=1, at=400)
    # "b" was read by its next turn; "a", and that next turn's own write, never were.
    assert later.wasted_writes == ((OWNER, 1300), (OWNER, 30))


@pytest.mark.parametrize(
    ("gaps_s", "expected"),
    [
        ([600, 900, 1200, 700], ("1h", "5m")),  # uses 10-20 min apart: a 5m entry would expire
        ([60, 90, 30, 45], ("5m", "5m")),  # close uses keep a 5m entry alive
        ([7200, 9000, 8000], ("5m", "5m")),  # rarer than hourly: even 1h expires
        ([900, 900], ("5m", "5m")),  # too few observations to decide
    ],
)
def test_ttl_follows_the_observed_reuse_gaps(
    gaps_s: list[float], expected: tuple[str, str]
) -> None:
    registry = PrefixRegistry()
    at = 0.0
    record(registry, fp(system=SYSTEM + "x", turns=1), read=0, write=1300, at=at)
    for i, gap in enumerate(gaps_s):
        at += gap
        # a new conversation each time: the prefix is reused, no conversation continues
        conversation = fingerprint(
            {"model": "claude-sonnet-4-6", "system": SYSTEM + "x",
             "messages": [{"role": "user", "content": f"conversation {i}"}]},
            None, 4.0,
        )  # fmt: skip
        record(registry, conversation, read=1300, write=10, at=at)
    assert registry.ttls(b"", conversation.family) == expected


def test_turn_gaps_decide_the_tail_ttl() -> None:
    registry = PrefixRegistry()
    for turn, at in enumerate((0, 700, 1500, 2400, 3100)):
        record(registry, fp(turns=2 * turn + 1), read=1300 if turn else 0, write=50, at=at)
    assert registry.ttls(b"", fp().family) == ("1h", "1h")


def test_a_breakpoint_moving_on_does_not_make_history_look_changed() -> None:
    marked = {"type": "text", "text": "turn 0", "cache_control": {"type": "ephemeral"}}
    first = fingerprint(
        {"model": "m", "system": SYSTEM, "messages": [{"role": "user", "content": [marked]}]},
        None,
        4.0,
    )
    later = fingerprint(
        {"model": "m", "system": SYSTEM, "messages": [
            {"role": "user", "content": [{"type": "text", "text": "turn 0"}]},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{**marked, "text": "turn 2"}]}]},
        None, 4.0,
    )  # fmt: skip
    assert later.conversation == first.conversation
    assert later.messages[0] == first.messages[0]


def test_the_providers_named_reason_wins_and_others_leave_ours() -> None:
    registry = PrefixRegistry()
    usage = Usage(input=10, cache_write_5m=1300)
    first = registry.record(
        fp(), usage, 0, 0, 1024, OWNER, message_id="msg_1", provider_reason="tools_changed"
    )
    assert first.cause == "tools_changed"  # we only knew it as cold
    assert registry.previous_message_id(fp(turns=3)) == "msg_1"
    second = registry.record(
        fp(system=SYSTEM + "v2"), usage, 5, 5, 1024, OWNER, provider_reason="unavailable"
    )
    assert second.cause == "system_changed"


def conversation(n: int, model: str = "claude-sonnet-4-6", turns: int = 1) -> Fingerprint:
    messages = [{"role": "user", "content": f"conversation {n}"}]
    messages += [
        {"role": "assistant" if i % 2 else "user", "content": f"turn {i}"} for i in range(1, turns)
    ]
    body = {"model": model, "system": SYSTEM, "messages": messages}
    return fingerprint(body, None, 4.0)


def judged(registry: PrefixRegistry, step: str, calls: int = 16) -> list[bool]:
    """`tail_pays` for `calls` calls of a step, each counted as the gateway counts it (the
    breakpoint stage's TailJudged, learned once the provider accepted the call)."""
    decisions = []
    for _ in range(calls):
        decisions.append(registry.tail_pays(b"", step, MODEL))
        registry.tail_judged(b"", step, MODEL)
    return decisions


def test_the_tail_judgement_reads_without_counting() -> None:
    registry = PrefixRegistry()
    usage = Usage(input=10, output=5, cache_write_5m=3000)
    for n in range(20):
        registry.record(conversation(n), usage, n, n, 1024, OWNER, step="synthesis")
    assert {registry.tail_pays(b"", "synthesis", MODEL) for _ in range(16)} == {False}


def test_a_step_whose_tails_are_never_read_stops_writing_them_but_keeps_probing() -> None:
    registry = PrefixRegistry()
    usage = Usage(input=10, output=5, cache_write_5m=3000)
    for n in range(20):  # the last step: nothing follows in its conversation
        registry.record(conversation(n), usage, n, n, 1024, OWNER, step="synthesis")
    decisions = judged(registry, "synthesis")
    assert decisions.count(True) == 2  # one probe in 8
    assert registry.tail_pays(b"", "other_step", MODEL)  # no evidence: write


def test_a_step_whose_tails_the_next_turn_reads_keeps_writing_them() -> None:
    registry = PrefixRegistry()
    written = Usage(input=10, output=5, cache_write_5m=3000)
    read = Usage(input=10, output=5, cache_read=3000, cache_write_5m=50)
    for n in range(20):
        registry.record(conversation(n), written, 2 * n, 2 * n, 1024, OWNER, step="search")
        next_turn = conversation(n, turns=3)
        registry.record(next_turn, read, 2 * n + 1, 2 * n + 1, 1024, OWNER, step="fetch")
    assert all(judged(registry, "search"))


def test_a_read_on_another_model_does_not_count_as_reading_the_tail() -> None:
    registry = PrefixRegistry()
    written = Usage(input=10, output=5, cache_write_5m=3000)
    other = Usage(input=10, output=5, cache_read=1000)  # its own model's family prefix
    for n in range(20):  # the cascade: the next step runs on another model
        registry.record(conversation(n), written, 2 * n, 2 * n, 1024, OWNER, step="search")
        switched = conversation(n, model="claude-opus-4-6", turns=3)
        registry.record(switched, other, 2 * n + 1, 2 * n + 1, 1024, OWNER, step="synthesis")
    assert not all(judged(registry, "search"))


def test_a_family_read_by_another_conversation_does_not_hide_the_next_turns_read() -> None:
    """Concurrent conversations of one family: B reading the shared prefix (the family's
    last write is A's) must not stop A's next turn from counting as reading A's tail."""
    registry = PrefixRegistry()
    written = Usage(input=10, output=5, cache_write_5m=3000)
    read = Usage(input=10, output=5, cache_read=3000, cache_write_5m=50)
    at = 0.0
    for n in range(0, 40, 2):
        registry.record(conversation(n), written, at, at, 1024, OWNER, step="chat")
        registry.record(conversation(n + 1), read, at + 1, at + 1, 1024, OWNER, step="chat")
        next_turn = conversation(n, turns=3)
        registry.record(next_turn, read, at + 2, at + 2, 1024, OWNER, step="chat")
        at += 3
    assert all(judged(registry, "chat"))


def test_a_conversation_that_was_its_familys_last_is_updated_as_two_puts_would() -> None:
    """The entry both keys hold is rewritten in place: each key answers with its own last
    call, and the bytes and the recency order are what storing each call anew leaves."""
    state = LearnedState.default()
    registry = PrefixRegistry(state)
    one, two = conversation(1), conversation(2)
    bytes_after, orders = [], []
    for at, (f, message_id) in enumerate(
        [(one, "msg_a"), (one, "msg_b"), (two, "msg_c"), (one, "msg_d"), (one, "msg_e")]
    ):
        usage = Usage(input=10, output=5, cache_read=0, cache_write_5m=0)
        registry.record(f, usage, at, at + 0.5, 1024, OWNER, message_id=message_id)
        bytes_after.append(state.bytes)
        keys = [cast(tuple[str, bytes, bytes], key) for key in state._entries]
        orders.append([k[2] for k in keys if k[0] in ("conversation", "family")])
        family = registry._families.get(b"", f.family)
        assert family is not None
        assert family.message_id == message_id
        assert registry.previous_message_id(f) == message_id
        assert registry._conversations.get(b"", f.conversation) is family
    assert registry.previous_message_id(two) == "msg_c"  # untouched by conversation one's calls
    assert bytes_after[0] == bytes_after[1]
    assert bytes_after[2] == bytes_after[3] == bytes_after[4]
    # The call's conversation, then the family, the most recent (the last put's order).
    assert orders[1] == [one.conversation, one.family]
    assert orders[4] == [two.conversation, one.conversation, one.family]
