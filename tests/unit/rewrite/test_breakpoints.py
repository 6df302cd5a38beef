"""Anthropic's breakpoint plan (rewrite/breakpoints.py) as a table: a body and what the plan
is told (policy, TTLs, the model's minimum, the registry's word on tails) -> where the
breakpoints go, the rewrite, the findings."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.rewrite.breakpoints import plan_breakpoints
from gateway.rewrite.request import LLMRequest

LONG = "word " * 200  # 250 tokens at 4 characters a token
MIN = 200  # the model's minimum cacheable prefix in these rows, in tokens
EPHEMERAL = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}


def body(system: Any = LONG, *turns: Any, **extra: Any) -> dict[str, Any]:
    roles = ("user", "assistant")
    messages = [{"role": roles[i % 2], "content": turn} for i, turn in enumerate(turns or ["Q"])]
    return {"model": "m", "system": system, "messages": messages, **extra}


def text(words: str, mark: dict[str, str] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": words}
    return block if mark is None else {**block, "cache_control": mark}


def marks(sent: dict[str, Any]) -> list[str]:
    """`where ttl` of each breakpoint, in prompt order."""
    found = []
    system = sent["system"]
    for i, block in enumerate(system if isinstance(system, list) else ()):
        if "cache_control" in block:
            found.append(f"system.{i} {block['cache_control'].get('ttl', '5m')}")
    for m, message in enumerate(sent["messages"]):
        content = message["content"]
        for b, block in enumerate(content if isinstance(content, list) else ()):
            if "cache_control" in block:
                found.append(f"messages.{m}.{b} {block['cache_control'].get('ttl', '5m')}")
    return found


ROWS: list[tuple[str, dict[str, Any], dict[str, Any], list[str], tuple[str, ...]]] = [
    ("the stable prefix and the newest block",
     body(LONG, "Q " + LONG), {}, ["system.0 5m", "messages.0.0 5m"], ()),
    ("under the model's minimum: nothing, reported",
     body("Short.", "Q"), {}, [], ("prefix_below_minimum",)),
    ("a stable prefix under the minimum: only the newest block",
     body("Short.", LONG), {}, ["messages.0.0 5m"], ()),
    ("respect: the client's own marks stay as they are",
     body([text(LONG, EPHEMERAL)], "Q " + LONG), {"policy": "respect"}, ["system.0 5m"], ()),
    ("replace: the client's marks give way to the plan",
     body([text(LONG)], [text("Q " + LONG, EPHEMERAL), text("Why?")]),
     {"policy": "replace"}, ["system.0 5m", "messages.0.0 5m", "messages.0.1 5m"], ()),
    ("a 1h tail makes the stable prefix 1h too (1h entries precede 5m ones)",
     body(LONG, "Q " + LONG), {"tail_ttl": "1h"}, ["system.0 1h", "messages.0.0 1h"], ()),
    ("a 1h stable prefix and a 5m tail",
     body(LONG, "Q " + LONG), {"stable_ttl": "1h"}, ["system.0 1h", "messages.0.0 5m"], ()),
    ("a tail that does not pay: the stable prefix alone",
     body(LONG, "Q " + LONG, "A", "Go"), {"tail": False}, ["system.0 5m"], ()),
    ("a tail that does not pay: the previous prompt's end is read back",
     body(LONG, "Q " + LONG, "A", "Go"), {"tail": False, "reread_messages": 1},
     ["system.0 5m", "messages.0.0 5m"], ()),
    ("automatic caching keeps its slot: no mark on the newest block",
     body(LONG, "Q " + LONG, cache_control=EPHEMERAL), {}, ["system.0 5m"], ()),
    ("more than four of the client's own marks (the API refuses them): none added",
     body([text(LONG, EPHEMERAL)], *[[text(f"t{i} " + LONG, EPHEMERAL)] for i in range(4)],
          *["Go on."] * 60),
     {}, ["system.0 5m", *[f"messages.{i}.0 5m" for i in range(4)]], ()),
    ("client marks further apart than a read looks back",
     body(LONG, *[[text(f"t{i}", EPHEMERAL if i in (0, 30) else None)] for i in range(31)]),
     {"policy": "respect"}, ["messages.0.0 5m", "messages.30.0 5m"], ("lookback_exceeded",)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("sent", "told", "where", "findings"), [row[1:] for row in ROWS], ids=[row[0] for row in ROWS]
)
def test_the_plan(
    sent: dict[str, Any], told: dict[str, Any], where: list[str], findings: tuple[str, ...]
) -> None:
    plan: dict[str, Any] = {"policy": "augment", "stable_ttl": "5m", "tail_ttl": "5m", **told}
    out = plan_breakpoints(
        LLMRequest("anthropic", sent), min_tokens=MIN, chars_per_token=4.0, **plan
    )
    assert marks(out.body) == where
    assert tuple(f.code for f in out.findings) == findings
    assert [r.rule for r in out.rewrites] == (["cache_breakpoints"] if out.body != sent else [])


def test_the_stable_end_and_the_moved_dates_where_the_volatile_rule_left_them() -> None:
    sent = body([text(LONG), text("Customer: Flo")], [text("Q " + LONG), text("Now: 10:32")])
    request = LLMRequest("anthropic", sent, stable_system_blocks=1, dates_at=(0, 1))
    out = plan_breakpoints(
        request, policy="augment", stable_ttl="5m", tail_ttl="5m", min_tokens=MIN,
        chars_per_token=4.0,
    )  # fmt: skip
    assert marks(out.body) == ["system.0 5m", "messages.0.0 5m"]


def test_a_long_tool_loop_gets_breakpoints_within_the_lookback() -> None:
    turns: list[Any] = ["Research " + LONG]
    for i in range(20):
        turns.append([{"type": "tool_use", "id": f"t{i}", "name": "search", "input": {}}])
        turns.append([{"type": "tool_result", "tool_use_id": f"t{i}", "content": "r"}])
    out = plan_breakpoints(
        LLMRequest("anthropic", body(LONG, *turns)), policy="augment", stable_ttl="5m",
        tail_ttl="5m", min_tokens=MIN, chars_per_token=4.0,
    )  # fmt: skip
    where = [int(w.split(".")[1]) for w in marks(out.body) if w.startswith("messages")]
    assert where == [2, 21, 40]  # 19 blocks apart back from the newest: each read finds one
    assert not out.findings


@pytest.mark.parametrize("policy", ["augment", "replace"])
def test_moved_dates_in_the_first_block_leave_no_prefix_to_mark(policy: Any) -> None:
    """Every slot is at or after the moved dates: nothing to mark, the prefix noted as
    below the minimum (it is empty), and no error."""
    first = text("Now: 10:32 " + LONG, EPHEMERAL)
    sent = {"model": "m", "messages": [{"role": "user", "content": [first]}]}
    request = LLMRequest("anthropic", sent, dates_at=(0, 0))
    out = plan_breakpoints(request, policy=policy, min_tokens=MIN, chars_per_token=4.0)
    assert out.body is sent
    assert [(f.code, f.detail) for f in out.findings] == [
        ("prefix_below_minimum", f"~0 tokens < {MIN}")
    ]
