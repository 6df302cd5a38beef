"""Tokens from characters at the model's fixed ratio: fast and deterministic.

The emulator bills with it exactly; the gateway uses it as its estimate (for cache
minimums and breakpoint placement). Not a real tokenizer: the ratio per model lives
in the catalog (`chars_per_token`).
"""

from __future__ import annotations

import math


def count_tokens(text: str, chars_per_token: float) -> int:
    return math.ceil(len(text) / chars_per_token) if text else 0
