"""The rewrite stages, case by case, and the properties the pipeline must keep."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.emulator.anthropic.prompt import build_prompt
from gateway.emulator.anthropic.validation import check_request
from gateway.rewrite.pipeline import rewrite
from gateway.rewrite.request import LLMRequest
from gateway.rewrite.tool_json import stable_tool_json
from gateway.rewrite.volatile import is_volatile, volatile
from gateway.rewrite.whitespace import canonical_whitespace, whitespace
from gateway.wire.usage import Usage
from tests.support.rewrite import CATALOG, NOW, context, memory

MODEL = "claude-sonnet-4-6"  # minimum cacheable prefix: 1,024 tokens
LATER = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
POLICY = "Answer billing questions politely and cite the refund policy when relevant.\n" * 60


def req(**body: Any) -> LLMRequest:
    return LLMRequest("anthropic", {"model": MODEL, "max_tokens": 100, **body})


def marks(body: dict[str, Any]) -> list[tuple[str, Any]]:
    """(where, ttl) of every cache_control in the body, in prompt order."""
    found = []
    for i, tool in enumerate(body.get("tools") or ()):
        if "cache_control" in tool:
            found.append((f"tools.{i}", tool["cache_control"].get("ttl", "5m")))
    system = body.get("system")
    for i, block in enumerate(system if isinstance(system, list) else ()):
        if "cache_control" in block:
            found.append((f"system.{i}", block["cache_control"].get("ttl", "5m")))
    for m, message in enumerate(body["messages"]):
        content = message["content"]
        for b, block in enumerate(content if isinstance(content, list) else ()):
            if "cache_control" in block:
                found.append((f"messages.{m}.{b}", block["cache_control"].get("ttl", "5m")))
    return found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("a  \r\nb\t\r\n", "a\nb"),
        ("\n\n  indented first line\n", "  indented first line"),
        ("x\ry", "x\ny"),
        ("keep  inner  spaces", "keep  inner  spaces"),
    ],
)
def test_canonical_whitespace(text: str, expected: str) -> None:
    assert canonical_whitespace(text) == expected


def test_whitespace_rewrites_history_identically_each_turn() -> None:
    turn = {"role": "user", "content": "What is my balance?  \r\n"}
    first = whitespace(req(messages=[turn]), enabled=True)
    second = whitespace(
        req(messages=[turn, {"role": "assistant", "content": "It is $4."}, turn]), enabled=True
    )
    assert first.body["messages"][0] == second.body["messages"][0]
    assert first.body["messages"][0]["content"] == "What is my balance?"
    assert [r.rule for r in first.rewrites] == ["whitespace"]


def test_a_switched_off_rule_still_reports() -> None:
    request = whitespace(req(system="drift  \n", messages=[]), enabled=False)
    assert not request.changed
    assert [f.code for f in request.findings] == ["whitespace_drift"]


def test_whitespace_only_text_is_left_for_the_provider_to_judge() -> None:
    request = whitespace(req(messages=[{"role": "user", "content": "  \n"}]), enabled=True)
    assert request.body["messages"][0]["content"] == "  \n"


def test_tools_keep_their_first_seen_form_and_order() -> None:
    learned = memory()
    forms = learned.tools
    search = {"name": "search", "description": "Search", "input_schema": {"type": "object"}}
    fetch = {"name": "fetch", "input_schema": {"type": "object", "properties": {}}}
    first = stable_tool_json(req(tools=[search, fetch], messages=[]), forms, enabled=True)
    assert not first.changed
    learned.learn(first.observations)  # as the endpoint does once the provider accepted the call
    shuffled = [
        {"input_schema": {"properties": {}, "type": "object"}, "name": "fetch"},
        {"input_schema": {"type": "object"}, "description": "Search", "name": "search"},
    ]
    again = stable_tool_json(req(tools=shuffled, messages=[]), forms, enabled=True)
    assert again.changed
    assert [list(tool) for tool in again.body["tools"]] == [list(search), list(fetch)]
    assert again.body["tools"] == [search, fetch]


def test_a_call_the_provider_refused_teaches_nothing() -> None:
    forms = memory().tools
    search = {"name": "search", "description": "Search", "input_schema": {"type": "object"}}
    refused = stable_tool_json(req(tools=[search], messages=[]), forms, enabled=True)
    assert refused.observations  # not learned: the endpoint keeps them only for an accepted call
    shuffled = [dict(reversed(search.items()))]
    own = stable_tool_json(req(tools=shuffled, messages=[]), forms, enabled=True)
    assert not own.changed  # the refused call's form was never kept


@pytest.mark.parametrize(
    "line",
    [
        "Current time: 2026-11-24T10:32:11Z",
        "Today is Monday, April 17.",
        "Date: Tue, 24 Nov 2026 10:32:00 +0000",
        "As of November 24, 2026 the plan costs $10.",
        "timestamp: 1795561470",
        "The time is 10:32 AM.",
        "Report for 11/24/2026",
    ],
)
def test_timestamps_in_many_shapes_are_volatile(line: str) -> None:
    assert is_volatile(line)


@pytest.mark.parametrize(
    "line", ["You are a helpful agent.", "Use at most 3 tools.", "Version 2.1.0", "Call 555-1234"]
)
def test_ordinary_lines_are_not(line: str) -> None:
    assert not is_volatile(line)


def test_dates_move_to_the_end_of_the_newest_turn() -> None:
    system = "You are Acme's agent.\nCurrent time: 2026-11-24 10:32\n" + POLICY
    turn = [{"role": "user", "content": "Hello"}]
    moved = volatile(req(system=system, messages=turn), "move", memory().lines, NOW)
    stable = moved.body["system"]  # a string system stays a string
    assert "Current time" not in stable
    assert moved.body["messages"][0]["content"] == [
        {"type": "text", "text": "Hello"},
        {"type": "text", "text": "Current time: 2026-11-24 10:32"},
    ]
    assert moved.dates_at == (0, 1)
    assert [f.code for f in moved.findings] == ["timestamp_in_prefix"]
    truncated = volatile(req(system=system, messages=turn), "truncate_to_day", memory().lines, NOW)
    assert "Current time: 2026-11-24\n" in truncated.body["system"]
    reported = volatile(req(system=system, messages=turn), "report_only", memory().lines, NOW)
    assert not reported.changed
    assert reported.findings == moved.findings


def test_lines_that_vary_per_user_are_learned_and_kept_in_their_block() -> None:
    """A block of their own (the one place a move would pay on this
    wire) changes the system's structure: the learned line stays, reported."""
    learned = memory(learn_volatile_after=5)
    results = []
    for name in ("Ann", "Bo", "Cy", "Di", "Ed", "Flo"):
        system = f"You are Acme's agent.\nCustomer: {name}\n{POLICY}"
        results.append(volatile(req(system=system, messages=[]), "move", learned.lines, NOW))
        learned.learn(results[-1].observations)  # as the endpoint does once the provider accepts
    assert not results[0].findings  # not yet learned: too few requests of the family
    last = results[-1]
    assert [f.code for f in last.findings] == ["user_content_in_prefix", "volatile_line_kept"]
    assert not last.changed
    assert last.body["system"] == f"You are Acme's agent.\nCustomer: Flo\n{POLICY}"


# Claude Code's memory instructions, in shape: an example date in a
# tag-delimited section, and one outside any section.
MEMORY = (
    "<type>\n"
    '    <when_to_save>Convert relative dates: "Thursday" → "2026-03-05".</when_to_save>\n'
    "</type>\n"
    "Example: a project note dated 2026-03-05 says the freeze starts then.\n"
)


def family(texts: list[Any], **body: Any) -> list[LLMRequest]:
    """Each system text sent in turn by one tenant, as the endpoint does: learned once accepted."""
    learned = memory(learn_volatile_after=5)
    out = []
    for text in texts:
        sent = req(system=text, messages=[{"role": "user", "content": "Hi"}], **body)
        out.append(volatile(sent, "move", learned.lines, NOW))
        learned.learn(out[-1].observations)
    return out


@pytest.mark.parametrize(
    "dated",
    [
        MEMORY,  # an example date in static instructions, in a section and out of one
        "Today's date is 2026-11-24.\n",  # today's date alone: the same on every call
        "Today is Tuesday, November 24.\n",
    ],
)
def test_dates_that_do_not_vary_stay_in_the_system_prompt(dated: str) -> None:
    """A date shape alone moves nothing; nor is it reported."""
    for result in family([f"You are Acme's agent.\n{dated}{POLICY}"] * 7):
        assert not result.changed
        assert not result.findings


def test_a_date_learned_to_vary_across_the_family_moves() -> None:
    systems = [f"You are Acme's agent.\nLast login: 2026-10-0{i}\n{POLICY}" for i in range(1, 8)]
    results = family(systems)
    assert not results[0].changed  # not yet learned, and no "now" stamp
    last = results[-1]
    assert last.body["messages"][-1]["content"][-1] == {
        "type": "text",
        "text": "Last login: 2026-10-07",
    }
    assert "Last login" not in last.body["system"]


def test_a_now_stamp_in_a_section_stays_and_is_reported() -> None:
    system = f"You are Acme's agent.\n<env>\nCurrent time: 2026-11-24 10:32\n</env>\n{POLICY}"
    [result] = family([system])
    assert not result.changed
    assert [f.code for f in result.findings] == ["timestamp_in_prefix", "volatile_line_kept"]
    assert "inside a <section>" in result.findings[-1].detail


def test_a_now_stamp_that_would_empty_its_block_stays() -> None:
    blocks = [
        {"type": "text", "text": POLICY, "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Current time: 2026-11-24T10:32:11Z"},
    ]
    [result] = family([blocks])
    assert not result.changed
    assert "would empty its block" in result.findings[-1].detail


def test_tool_results_stay_first_in_their_turn() -> None:
    result: Any = {"type": "tool_result", "tool_use_id": "t1", "content": "42"}
    call: Any = {"type": "tool_use", "id": "t1", "name": "calc", "input": {}}
    messages = [
        {"role": "user", "content": "Compute."},
        {"role": "assistant", "content": [call]},
        {"role": "user", "content": [result]},
    ]
    system = "Now: Tuesday, November 24, 10:32\n" + POLICY
    moved = volatile(req(system=system, messages=messages), "move", memory().lines, NOW)
    assert [r.rule for r in moved.rewrites] == ["volatile_moved"]
    assert moved.body["messages"][2]["content"][0] == result


def test_breakpoints_at_the_stable_end_and_the_newest_block() -> None:
    request = rewrite(
        req(
            system="Current time: 2026-11-24 10:32\n" + POLICY,
            messages=[{"role": "user", "content": "Hello"}],
        ),
        context(),
    )
    # The newest turn now ends with the time: the breakpoint stays before it.
    assert marks(request.body) == [("system.0", "5m"), ("messages.0.0", "5m")]
    follow_up = rewrite(
        req(
            system=POLICY,
            messages=[
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi!"},
                {"role": "user", "content": "Refund?"},
            ],
        ),
        context(),
    )
    assert marks(follow_up.body) == [("system.0", "5m"), ("messages.2.0", "5m")]


def test_siblings_sharing_a_document_get_a_breakpoint_on_it() -> None:
    question = {"type": "text", "text": "Sub-question 3?"}
    document = {"type": "text", "text": POLICY}
    request = rewrite(
        req(system="Short.", messages=[{"role": "user", "content": [document, question]}]),
        context(),
    )
    assert marks(request.body) == [("messages.0.0", "5m"), ("messages.0.1", "5m")]


def test_no_breakpoint_under_the_models_minimum() -> None:
    request = rewrite(req(system="Short.", messages=[{"role": "user", "content": "Hi"}]), context())
    assert marks(request.body) == []
    assert "prefix_below_minimum" in [f.code for f in request.findings]


def test_long_tool_loops_get_breakpoints_within_the_lookback() -> None:
    messages: list[Any] = [{"role": "user", "content": "Research this."}]
    for i in range(30):
        messages.append(
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": f"t{i}", "name": "search", "input": {}}],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": f"t{i}", "content": "result " * 40}
                ],
            }
        )
    request = rewrite(req(system=POLICY, messages=messages), context())
    where = [w for w, _ in marks(request.body)]
    assert len(where) == 4
    positions = [int(w.split(".")[1]) for w in where if w.startswith("messages")]
    assert positions[-1] == len(messages) - 1
    assert all(b - a <= 19 for a, b in itertools.pairwise(positions))


def test_the_clients_breakpoints_count_and_their_ttl_order_holds() -> None:
    block = {"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    request = rewrite(
        req(system=POLICY, messages=[{"role": "user", "content": [block]}]), context()
    )
    assert marks(request.body) == [("system.0", "1h"), ("messages.0.0", "1h")]
    respected = rewrite(
        req(system=POLICY, messages=[{"role": "user", "content": [block]}]),
        context(breakpoints="respect"),
    )
    assert marks(respected.body) == [("messages.0.0", "1h")]
    four = [{**block, "text": f"part {i}"} for i in range(4)]
    full = rewrite(req(system=POLICY, messages=[{"role": "user", "content": four}]), context())
    assert len(marks(full.body)) == 4


def test_client_breakpoints_further_apart_than_the_lookback_are_reported() -> None:
    mark = {"type": "ephemeral"}
    turns: list[Any] = [
        {
            "role": "user" if i % 2 == 0 else "assistant",
            "content": [{"type": "text", "text": f"t{i}"}],
        }
        for i in range(31)
    ]
    turns[0]["content"][0]["cache_control"] = mark
    turns[30]["content"][0]["cache_control"] = mark
    respected = rewrite(req(system=POLICY, messages=turns), context(breakpoints="respect"))
    assert "lookback_exceeded" in [f.code for f in respected.findings]
    planned = rewrite(req(system=POLICY, messages=turns), context())
    assert "lookback_exceeded" not in [f.code for f in planned.findings]


def test_top_level_automatic_caching_keeps_its_slot() -> None:
    request = rewrite(
        req(
            system=POLICY,
            cache_control={"type": "ephemeral"},
            messages=[{"role": "user", "content": "Hi"}],
        ),
        context(),
    )
    assert marks(request.body) == [("system.0", "5m")]


# Properties, over requests built from arbitrary pieces.

texts = st.text(alphabet=st.sampled_from("ab \n\r\t.:0123456789"), min_size=1, max_size=40).filter(
    lambda t: t.strip()
)
lines = st.lists(
    st.one_of(
        texts, st.sampled_from(["Current time: 2026-11-24T10:32:11Z", "Today is Monday, April 17"])
    ),
    min_size=1,
    max_size=6,
)
system_texts = lines.map(lambda ls: "\n".join(ls) + "\n" + POLICY)
conversations = st.lists(texts, min_size=1, max_size=45).map(
    lambda turns: [
        {"role": "user" if i % 2 == 0 else "assistant", "content": text}
        for i, text in enumerate(turns[: len(turns) // 2 * 2 + 1])
    ]
)


def visible_lines(body: dict[str, Any]) -> list[str]:
    system = body.get("system") or ""
    parts = [system] if isinstance(system, str) else [b["text"] for b in system]
    for message in body["messages"]:
        content = message["content"]
        parts += [content] if isinstance(content, str) else [b["text"] for b in content]
    return sorted(
        canonical_whitespace(line)
        for part in parts
        for line in canonical_whitespace(part).split("\n")
        if canonical_whitespace(line)
    )


@settings(max_examples=150, deadline=None)
@given(system=system_texts, messages=conversations)
def test_pipeline_properties(system: str, messages: list[Any]) -> None:
    original = req(system=system, messages=messages)
    # Days after the generated stamps, as the clock these properties ran on had it: a moved
    # "now" stamp that leaves its text opening on a blank line is not idempotent yet.
    once = rewrite(original, context(now=LATER))
    twice = rewrite(LLMRequest("anthropic", once.body), context(now=LATER))
    assert twice.body == once.body  # idempotent
    assert len(marks(once.body)) <= 4
    assert visible_lines(once.body) == visible_lines(original.body)  # nothing lost or added
    spec = CATALOG.resolve(MODEL)
    assert spec is not None
    check_request(once.body, "2026-10-21", counting=False)  # the real rules accept it
    prompt = build_prompt(once.body, spec)
    through = 0
    for block in prompt.blocks:
        through += block.tokens
        if block.ttl is not None:
            assert through >= spec.min_cacheable_tokens  # never a breakpoint under the minimum


def test_auto_ttl_is_one_hour_where_the_registry_saw_reuse_minutes_apart() -> None:
    learned = memory()
    ctx = context(learned)
    calls = []
    for i in range(5):
        done = rewrite(req(system=POLICY, messages=[{"role": "user", "content": f"Q{i}"}]), ctx)
        assert done.fingerprint is not None
        usage = Usage(input=5, cache_read=1300 if i else 0, cache_write_5m=20)
        learned.prefixes.record(done.fingerprint, usage, i * 900.0, i * 900.0, 1024, ("o",))
        calls.append(done)
    assert marks(calls[0].body) == [("system.0", "5m"), ("messages.0.0", "5m")]  # not learned
    later = rewrite(req(system=POLICY, messages=[{"role": "user", "content": "Q9"}]), ctx)
    assert marks(later.body) == [("system.0", "1h"), ("messages.0.0", "5m")]
    fixed = rewrite(
        req(system=POLICY, messages=[{"role": "user", "content": "Q9"}]), context(cache_ttl="5m")
    )
    assert marks(fixed.body) == [("system.0", "5m"), ("messages.0.0", "5m")]


def test_a_step_whose_tails_do_not_pay_gets_only_the_stable_prefix_marked() -> None:
    learned = memory()
    ctx = context(learned)
    history: Any = [
        {"role": "user", "content": "Question " + "words " * 900},
        {"role": "assistant", "content": "An answer."},
        {"role": "user", "content": "Write it up."},
    ]
    body: dict[str, Any] = {"system": POLICY, "messages": history}
    normal = rewrite(
        LLMRequest(
            "anthropic", {"model": MODEL, "max_tokens": 9, **body}, "synthesis", routing=False
        ),
        ctx,
    )
    assert [where for where, _ in marks(normal.body)] == ["system.0", "messages.2.0"]
    written = Usage(input=10, output=5, cache_write_5m=3000)
    for n in range(20):  # synthesis ends its conversations: its tails are never read
        fp = rewrite(
            req(system=POLICY, messages=[{"role": "user", "content": f"c{n}"}]), ctx
        ).fingerprint
        assert fp is not None
        learned.prefixes.record(
            fp, written, n, n, 1024, ("anthropic", MODEL, "synthesis"), step="synthesis"
        )
    lean = rewrite(
        LLMRequest(
            "anthropic", {"model": MODEL, "max_tokens": 9, **body}, "synthesis", routing=False
        ),
        ctx,
    )
    assert [where for where, _ in marks(lean.body)] == ["system.0"]


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "0"}, {"role": "assistant", "content": "0:00"}],
        [{"role": "user", "content": "Current time: 2026-11-24T10:32:11Z"}],
    ],
)
def test_a_time_alone_in_the_newest_turn_is_planned_the_same_as_text_or_blocks(
    messages: list[Any],
) -> None:
    """Found by the property test: an assistant turn or a string content holding only a
    time was marked as moved dates once its content had become blocks, not before."""
    once = rewrite(req(system="0\n" + POLICY, messages=messages), context())
    assert rewrite(LLMRequest("anthropic", once.body), context()).body == once.body
