"""The volatile rule on odd system prompts of one family, call after call, with and without
the memo (its kept lines and their Places, the learned counts running sets): repeated lines
(one key on several lines), blank lines, non-ASCII lines, texts of one line, several blocks
or system messages, a tail of lines that differ every call, stamps in several blocks."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from gateway.rewrite.pipeline import ANTHROPIC_STAGES, OPENAI_STAGES
from gateway.rewrite.volatile import KEPT, RULE
from tests.support.rewrite import NOW, rewritten_alike, with_and_without_memo

LINES = (
    "You are an agent.",
    "",
    "Rule: keep it short.",
    "Rule: keep it short.",  # a repeated line
    "Ünïcödé rule ✓",
    "# Heading",
    "<env>",
    "</env>",
    "---",
)


def _texts(rng: random.Random, call: int) -> list[str]:
    texts = []
    for t in range(rng.randint(1, 3)):
        lines = [rng.choice(LINES) for _ in range(rng.randint(1, 12))]
        if rng.random() < 0.5:
            lines.append(f"Current time: {NOW:%Y-%m-%d} 10:{rng.randint(0, 59):02d}")
        if rng.random() < 0.5:  # lines that differ every call, at the text's end
            lines += [f"passage {call}-{t}-{k} Ü" for k in range(rng.randint(1, 20))]
        if rng.random() < 0.3:
            lines.append("Stable closing line.")
        texts.append("\n".join(lines))
    return texts


def _body(wire: str, texts: list[str], call: int) -> dict[str, Any]:
    talk = [{"role": "user", "content": f"question {call}"}]
    if wire == "openai":
        system = [{"role": "system", "content": text} for text in texts]
        return {"model": "gpt-5", "messages": [*system, *talk]}
    blocks = [{"type": "text", "text": text} for text in texts]
    return {"model": "claude-haiku-4-5", "system": blocks, "messages": talk}


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
@pytest.mark.parametrize("seed", range(8))
def test_odd_prompts_of_a_family_rewrite_the_same_with_and_without_the_memo(
    wire: str, seed: int
) -> None:
    rng = random.Random(seed)
    stages = OPENAI_STAGES if wire == "openai" else ANTHROPIC_STAGES
    memories, contexts = with_and_without_memo(learn_volatile_after=2)
    seed_texts = _texts(rng, 0)
    seen: set[str] = set()
    for call in range(30):
        # The family: the same first line, the rest as this call makes it.
        texts = seed_texts if rng.random() < 0.4 else _texts(rng, call)
        texts[0] = "Family opening line.\n" + texts[0].split("\n", 1)[-1]
        raw = json.dumps(_body(wire, texts, call))
        parsed = json.loads(raw)
        for again in (parsed, parsed) if rng.random() < 0.3 else (parsed,):
            out = rewritten_alike(wire, (again, json.loads(raw)), memories, contexts, stages)
            seen |= {r.rule for r in out.rewrites} | {f.code for f in out.findings}
    # The comparison compared calls that moved lines and calls that kept them.
    assert {KEPT, RULE} <= seen, seen
