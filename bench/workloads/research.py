"""Research agent: route, search, fetch, search, synthesize — 3,200 to 9,400 input tokens.

One agent run is five sequential calls, each adding a tool_use and its tool_result to the
history (search results ~1,100–1,500 tokens, fetched pages ~1,500–1,700). 480 runs a day.
Naive: the system prompt carries the current time (RFC 2822, to the second) and ends in
whitespace that differs by code path; the four tools are rebuilt on every call with keys
and tools in a different order (a map iterated in random order); no cache_control; the
model alias. Tuned: tools and system byte-stable with a breakpoint after the system
prompt, the time in the first user message, a top-level breakpoint on the newest block.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from workloads import DAY_SECONDS, Call, Variant, in_window
from workloads.prose import Prose

NAME = "research"
TITLE = "research agent (480 runs × 5 steps)"
MODELS = ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929")
RUNS = 480
SYSTEM_TOKENS = 1_200
QUESTION_TOKENS = 300
# (position, x-gateway-step, tool the model called after this step, its result's tokens)
STEPS = (
    ("1 route", "routing", "web_search", (1_000, 1_200)),
    ("2 search", "search", "fetch_url", (1_400, 1_700)),
    ("3 fetch", "fetch", "web_search", (1_400, 1_700)),
    ("4 search", "search", "fetch_url", (1_600, 1_900)),
    ("5 synthesize", "synthesis", None, (0, 0)),
)
GAPS = ((1.0, 3.0), (2.0, 8.0), (3.0, 10.0), (2.0, 8.0))


def _tools(prose: Prose) -> list[dict[str, Any]]:
    def tool(name: str, about: int, props: dict[str, str]) -> dict[str, Any]:
        return {
            "name": name,
            "description": prose.text(about),
            "input_schema": {
                "type": "object",
                "properties": {k: {"type": "string", "description": v} for k, v in props.items()},
                "required": list(props)[:1],
            },
        }

    return [
        tool("web_search", 340, {"query": prose.sentence(), "region": prose.sentence(),
                                 "recency": prose.sentence()}),
        tool("fetch_url", 340, {"url": prose.sentence(), "section": prose.sentence()}),
        tool("save_note", 320, {"note": prose.sentence(), "source": prose.sentence()}),
        tool("finish", 320, {"answer": prose.sentence(), "confidence": prose.sentence()}),
    ]  # fmt: skip


def _shuffled(value: Any, rng: random.Random) -> Any:
    """The same JSON value with every object's keys in a random order (lists keep theirs)."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: _shuffled(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


def calls(variant: Variant, seed: int, scale: float, day_start: float) -> list[Call]:
    rng = random.Random(f"{seed}:research")
    wire = random.Random(f"{seed}:research:wire")  # key order only: never shifts the content
    prose = Prose(rng, "research")
    tools = _tools(prose)
    instructions = prose.text(SYSTEM_TOKENS - 40)
    intro = "You are a research agent. Plan, search, read sources and write a cited answer."
    out: list[Call] = []
    for run in range(RUNS):
        start = rng.uniform(0, DAY_SECONDS - 120)
        question = prose.text(QUESTION_TOKENS)
        results = [prose.text(rng.randint(*size)) if size[0] else "" for *_, size in STEPS]
        gaps = [0.0] + [rng.uniform(*gap) for gap in GAPS]
        notes = [(prose.sentence(), prose.sentence(), f"{rng.randrange(16**8):08x}") for _ in STEPS]
        if not in_window(start, scale):
            continue
        at = start
        history: list[dict[str, Any]] = []
        for index, (position, step, next_tool, _) in enumerate(STEPS):
            at += gaps[index]
            now = dt.datetime.fromtimestamp(day_start + at, dt.UTC)
            stamp = now.strftime("%a, %d %b %Y %H:%M:%S +0000")
            params: dict[str, Any] = {"max_tokens": 2048}
            if variant == "naive":
                if not history:
                    history.append({"role": "user", "content": question})
                tail = "\n" if index % 2 == 0 else "  \n\n"  # two code paths build the prompt
                params["system"] = f"{intro}\nCurrent time: {stamp}\n\n{instructions}{tail}"
                ordered = list(tools)
                wire.shuffle(ordered)
                params["tools"] = [_shuffled(tool, wire) for tool in ordered]
                params["model"] = MODELS[0]
            else:
                if not history:
                    dated = f"Current time: {stamp}\n\n{question}"
                    history.append({"role": "user", "content": dated})
                params["system"] = [{"type": "text", "text": f"{intro}\n\n{instructions}",
                                     "cache_control": {"type": "ephemeral"}}]  # fmt: skip
                params["tools"] = tools
                params["model"] = MODELS[1]
                params["cache_control"] = {"type": "ephemeral"}
            params["messages"] = list(history)
            out.append(Call(at, params, position, step=step, prefix=f"r{run}"))
            if next_tool is not None:
                say, argument, suffix = notes[index]
                use_id = f"toolu_{run:04d}{index:02d}{suffix}"
                history.append({"role": "assistant", "content": [
                    {"type": "text", "text": say},
                    {"type": "tool_use", "id": use_id, "name": next_tool,
                     "input": {"query" if next_tool == "web_search" else "url": argument}},
                ]})  # fmt: skip
                history.append({"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": use_id, "content": results[index]},
                ]})  # fmt: skip
    return out
