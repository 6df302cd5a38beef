"""The learning stages as tables: (body, learned memory) -> (body, rewrites, findings,
observations). A stage reads the memory and never writes it: the same row gives the same
outcome every time, and the memory holds what it held before."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from gateway.cache.bounded import LearnedState
from gateway.cache.learned import LearnedMemory
from gateway.rewrite.fingerprint import fingerprint, prompt_family, unmarked
from gateway.rewrite.memo import Derived
from gateway.rewrite.openai_text import layers
from gateway.rewrite.pipeline import ANTHROPIC_STAGES, OPENAI_STAGES, rewrite
from gateway.rewrite.request import LLMRequest
from gateway.rewrite.snapshot import LinesSeen, Observation, TailJudged, ToolsSeen
from gateway.rewrite.tool_json import identity, stable_tool_json
from gateway.rewrite.volatile import line_key, volatile, volatile_openai
from gateway.wire.usage import Usage
from tests.support.fixtures import FIXTURES, load
from tests.support.rewrite import NOW, Outcome, accepted, context, memory, outcome

TENANT = b"tenant"
MODEL = "claude-sonnet-4-6"
POLICY = "Answer billing questions politely and cite the refund policy when relevant."
SEARCH = {"name": "search", "description": "Search", "input_schema": {"type": "object"}}
FETCH = {"name": "fetch", "input_schema": {"type": "object", "properties": {}}}
SHUFFLED = [dict(reversed(FETCH.items())), dict(reversed(SEARCH.items()))]
BOTH = (identity(SEARCH), identity(FETCH))
TOOLS_SEEN = ToolsSeen(
    TENANT, ((BOTH[0], orjson.dumps(SEARCH)), (BOTH[1], orjson.dumps(FETCH))), BOTH
)
Stage = Callable[[LLMRequest, LearnedMemory], LLMRequest]


def marks(body: dict[str, Any]) -> list[Any]:
    """Every breakpoint the body carries."""
    return [block for block in _blocks(body) if "cache_control" in block]


def _blocks(body: dict[str, Any]) -> list[Any]:
    system = body.get("system")
    found = list(system) if isinstance(system, list) else []
    for message in body["messages"]:
        content = message["content"]
        found += content if isinstance(content, list) else []
    return found


def tool_json(request: LLMRequest, learned: LearnedMemory) -> LLMRequest:
    return stable_tool_json(request, learned.tools, enabled=True)


def anthropic_volatile(request: LLMRequest, learned: LearnedMemory) -> LLMRequest:
    return volatile(request, "move", learned.lines, NOW)


def openai_volatile(request: LLMRequest, learned: LearnedMemory) -> LLMRequest:
    return volatile_openai(request, "move", learned.lines, NOW)


def anthropic(**body: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "Hi"}],
        **body,
    }


def chat(system: str) -> dict[str, Any]:
    return {"model": "gpt-4.1", "messages": [{"role": "system", "content": system},
                                             {"role": "user", "content": "Hi"}]}  # fmt: skip


def customer(name: str) -> str:
    return f"Agent.\nCustomer: {name}\n{POLICY}"


def lines_seen(system: str, tools: list[Any] | None = None) -> LinesSeen:
    """What the volatile rule observes of a system prompt whose first line holds no date."""
    lines = system.split("\n")
    family = prompt_family(TENANT, unmarked(tools or []), lines[0].encode())
    return LinesSeen(TENANT, family, frozenset(map(line_key, lines)))


# Five customers of one family: its lines are judged from its fifth request on (counted).
CUSTOMERS = tuple(lines_seen(customer(name)) for name in ("Ann", "Bo", "Cy", "Di", "Ed"))
STAMP = "Current time: 2026-11-24T10:39:00Z"  # a minute before NOW: a "now" stamp
TABLE: list[tuple[str, Stage, dict[str, Any], tuple[Observation, ...], Outcome]] = [
    ("new tools: kept as sent, their forms and order observed",
     tool_json, anthropic(tools=[SEARCH, FETCH]), (),
     (anthropic(tools=[SEARCH, FETCH]), (), (), (TOOLS_SEEN,))),
    ("known tools in another form and order: sent in the first",
     tool_json, anthropic(tools=SHUFFLED), (TOOLS_SEEN,),
     (anthropic(tools=[SEARCH, FETCH]), ("tool_json",), ("unstable_tool_json",), ())),
    ("one known tool: nothing to observe",
     tool_json, anthropic(tools=[SEARCH]), (TOOLS_SEEN,),
     (anthropic(tools=[SEARCH]), (), (), ())),
    ("a family not yet learned: its lines observed, nothing moved",
     anthropic_volatile, anthropic(system=customer("Flo")), CUSTOMERS[:3],
     (anthropic(system=customer("Flo")), (), (), (lines_seen(customer("Flo")),))),
    ("a learned per-user line: kept in its block on Anthropic, reported",
     anthropic_volatile, anthropic(system=customer("Flo")), CUSTOMERS,
     (anthropic(system=customer("Flo")), (), ("user_content_in_prefix", "volatile_line_kept"),
      (lines_seen(customer("Flo")),))),
    ("a now stamp: to the end of the newest turn",
     anthropic_volatile, anthropic(system=f"Agent.\n{STAMP}\n{POLICY}"), (),
     (anthropic(system=f"Agent.\n{POLICY}", messages=[{"role": "user", "content": [
         {"type": "text", "text": "Hi"}, {"type": "text", "text": STAMP}]}]),
      ("volatile_moved",), ("timestamp_in_prefix",),
      (lines_seen(f"Agent.\n{STAMP}\n{POLICY}"),))),
    ("a learned per-user line on OpenAI: to the end of its text",
     openai_volatile, chat(customer("Flo")), CUSTOMERS,
     (chat(f"Agent.\n{POLICY}\nCustomer: Flo"), ("volatile_moved",),
      ("user_content_in_prefix",), (lines_seen(customer("Flo")),))),
]  # fmt: skip


@pytest.mark.parametrize(
    ("stage", "body", "learned", "expected"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_a_stage_reads_what_was_learned_and_returns_what_it_saw(
    stage: Stage, body: dict[str, Any], learned: tuple[Observation, ...], expected: Outcome
) -> None:
    state = LearnedState.default()
    held = memory(*learned, state=state)
    before = state.bytes
    first = outcome(stage(LLMRequest("anthropic", body, tenant=TENANT), held))
    assert first == expected
    again = outcome(stage(LLMRequest("anthropic", body, tenant=TENANT), held))
    assert again == first  # the same body over the same memory: the same outcome
    assert state.bytes == before  # read, never written


def test_the_pipeline_rewrites_a_body_the_same_until_what_it_saw_is_learned() -> None:
    """A step whose conversation tails are never read writes one tail in eight: before, the
    plan's read of the registry counted the call, so the sixth rewrite of a body differed
    from the first. Now the count is an observation, learned once the call is accepted."""
    learned = memory()
    ctx = context(learned)
    written = Usage(input=10, output=5, cache_write_5m=3000)
    for n in range(20):  # synthesis ends its conversations: its tails are never read
        body = anthropic(system=POLICY * 80, messages=[{"role": "user", "content": f"c{n}"}])
        fp = fingerprint(body, None, 4.0, TENANT)
        learned.prefixes.record(fp, written, n, n, 1024, ("o",), step="synthesis")
    history = [
        {"role": "user", "content": "Question " + "words " * 900},
        {"role": "assistant", "content": "An answer."},
        {"role": "user", "content": "Write it up."},
    ]
    sent = LLMRequest("anthropic", anthropic(system=POLICY * 80, messages=history),
                      "synthesis", tenant=TENANT, routing=False)  # fmt: skip
    plans = {orjson.dumps(rewrite(sent, ctx).body) for _ in range(16)}
    assert len(plans) == 1  # read sixteen times: one plan, the stable prefix alone
    observed = rewrite(sent, ctx).observations
    assert TailJudged(TENANT, "synthesis", MODEL) in observed
    tails = [len(marks(accepted(sent, ctx).body)) for _ in range(16)]
    assert tails.count(2) == 2  # accepted sixteen times: one probe in eight writes a tail


@pytest.mark.parametrize("openai", [False, True])
def test_the_tools_bytes_the_volatile_rule_keeps_are_those_of_the_body_sent(openai: bool) -> None:
    """The fingerprint reuses the volatile rule's serialization of the tools: no later stage
    may change them but for their breakpoints."""
    tools = [dict(SEARCH, description="Search  \r\n"), FETCH]
    if openai:
        body = chat(customer("Flo")) | {"model": "gpt-5.6-terra", "tools": tools}
        stages = OPENAI_STAGES
    else:
        body = anthropic(system=customer("Flo") * 40, tools=tools)
        stages = ANTHROPIC_STAGES
    provider = "openai" if openai else "anthropic"
    out = rewrite(LLMRequest(provider, body, tenant=TENANT), context(), stages)
    assert out.prompt_tools is not None
    sent = layers(out.body) if openai else out.body
    fresh = fingerprint(sent, out.stable_system_blocks, 4.0, TENANT)  # ratio: prompt_tokens only
    assert out.fingerprint is not None
    assert out.fingerprint.family == fresh.family
    assert out.fingerprint.tools == fresh.tools


@pytest.mark.parametrize(
    ("provider", "tools", "kept"),
    [
        ("anthropic", [SEARCH, FETCH], True),
        ("anthropic", [SEARCH, FETCH | {"cache_control": {"type": "ephemeral"}}], False),
        ("openai", [SEARCH, FETCH], False),  # reshaped before they are digested
    ],
)
def test_tool_json_hands_on_the_tools_bytes_only_as_unmarked_would_make_them(
    provider: str, tools: list[Any], kept: bool
) -> None:
    learned = memory()
    for memo in (None, learned.memo):
        request = LLMRequest(provider, {"tools": tools, "messages": []}, tenant=TENANT)
        out = stable_tool_json(request, learned.tools, True, memo)
        assert out.prompt_tools == (unmarked(tools) if kept else None)


def _volatile_with(memo: bool) -> Stage:
    def stage(request: LLMRequest, learned: LearnedMemory) -> LLMRequest:
        view = learned.memo if memo else None
        if request.provider == "openai":
            return volatile_openai(request, "move", learned.lines, NOW, view)
        return volatile(request, "move", learned.lines, NOW, view)

    return stage


def _long(body: dict[str, Any]) -> dict[str, Any]:
    """The body with its system text made long enough to be memoized (rewrite/memo.py)."""
    more = "\n" + "\n".join([POLICY] * 20)
    if "system" in body:
        return {**body, "system": body["system"] + more}
    first = body["messages"][0]
    return {
        **body,
        "messages": [{**first, "content": first["content"] + more}, *body["messages"][1:]],
    }


VOLATILE_ROWS = [row for row in TABLE if row[1] in (anthropic_volatile, openai_volatile)]


@pytest.mark.parametrize(
    ("stage", "body", "learned"),
    [row[1:4] for row in VOLATILE_ROWS],
    ids=[row[0] for row in VOLATILE_ROWS],
)
def test_the_volatile_rule_is_the_same_found_by_identity_by_value_or_derived(
    stage: Stage, body: dict[str, Any], learned: tuple[Observation, ...]
) -> None:
    """A system part seen before is found by its texts' identity (a body that shares an
    earlier accepted call's parsed objects), by value (an equal body parsed anew), or derived
    (no memo): the outcome is the same, and the lookup by identity derives nothing."""
    provider = "openai" if stage is openai_volatile else "anthropic"
    long = _long(body)

    def rule(sent: dict[str, Any], held: LearnedMemory, memo: bool = True) -> Outcome:
        out = _volatile_with(memo)(LLMRequest(provider, sent, tenant=TENANT), held)
        kept = [o for o in out.observations if isinstance(o, Derived)]
        held.learn(kept)  # what it derived, kept as once the call is accepted
        seen = tuple(o for o in out.observations if not isinstance(o, Derived))
        return (*outcome(out)[:3], seen, bool(kept))

    derived = rule(long, memory(*learned), memo=False)
    held = memory(*learned)
    assert rule(long, held)[:4] == derived[:4]
    parsed = orjson.loads(orjson.dumps(long))
    assert rule(parsed, held)[:4] == derived[:4]  # by value (kept by identity for the next)
    assert rule(long, held) == derived == rule(parsed, held)  # by identity: nothing derived
    assert not derived[4]


@pytest.mark.parametrize("name", ["codex-projects", "claude-long"])
def test_a_recorded_turn_sent_again_as_the_same_objects_is_found_not_derived(name: str) -> None:
    """A late turn of a recorded session, then the very same parsed body again (as prefix
    reuse hands it on): the volatile rule's outcome is the one derived without a memo, and
    the second call finds its system lines and tools' bytes by identity."""
    calls = load(FIXTURES / f"{name}.jsonl").calls
    raw = max((call.raw_body() for call in calls), key=len)
    openai = calls[-1].wire != "anthropic"
    provider = "openai" if openai else "anthropic"
    rule = volatile_openai if openai else volatile
    body = orjson.loads(raw)
    reference = rule(
        LLMRequest(provider, orjson.loads(raw), tenant=TENANT), "move", memory().lines, NOW
    )
    held = memory()
    first = rule(LLMRequest(provider, body, tenant=TENANT), "move", held.lines, NOW, held.memo)
    held.learn(first.observations)
    again = rule(LLMRequest(provider, body, tenant=TENANT), "move", held.lines, NOW, held.memo)
    assert any(isinstance(o, Derived) for o in first.observations)
    assert not any(isinstance(o, Derived) for o in again.observations)
    for out in (first, again):
        assert json.dumps(out.body) == json.dumps(reference.body)
        assert (out.rewrites, out.findings, out.prompt_tools) == (
            reference.rewrites, reference.findings, reference.prompt_tools)  # fmt: skip
