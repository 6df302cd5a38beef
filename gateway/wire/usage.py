"""What a response says about its call, in the provider-neutral token types every meter uses.

Each wire format's module (anthropic_usage, openai_usage) reads its own fields into these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class Usage:
    """Normalized token counts: `input` never includes cached tokens, nor cache writes.

    The write types are named by Anthropic's TTLs; OpenAI's short-lived writes (GPT-5.6+,
    30 minutes) count as `cache_write_5m`, its 12-hour ones as `cache_write_1h`.
    """

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0

    def pairs(self) -> tuple[tuple[str, int], ...]:
        """(type, tokens) in the order every series and sum takes them."""
        return (
            ("input", self.input),
            ("output", self.output),
            ("cache_read", self.cache_read),
            ("cache_write_5m", self.cache_write_5m),
            ("cache_write_1h", self.cache_write_1h),
        )

    def by_type(self) -> dict[str, int]:
        return dict(self.pairs())


class Reported(NamedTuple):
    """What a response says about its call: model, usage, id, and the cache-miss reason. A
    tuple, made at once (a frozen dataclass sets each field apart)."""

    model: str | None = None
    usage: Usage | None = None
    message_id: str | None = None  # Anthropic's msg_…, OpenAI's chatcmpl-… or resp_…
    miss_reason: str | None = None  # diagnostics.cache_miss_reason.type, when asked for
    service_tier: str | None = None  # OpenAI's tier the call was served at (priority, …)
