"""Support agent: 1,000 conversations a day, 4 turns each, 10 s to 3 min apart.

Naive: one system string of ~2,000 tokens that starts with the current time (ISO 8601, to
the second) and the customer's name, then the policies; no cache_control; the model alias.
Context grows from ~2.4K tokens (turn 1) to ~8K (turn 4): each later turn pastes logs or
order details (~1,600 tokens) and the previous answer (~250) is in the history.
Tuned: the policies in a system block with a breakpoint (shared by every conversation),
the customer in a system block after it (stable for the conversation), the time at the
top of each new user message (kept in history), a top-level breakpoint on the newest block.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from workloads import DAY_SECONDS, Call, Variant, in_window
from workloads.prose import Prose

NAME = "support"
TITLE = "support agent (1,000 conversations × 4 turns)"
MODELS = ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929")
CONVERSATIONS = 1_000
TURNS = 4
SYSTEM_TOKENS = 2_000

FIRST = ("Maria", "James", "Aiko", "Tomasz", "Priya", "Kwame", "Lucia", "Henrik", "Fatima",
         "Diego", "Mei", "Oskar", "Amara", "Ivan")  # fmt: skip
LAST = ("Okafor", "Lindqvist", "Tanaka", "Novak", "Sharma", "Mensah", "Rossi", "Berg", "Haddad",
        "Morales", "Chen", "Nilsson")  # fmt: skip
PLANS = ("Starter", "Business", "Enterprise", "Home")


def _time(day_start: float, at: float) -> str:
    stamp = dt.datetime.fromtimestamp(day_start + at, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def calls(variant: Variant, seed: int, scale: float, day_start: float) -> list[Call]:
    rng = random.Random(f"{seed}:support")
    prose = Prose(rng, "support")
    policies = "## Policies and procedures\n\n" + prose.text(SYSTEM_TOKENS - 80)
    intro = "You are the customer support assistant for Northwind Networks."
    out: list[Call] = []
    starts = sorted(rng.uniform(0, DAY_SECONDS - 900) for _ in range(CONVERSATIONS))
    for number, start in enumerate(starts):
        # Draw everything for every conversation, so a scaled run is a prefix of the full one.
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        customer = f"You are speaking with {name} (plan: {rng.choice(PLANS)})."
        customer += f" Address {name.split()[0]} by first name."
        gaps = [0.0] + [rng.uniform(10, 180) for _ in range(TURNS - 1)]
        user_tokens = [rng.randint(330, 470)] + [rng.randint(1_300, 1_900) for _ in gaps[1:]]
        questions = [prose.text(n) for n in user_tokens]
        answers = [prose.text(rng.randint(200, 300)) for _ in gaps]
        if not in_window(start, scale):
            continue
        at = start
        history: list[dict[str, Any]] = []
        for turn in range(TURNS):
            at += gaps[turn]
            if variant == "naive":
                system: Any = f"{intro}\nCurrent time: {_time(day_start, at)}\n{customer}\n\n"
                system += policies + "\n"
                user = questions[turn]
            else:
                system = [
                    {"type": "text", "text": intro + "\n\n" + policies,
                     "cache_control": {"type": "ephemeral"}},
                    {"type": "text", "text": customer},
                ]  # fmt: skip
                user = f"Current time: {_time(day_start, at)}\n\n{questions[turn]}"
            history.append({"role": "user", "content": user})
            params: dict[str, Any] = {
                "model": MODELS[0] if variant == "naive" else MODELS[1],
                "max_tokens": 1024,
                "system": system,
                "messages": list(history),
            }
            if variant == "tuned":
                params["cache_control"] = {"type": "ephemeral"}
            out.append(Call(at, params, f"turn {turn + 1}", step="chat", prefix=f"c{number}"))
            history.append({"role": "assistant", "content": answers[turn]})
    return out
