"""Fan-out: 5 parallel sub-calls sharing a ~6,000-token prefix (instructions + one document).

A contract-review job sends the same system prompt and document with five different
questions at the same instant, on the small model (Haiku 4.5: minimum cacheable prefix
4,096 tokens, so the ~1,500-token system prompt alone cannot be cached). 240 jobs a day.
Naive: the system prompt carries the request time as epoch seconds behind a label; no
cache_control; the model alias; all five calls at once. Tuned: the time in each question,
a breakpoint on the document block, and one `max_tokens: 0` pre-warm 3 s before the
fan-out, so the five read what it wrote (docs/wire.md).
"""

from __future__ import annotations

import random
from typing import Any

from workloads import DAY_SECONDS, Call, Variant, in_window
from workloads.prose import Prose, tokens

NAME = "fanout"
TITLE = "fan-out (240 jobs × 5 parallel sub-calls)"
MODELS = ("claude-haiku-4-5", "claude-haiku-4-5-20251001")
JOBS = 240
SYSTEM_TOKENS = 1_500
DOCUMENT_TOKENS = 4_500
WIDTH = 5
PREWARM_LEAD_S = 3.0


def calls(variant: Variant, seed: int, scale: float, day_start: float) -> list[Call]:
    rng = random.Random(f"{seed}:fanout")
    prose = Prose(rng, "contract")
    instructions = prose.text(SYSTEM_TOKENS - 30)
    intro = "You review contracts for the legal team. Answer only from the document."
    out: list[Call] = []
    for job in range(JOBS):
        start = rng.uniform(PREWARM_LEAD_S, DAY_SECONDS - 60)
        document = "Document under review:\n\n" + prose.text(DOCUMENT_TOKENS)
        tasks = [prose.text(rng.randint(120, 180)) for _ in range(WIDTH)]
        if not in_window(start, scale):
            continue
        epoch = int(day_start + start)
        shared = tokens(intro) + tokens(instructions) + tokens(document)
        doc_block: dict[str, Any] = {"type": "text", "text": document}
        if variant == "naive":
            system = f"{intro}\nRequest timestamp: {epoch}\n\n{instructions}"
            model = MODELS[0]
        else:
            system = f"{intro}\n\n{instructions}"
            model = MODELS[1]
            doc_block["cache_control"] = {"type": "ephemeral"}
            warm = {"model": model, "max_tokens": 0, "system": system,
                    "messages": [{"role": "user", "content": [doc_block]}]}  # fmt: skip
            out.append(
                Call(start - PREWARM_LEAD_S, warm, "pre-warm", step="extraction",
                     prefix=f"j{job}", prefix_tokens=shared, measured=False)
            )  # fmt: skip
        for number, task in enumerate(tasks):
            question = task if variant == "naive" else f"Request timestamp: {epoch}\n\n{task}"
            params = {
                "model": model,
                "max_tokens": 1024,
                "system": system,
                "messages": [
                    {"role": "user", "content": [doc_block, {"type": "text", "text": question}]}
                ],
            }
            out.append(
                Call(start, params, f"sub-call {number + 1}", step="extraction", group=f"j{job}",
                     prefix=f"j{job}", prefix_tokens=shared)
            )  # fmt: skip
    return out
