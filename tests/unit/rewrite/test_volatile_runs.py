"""The volatile rule on a family whose system prompts differ in a line or two, call after call,
as learned counts and the system part's Places (kept with its lines in the memo) come and
go: each call rewrites to what it rewrites to without the memo, and without sharing parsed
objects with the call before it. The learned counts run a set and keep the lines below the
floor across sets (cache/lines.py); the plan reads a Places that served other plans."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from gateway.rewrite.pipeline import ANTHROPIC_STAGES, OPENAI_STAGES
from gateway.rewrite.volatile import KEPT, RULE
from tests.support.rewrite import NOW, rewritten_alike, with_and_without_memo

STATIC = [f"Rule {i}: keep the change small and say why it is made." for i in range(30)]


def _system(rng: random.Random) -> list[str]:
    """A prompt of the family: the same rules, and lines that vary per user or project,
    some inside a section or before a heading (kept), some free to move (moved)."""
    user = rng.choice(["Ann", "Bob", "Cy"])
    return [
        "You are a coding agent.",
        f"User: {user}",
        f"Current time: {NOW:%Y-%m-%d} {rng.choice(['09:58', '09:59'])}",
        *STATIC[:9],
        "<env>",
        f"cwd: /home/dev/{rng.choice(['alpha', 'beta', 'gamma'])}",
        "</env>",
        *STATIC[10:20],
        f"Project notes for {rng.choice(['alpha', 'beta'])}",
        "# More rules",
        *STATIC[20:],
    ]


def _body(wire: str, system: list[str], turns: int) -> dict[str, Any]:
    talk = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}"}
        for i in range(turns)
    ]
    if wire == "openai":
        developer = [{"type": "input_text", "text": "\n".join(system[12:])}]
        return {
            "model": "gpt-5",
            "instructions": "\n".join(system[:12]),
            "input": [{"role": "developer", "content": developer}, *talk],
        }
    return {
        "model": "claude-haiku-4-5",
        "system": [{"type": "text", "text": "\n".join(system)}],
        "messages": talk,
    }


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
@pytest.mark.parametrize("seed", range(6))
def test_a_family_of_prompts_rewrites_the_same_with_and_without_the_memo(
    wire: str, seed: int
) -> None:
    rng = random.Random(seed)
    stages = OPENAI_STAGES if wire == "openai" else ANTHROPIC_STAGES
    memories, contexts = with_and_without_memo(learn_volatile_after=3)
    system, turns, seen = _system(rng), 1, set()
    for _ in range(60):
        if rng.random() < 0.3:  # another prompt of the family (or the same, another object)
            system = _system(rng)
        turns += 1
        raw = json.dumps(_body(wire, system, turns))
        parsed = json.loads(raw)
        for again in (parsed, parsed) if rng.random() < 0.3 else (parsed,):
            out = rewritten_alike(wire, (again, json.loads(raw)), memories, contexts, stages)
            seen |= {r.rule for r in out.rewrites} | {f.code for f in out.findings}
    # The comparison compared calls that moved lines and calls that kept them.
    assert {KEPT, RULE} <= seen
