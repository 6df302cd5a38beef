"""Every Prometheus metric the gateway exports, declared once on an injected registry.

Names and labels are a contract (../shared/ARCHITECTURE.md); label values are bounded by
the caller (see labels.py), never taken raw from a request.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# LLM latencies: tens of milliseconds (a cached small model) to tens of seconds (long synthesis).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120)
CALL_LABELS = ("provider", "model", "step")


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "gateway_requests",
            "Model calls relayed, by outcome: HTTP status, or stream_error / cut / client_closed.",
            [*CALL_LABELS, "status"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "gateway_request_duration_seconds",
            "Time from the request's arrival to the last byte relayed to the client.",
            CALL_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.time_to_first_token = Histogram(
            "gateway_time_to_first_token_seconds",
            "Time from the request's arrival to the first content event of a stream.",
            CALL_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "gateway_tokens",
            "Tokens by type: input (uncached), output, cache_read, cache_write_5m, cache_write_1h.",
            [*CALL_LABELS, "type"],
            registry=registry,
        )
        self.rewrites = Counter(
            "gateway_rewrites",
            "Changes the rewrite pipeline made to requests, by rule (x-gateway-rewrites).",
            ["rule"],
            registry=registry,
        )
        self.cache_miss_cause = Counter(
            "gateway_cache_miss_cause",
            "Calls that read less from the prompt cache than their prefix allowed, by cause.",
            [*CALL_LABELS, "cause"],
            registry=registry,
        )
        self.cache_missed_tokens = Counter(
            "gateway_cache_missed_tokens",
            "Input tokens that a cache miss made the provider bill at full price, by cause.",
            [*CALL_LABELS, "cause"],
            registry=registry,
        )
        self.cache_wasted_write_tokens = Counter(
            "gateway_cache_wasted_write_tokens",
            "Tokens written to the prompt cache that expired without ever being read.",
            CALL_LABELS,
            registry=registry,
        )
        self.coalesced = Counter(
            "gateway_coalesced",
            "Calls that waited for a concurrent call on the same cold prefix, to read its cache.",
            CALL_LABELS,
            registry=registry,
        )
