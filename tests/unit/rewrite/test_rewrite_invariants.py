"""The rewriting invariants (docs/cache.md, "What the rewrites never change"), as properties.

Generated prompt families — system prompts built from static lines, lines that vary per
call (a customer's name, a login date, a "now" stamp), example dates, today's date,
tag-delimited sections and markdown headings, split over system blocks, messages and part
lists — are sent call after call through the volatile rule (and, on Anthropic, the whole
pipeline), learning as the endpoint does. Every call's rewrite must:
- change no text's role, except a dated line that varies moving from system to user;
- never move an example date or today's date alone;
- keep the structure: no block or message added or merged away, no part list turned into a
  string or a string into a part list, no line lifted out of its `<section>` — the moved
  dates' own part (or user message) at the end of the conversation the one addition;
- lose or add no line.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.rewrite.request import LLMRequest
from gateway.rewrite.volatile import is_volatile, volatile_openai
from tests.support.rewrite import NOW, accepted, context, memory
from tests.support.rewrite_diff import Context, judge, lines_by_role

CALLS = 7  # past LineStats' five requests: lines are learned within a family
EXAMPLE = 'Convert relative dates: "Thursday" → "2026-03-05".'
TODAY = "Today's date is 2026-11-24."
NAMES = ["Ann", "Bo", "Cy", "Di", "Ed", "Flo", "Gus"]


def _line(kind: str, k: int, call: int) -> str:
    """Line `k` of the template, as call `call` sends it."""
    return {
        "static": f"Rule {k}: answer politely and cite the policy.",
        "user": f"Customer: {NAMES[call]}",
        "login": f"Last login: 2026-10-{call + 1:02d}",
        "now": f"Current time: {(NOW + dt.timedelta(minutes=call)).isoformat()}",
        "example": EXAMPLE,
        "today": TODAY,
        "heading": f"# Part {k}",
    }[kind]


kinds = st.sampled_from(["static", "static", "static", "user", "login", "now", "example", "today"])
segments = st.lists(
    st.one_of(
        kinds,
        st.sampled_from(["heading"]),
        st.tuples(
            st.sampled_from(["env", "permissions instructions"]), st.lists(kinds, max_size=3)
        ),
    ),
    min_size=1,
    max_size=10,
)


def _lines(template: list[Any], call: int) -> list[str]:
    out: list[str] = []
    for k, segment in enumerate(template):
        if isinstance(segment, tuple):
            tag, inner = segment
            out += [f"<{tag}>", *(_line(kind, k * 10 + j, call) for j, kind in enumerate(inner))]
            out.append(f"</{tag}>")
        else:
            out.append(_line(segment, k, call))
    return out


def _split(lines: list[str], cuts: list[int]) -> list[str]:
    """The lines as texts, cut before the given positions (no text empty)."""
    points = sorted({c % len(lines) for c in cuts} - {0})
    bounds = [0, *points, len(lines)]
    return ["\n".join(lines[a:b]) for a, b in itertools.pairwise(bounds)]


Family = tuple[list[Any], list[int], bool, str]
families = st.tuples(
    segments,
    st.lists(st.integers(0, 40), max_size=2),  # where the system prompt is cut into texts
    st.booleans(),  # part lists (True) or strings
    st.sampled_from(["user-string", "user-parts", "tool-result"]),  # the newest turn
)


def _anthropic(family: Family, call: int) -> dict[str, Any]:
    template, cuts, parts, newest = family
    texts = _split(_lines(template, call), cuts)
    system: Any = (
        [{"type": "text", "text": t} for t in texts] if parts or len(texts) > 1 else texts[0]
    )
    question: Any = {
        "user-string": "Question?",
        "user-parts": [{"type": "text", "text": "Question?"}],
        "tool-result": [{"type": "tool_result", "tool_use_id": "t1", "content": "42"}],
    }[newest]
    tool_use = {"type": "tool_use", "id": "t1", "name": "calc", "input": {}}
    answer: Any = [tool_use] if newest == "tool-result" else "Sure."
    messages: list[Any] = [
        {"role": "user", "content": "Compute."},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": question},
    ]
    return {"model": "claude-sonnet-4-6", "max_tokens": 9, "system": system, "messages": messages}


def _openai(family: Family, call: int, responses: bool) -> dict[str, Any]:
    template, cuts, parts, newest = family
    texts = _split(_lines(template, call), cuts)
    kind = "input_text" if responses else "text"
    body: dict[str, Any] = {"model": "gpt-4.1"}
    if responses and len(texts) > 1:
        body["instructions"] = texts.pop(0)
    developer: list[Any] = [
        {"role": "developer", "content": [{"type": kind, "text": t} for t in texts]}
        if parts
        else {"role": "developer", "content": t}
        for t in (texts if not parts else [texts[0]])
    ]
    if parts and len(texts) > 1:  # the rest of the texts: parts of a second message
        developer[0] = {"role": "developer", "content": [{"type": kind, "text": texts[0]}]}
        developer.append(
            {"role": "developer", "content": [{"type": kind, "text": t} for t in texts[1:]]}
        )
    question: Any = "Question?" if newest != "user-parts" else [{"type": kind, "text": "Q?"}]
    conversation = [*developer, {"role": "user", "content": question}]
    if newest == "tool-result" and responses:
        conversation += [
            {"type": "function_call", "call_id": "c1", "name": "calc", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "42"},
        ]
    elif newest == "tool-result":
        conversation += [
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
             "function": {"name": "calc", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ]  # fmt: skip
    body["input" if responses else "messages"] = conversation
    return body


def _check(
    client: dict[str, Any], upstream: dict[str, Any], rules: set[str], anthropic: bool
) -> None:
    before, after = lines_by_role(client), lines_by_role(upstream)
    assert sum(before.values(), Counter()) == sum(after.values(), Counter())  # none lost or added
    assert before["assistant"] == after["assistant"]
    left = before["system"] - after["system"]
    assert after["system"] - before["system"] == Counter()  # nothing joins the system prompt
    assert all(is_volatile(line) for line in left), left  # only dated lines change role
    assert EXAMPLE not in left
    assert TODAY not in left
    assert after["user"] - before["user"] == left
    # Structure: blocks, messages, part lists, sections (tests/support/rewrite_diff.py).
    verdict = judge(client, upstream, rules, Context(varying_lines=frozenset(left)), anthropic)
    assert verdict.structure_changes == [], verdict.structure_changes
    assert verdict.unexplained == [], verdict.unexplained


@settings(max_examples=120, deadline=None)
@given(family=families)
def test_the_anthropic_pipeline_keeps_roles_and_structure(family: Family) -> None:
    ctx = context()
    for call in range(CALLS):
        body = _anthropic(family, call)
        done = accepted(LLMRequest("anthropic", body), ctx)
        _check(body, done.body, {r.rule for r in done.rewrites}, anthropic=True)


@settings(max_examples=120, deadline=None)
@given(family=families, responses=st.booleans())
def test_the_openai_rule_keeps_roles_and_structure(family: Family, responses: bool) -> None:
    learned = memory()
    for call in range(CALLS):
        body = _openai(family, call, responses)
        done = volatile_openai(LLMRequest("openai", body), "move", learned.lines, NOW)
        learned.learn(done.observations)
        _check(body, done.body, {r.rule for r in done.rewrites}, anthropic=False)
