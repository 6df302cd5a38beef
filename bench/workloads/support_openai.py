"""Support agent on OpenAI's Chat Completions: the same day of conversations as support.py.

Each call is support.py's, translated: the same prompts, customers, questions, answers and
times, sent with the openai SDK to `gpt-4.1` (cached input at 0.25x; OpenAI caches
automatically, so nothing needs marking).
Naive: one system message that starts with the current time and the customer's name, the
model alias. Tuned (what OpenAI's prompt-caching guide recommends): the policies first in
a system message of their own, the customer in a second one, the time at the top of each
new user message, the pinned snapshot, and one `prompt_cache_key` for the app.
"""

from __future__ import annotations

from typing import Any

from workloads import Call, Variant, support

NAME = "support-openai"
TITLE = "support agent on OpenAI chat (1,000 conversations × 4 turns)"
PROVIDER = "openai"
MODELS = ("gpt-4.1", "gpt-4.1-2025-04-14")


def _chat(params: dict[str, Any], variant: Variant) -> dict[str, Any]:
    system = params["system"]
    if isinstance(system, str):
        head = [{"role": "system", "content": system}]
    else:
        head = [{"role": "system", "content": block["text"]} for block in system]
    chat: dict[str, Any] = {
        "model": MODELS[0] if variant == "naive" else MODELS[1],
        "max_completion_tokens": params["max_tokens"],
        "messages": head + list(params["messages"]),
    }
    if variant == "tuned":
        chat["prompt_cache_key"] = "support-agent"
    return chat


def calls(variant: Variant, seed: int, scale: float, day_start: float) -> list[Call]:
    return [
        Call(c.at, _chat(c.params, variant), c.position, c.step, prefix=c.prefix)
        for c in support.calls(variant, seed, scale, day_start)
    ]
