"""The request rewrites: each rule's switch and what it may learn."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gateway.settings.section import Section


class RewriteSettings(Section):
    """Each rule can be switched off; a switched-off rule still reports its findings."""

    whitespace: bool = True
    tool_json: bool = True
    volatile: Literal["move", "truncate_to_day", "report_only"] = "move"
    # Requests of a prompt family seen before its per-user lines are learned and moved.
    learn_volatile_after: int = Field(default=5, ge=1)
    breakpoints: Literal["augment", "replace", "respect"] = "augment"
    # auto: 1h for the stable prefix, or a conversation's tail, of a prompt family whose
    # observed reuse gaps (median of the last 16) fall between 5 minutes and an hour;
    # 5m otherwise, and until 3 gaps have been seen.
    cache_ttl: Literal["auto", "5m", "1h"] = "auto"
    # What the gateway learns from requests (tool forms, per-user lines, the prefix registry)
    # is bounded in bytes: in all, and per tenant (a credential: a gateway key, or the
    # provider key a client sends). A tenant past its share forgets its own oldest entries,
    # never those of a tenant within its share (docs/limits.md, "Learned state").
    learned_state_max_bytes: int = Field(default=64 * 1024 * 1024, ge=64 * 1024)
    learned_state_per_tenant_max_bytes: int = Field(default=16 * 1024 * 1024, ge=16 * 1024)
    # Deprecated, ignored: learned state is bounded by the byte limits above.
    tool_forms_max_entries: int | None = Field(default=None, ge=1, deprecated=True)
    # Steps whose concurrent calls on a prefix not yet cached wait for the first one's
    # response to begin, so they read the cache instead of all writing it ("*": every step).
    coalesce_steps: tuple[str, ...] = ()
    coalesce_max_wait_s: float = Field(default=2.0, ge=0)
    # Ask Anthropic for its own cache-miss diagnosis (`diagnostics.previous_message_id`,
    # GA since 2026-09-23): off by default, as a provider or proxy without it rejects the field.
    provider_diagnostics: bool = False
    # Deprecated, ignored: the prefix registry is learned state (learned_state_max_bytes).
    registry_max_entries: int | None = Field(default=None, ge=1, deprecated=True)
    # OpenAI: a prompt_cache_key derived from the prompt family when the client sent none.
    prompt_cache_key: bool = True
    # OpenAI cache lifetime per step ("*": every step), where the client set none:
    # prompt_cache_retention on models before GPT-5.6 (24h only where the model offers it),
    # prompt_cache_options.ttl on GPT-5.6 and later. Unset: the provider's default.
    openai_cache_retention: dict[str, Literal["in_memory", "24h"]] = Field(default_factory=dict)
    openai_cache_ttl: dict[str, Literal["30m", "12h"]] = Field(default_factory=dict)
