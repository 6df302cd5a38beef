"""The provider emulator that `gateway serve` can start beside itself."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from gateway.settings.section import Section

LatencyMode = Literal["none", "realistic", "simulated"]
# An HTTP error status the provider documents, or a failure of the response itself.
FaultKind = Literal[
    "400", "401", "402", "403", "404", "409", "413", "429", "500", "504", "529",
    "cut", "stream-error", "slow",
]  # fmt: skip


class EmulatorSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=1, le=65535)
    latency: LatencyMode = "none"
    virtual_clock: bool = False
    # Caches are isolated per workspace; by default every API key is its own workspace.
    workspaces: dict[str, str] = Field(default_factory=dict)
    # When non-empty, only these API keys authenticate; otherwise any non-empty key does.
    api_keys: tuple[SecretStr, ...] = ()
    reply_words: int = Field(default=30, ge=1)
    lookback_blocks: int = Field(default=20, ge=1)
    cache_max_entries: int = Field(default=100_000, ge=1)
    fault_rates: dict[FaultKind, float] = Field(default_factory=dict)
    fault_seed: int = 0
    slow_fault_ms: int = Field(default=2000, ge=0)
    # A model id the catalog does not list but that follows a provider's naming
    # (`gpt-6.2-sol`, `claude-opus-5-1`) is served with its nearest listed relative's
    # defaults and an `x-emulator-model-inferred` header; strict refuses it with a 404.
    strict_models: bool = False
