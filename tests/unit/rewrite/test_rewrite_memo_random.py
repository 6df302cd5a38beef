"""Random conversations of odd shapes through the whole pipeline, turn by turn, with the memo
of derived values (in a byte budget small enough to evict) and without it: each turn's
outcome (tests/support/rewrite.py's `memo_outcome`) is the same, or both fail alike.

Each turn is made from the previous one's objects (prefix reuse): messages added, a marked
copy of any message (the first too: runs.py's LINK), a copy parsed anew, a new message, fewer
messages; the system part and tools change now and then to odd values (missing, empty, not
a list, instructions not a string, items that are not dicts, tools items)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from gateway.cache.bounded import LearnedState
from gateway.cache.learned import LearnedMemory
from gateway.rewrite.pipeline import ANTHROPIC_STAGES, OPENAI_STAGES, rewrite
from gateway.rewrite.request import LLMRequest
from tests.support.rewrite import context, memo_outcome

MARK = {"type": "ephemeral"}
TEXTS = ("", "x" * 1100, "line one\nToday is 2026-11-24\n" * 40, "y" * 20, "  spaced  \n" * 120)


def _text(rng: random.Random, i: int) -> str:
    return f"t{i} " + rng.choice(TEXTS)


def _message(rng: random.Random, i: int, openai: bool) -> Any:
    role = ("user", "assistant")[i % 2]
    pick = rng.random()
    if pick < 0.03:
        return rng.choice([None, 3, "str", [1, 2]])
    if pick < 0.4:
        return {"role": role, "content": _text(rng, i)}
    if pick < 0.45:
        return {"role": role}
    if openai and pick < 0.55:
        return {"type": "function_call", "name": "f", "arguments": "{}", "call_id": "c"}
    if openai and pick < 0.6:
        return {"role": rng.choice(["system", "developer"]), "content": _text(rng, i)}
    if openai and pick < 0.63:
        return {"type": "additional_tools", "role": "developer", "tools": [{"name": "g"}]}
    if openai:
        kinds = ["input_text", "output_text", "text"]
        parts = [{"type": rng.choice(kinds), "text": _text(rng, i)} for _ in range(3)]
        return {"role": role, "content": parts[: rng.randint(1, 3)]}
    blocks: list[Any] = [{"type": "text", "text": _text(rng, 10 * i + j)} for j in range(3)]
    blocks[0] = rng.choice([blocks[0], {**blocks[0], "cache_control": MARK}])
    blocks[1] = rng.choice([blocks[1], {"type": "tool_result", "tool_use_id": "a", "content": "r"}])
    return {"role": role, "content": blocks[: rng.randint(1, 3)]}


def _marked(message: Any, at: int) -> Any:
    content = message.get("content") if isinstance(message, dict) else None
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    if not isinstance(blocks, list) or not blocks or not isinstance(blocks[at % len(blocks)], dict):
        return message
    blocks = list(blocks)
    blocks[at % len(blocks)] = {**blocks[at % len(blocks)], "cache_control": MARK}
    return {**message, "content": blocks}


def _next(rng: random.Random, turn: list[Any], plain: list[Any], made: int, openai: bool) -> Any:
    out = list(turn)
    for _ in range(rng.randint(1, 3)):
        op, at = rng.random(), rng.randrange(len(out))
        if op < 0.3:
            out.extend(plain[len(out) : len(out) + rng.randint(1, 3)])
        elif op < 0.45:
            out[at] = _marked(plain[at], rng.randrange(4))
        elif op < 0.6:
            out[0] = _marked(plain[0], rng.randrange(4))  # the first message a new copy
        elif op < 0.7:
            out[at] = plain[at]
        elif op < 0.8:
            out[at] = json.loads(json.dumps(out[at]))
        elif op < 0.9:
            out[at] = _message(rng, made + at, openai)
        else:
            del out[rng.randint(1, len(out)) :]
    return out or [plain[0]]


def _system(rng: random.Random, openai: bool) -> Any:
    long = "Long\nToday is 2026-11-24\n" + "s" * 2000
    if openai:
        return rng.choice([None, "", "short", long, ["a list"], 7])
    blocks = [
        {"type": "text", "text": long},
        {"type": "text", "text": "cwd", "cache_control": MARK},
    ]
    return rng.choice([None, "", [], "be brief", long, blocks, [{"type": "text", "text": "a"}]])


def _tools(rng: random.Random, openai: bool) -> Any:
    spec = {"type": "object", "properties": {"b": {"type": "string"}, "a": {}}}
    tool = {
        "name": "f",
        "description": "d" * 1500,
        ("parameters" if openai else "input_schema"): spec,
    }
    return rng.choice([None, [], [tool], "not a list", [3]])


def _body(rng: random.Random, wire: str, system: Any, tools: Any, turn: list[Any]) -> Any:
    body: dict[str, Any] = {"model": "gpt-5" if wire != "anthropic" else "claude-sonnet-4-5"}
    if wire == "responses":
        if system is not None:
            body["instructions"] = system
        body["input"] = turn if rng.random() < 0.95 else "a string input"
    elif wire == "chat":
        lead = [{"role": "system", "content": system}] if isinstance(system, str) else []
        body["messages"] = lead + turn
    else:
        if system is not None:
            body["system"] = system
        body["messages"], body["max_tokens"] = turn, 100
    if tools is not None:
        body["tools"] = tools
    return body


def _outcome(request: LLMRequest, context: Any, stages: Any) -> tuple[Any, LLMRequest | None]:
    """What the memo must not change, and the request; a failure's type and message (the
    gateway forwards the request unchanged: with the memo as without it, or not)."""
    try:
        out = rewrite(request, context, stages)
    except Exception as error:
        return (type(error).__name__, str(error)), None
    return memo_outcome(out), out


@pytest.mark.parametrize("budget", [4_000, 50_000, None])
@pytest.mark.parametrize("seed", range(12))
def test_random_turns_rewrite_alike_with_and_without_the_memo(seed: int, budget: int) -> None:
    rng = random.Random(seed)
    wire = ("anthropic", "responses", "chat")[seed % 3]
    openai = wire != "anthropic"
    stages, provider = (OPENAI_STAGES, "openai") if openai else (ANTHROPIC_STAGES, "anthropic")
    memo: bool | LearnedState = True if budget is None else LearnedState(budget, budget)
    memories = [LearnedMemory.within(LearnedState.default(), memo=kept) for kept in (memo, False)]
    contexts = [context(memory) for memory in memories]
    plain = [_message(rng, i, openai) for i in range(30)]
    system, tools = _system(rng, openai), _tools(rng, openai)
    turn = plain[: rng.randint(1, 3)]
    for step in range(20):
        if rng.random() < 0.15:
            system = _system(rng, openai)
        if rng.random() < 0.15:
            tools = _tools(rng, openai)
        body = _body(rng, wire, system, tools, turn)
        bodies = (body, json.loads(json.dumps(body)))
        outs = [
            _outcome(LLMRequest(provider, sent, None, b"t"), ctx, stages)
            for sent, ctx in zip(bodies, contexts, strict=True)
        ]
        assert outs[0][0] == outs[1][0], (seed, step)
        if rng.random() < 0.9:  # accepted: what each learned kept
            for memory, (_, out) in zip(memories, outs, strict=True):
                if out is not None:
                    memory.learn(out.observations)
        turn = _next(rng, turn, plain, 100 * (step + 1), openai)
