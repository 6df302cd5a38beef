"""What bench/cost.py replays and how it judges it: workloads, routes, the cascade, targets."""

from __future__ import annotations

from types import ModuleType
from typing import Literal

from harness.proxies import REPO
from workloads import Variant, fanout, research, support, support_openai

RESULTS = REPO / "bench" / "results"
WORKLOADS: dict[str, ModuleType] = {m.NAME: m for m in (support, research, fanout, support_openai)}
DAY = "2026-11-25"  # claude-sonnet-4-5-20250929 retires 2026-11-30: replay a day before it
REPLY_WORDS = 150  # the emulator's answer length: ~200 output tokens a call
Upstream = Literal["emulator", "gateway", "cascade"]
ROUTES: tuple[tuple[str, Variant, Upstream], ...] = (
    # (route, workload variant, where its calls go)
    ("direct", "naive", "emulator"),
    ("gateway", "naive", "gateway"),  # caching only: no step is routed
    ("cascade", "naive", "cascade"),  # caching and the cascade (CASCADE_STEPS)
    ("tuned", "tuned", "emulator"),
)
LABELS = {
    "direct": "naive, direct",
    "gateway": "naive, via gateway",
    "cascade": "naive, via gateway with the cascade",
    "tuned": "hand-tuned, direct",
}
# The cascade as docs/benchmarks.md recommends it: the research agent's route and tool-decision
# steps (each ends in a tool call) on the small tier, its synthesis on the large tier.
CASCADE_STEPS = {
    "routing": {"tier": "small"},
    "search": {"tier": "small"},
    "fetch": {"tier": "small"},
    "synthesis": {"tier": "large"},
}
# Workloads labelled with those steps; the others would replay the gateway route again.
CASCADE_WORKLOADS = ("research",)
# The gateway's own account of the cache, read from its /metrics after the replay.
GATEWAY_METRICS = (
    "gateway_cache_miss_cause_total",
    "gateway_cache_wasted_write_tokens_total",
    "gateway_coalesced_total",
)
TARGET_HIT_RATIO = 0.85
TARGET_COST_SHARE = 0.50
TARGET_CASCADE_SHARE = 0.25  # research agent: caching and cascade together
SHARED_PREFIX_READ = 0.9  # a call "read the shared prefix" when it read >= 90% of its estimate
