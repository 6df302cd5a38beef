"""Every Prometheus metric the gateway exports, declared once on an injected registry.

Names and labels are a contract (docs/observability.md lists them); label values are bounded by
the caller (see labels.py), never taken raw from a request.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Time to first token: 50 ms (a cached small model) to 30 s (a long uncached prompt on a
# large thinking model); dense around 0.2-3 s, where latency budgets sit.
TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30)
# A whole call: a short routing answer to minutes of synthesis, up to the 600 s timeout.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 300, 600)
# Generation speed: ~10 tokens/s (large thinking models) to several hundred (small ones).
OUTPUT_RATE_BUCKETS = (5, 10, 20, 30, 40, 50, 60, 80, 100, 150, 200, 300, 500, 1000)
# The gateway's own work on a call: tens of microseconds to a few tens of milliseconds; 1.5
# and 2 ms bounds so a p99 can be judged against the 2 ms target (docs/benchmarks.md).
OVERHEAD_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0015,
    0.002,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
)
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
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.time_to_first_token = Histogram(
            "gateway_time_to_first_token_seconds",
            "Time from the request's arrival to the first content event of a stream.",
            CALL_LABELS,
            buckets=TTFT_BUCKETS,
            registry=registry,
        )
        self.output_tokens_per_second = Histogram(
            "gateway_output_tokens_per_second",
            "Output tokens of a completed stream over its time after the first token.",
            CALL_LABELS,
            buckets=OUTPUT_RATE_BUCKETS,
            registry=registry,
        )
        self.overhead = Histogram(
            "gateway_overhead_seconds",
            "Time spent in the gateway itself on a call, waiting on upstream excluded.",
            CALL_LABELS,
            buckets=OVERHEAD_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors",
            "Calls the provider failed: HTTP 429, 5xx and 529 (including the gateway's own"
            " 502/504 when it could not reach the provider or timed out), cut (dropped"
            " mid-stream) and stream_error (an error event inside a 200 stream)."
            " Client errors (other 4xx) are not counted.",
            ["provider", "status"],
            registry=registry,
        )
        self.tokens = Counter(
            "gateway_tokens",
            "Tokens by type: input (uncached), output, cache_read, cache_write_5m, cache_write_1h.",
            [*CALL_LABELS, "type"],
            registry=registry,
        )
        self.cost = Counter(
            "gateway_cost_usd",
            "Cost of model calls in US dollars, at genai-prices list prices as config amends them.",
            CALL_LABELS,
            registry=registry,
        )
        self.unpriced = Counter(
            "gateway_unpriced_calls",
            "Calls with usage on a model no price is known for, metered at cost 0.",
            CALL_LABELS,
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
        self.latency_budget_breaches = Counter(
            "gateway_latency_budget_breaches",
            "Calls over their step's latency budget, by phase: ttft (streams) or total.",
            ["step", "phase"],
            registry=registry,
        )
        self.retries = Counter(
            "gateway_retries",
            "Requests the gateway sent upstream again after a failed attempt (fallbacks included).",
            ["provider"],
            registry=registry,
        )
        self.hedged_calls = Counter(
            "gateway_hedged_calls",
            "Calls that started a hedge after their TTFT budget, by which attempt was relayed.",
            ["provider", "step", "winner"],
            registry=registry,
        )
        self.model_retirement_days = Gauge(
            "gateway_model_retirement_days",
            "Days until a model with traffic retires (negative: retired), for models retiring"
            " within routing.retirement_window_days.",
            ["model"],
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.model_pins = Gauge(
            "gateway_model_pins",
            "1 for each alias -> snapshot pin in force: a pin change (which empties the cache)"
            " shows as one series ending and another starting.",
            ["alias", "snapshot"],
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.shadow_calls = Counter(
            "gateway_shadow_calls",
            "Shadow calls to a step's candidate model, by outcome.",
            [*CALL_LABELS, "status"],
            registry=registry,
        )
        self.shadow_cost = Counter(
            "gateway_shadow_cost_usd",
            "Cost of shadow calls in US dollars, apart from gateway_cost_usd_total.",
            CALL_LABELS,
            registry=registry,
        )
        self.learned_state_bytes = Gauge(
            "gateway_learned_state_bytes",
            "Bytes (estimated) of what the gateway has learned from requests and keeps in"
            " memory: tool forms, per-user lines, the prefix registry. Bounded by"
            " rewrite.learned_state_max_bytes per process.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.state_errors = Counter(
            "gateway_state_errors",
            "State store (Redis) operations that failed, timed out or were skipped while it"
            " was unreachable, by operation; what they would have enforced followed on_outage.",
            ["operation"],
            registry=registry,
        )
        self.settle_backlog = Gauge(
            "gateway_settle_backlog",
            "Charges of answered gateway-key calls waiting for the state store to be settled.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.settle_dropped = Counter(
            "gateway_settle_dropped",
            "Charges of answered gateway-key calls never recorded: the settle backlog was"
            " full (state.settle_backlog_max) or the gateway stopped with the store away.",
            registry=registry,
        )
        self.circuit_open = Gauge(
            "gateway_circuit_open",
            "Circuit breakers open (or half-open) for a provider's model: 1 while the gateway"
            " answers its calls with the overloaded error without sending them"
            " (routing.retries.breaker_failures failures in a row; models outside the"
            " catalog sum under model=other).",
            ["provider", "model"],
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.circuit_rejections = Counter(
            "gateway_circuit_rejections",
            "Attempts the gateway did not send because the model's circuit breaker was open.",
            ["provider", "model"],
            registry=registry,
        )
        self.retry_budget_exhausted = Counter(
            "gateway_retry_budget_exhausted",
            "Failed attempts not retried because the provider's retry budget was spent"
            " (routing.retries.budget_ratio of the calls, plus budget_min_per_s).",
            ["provider"],
            registry=registry,
        )
        self.budget_used_ratio = Gauge(
            "gateway_budget_used_ratio",
            "Spend over budget of a gateway key, or its team (key=team:NAME), by period:"
            " 1 is the hard stop. Set when the key is used.",
            ["key", "period"],
            multiprocess_mode="mostrecent",
            registry=registry,
        )
        self.admission_refused = Counter(
            "gateway_admission_refused",
            "Calls the gateway refused for a gateway key, by reason: spend_limit, rate_limit,"
            " unknown_key, revoked, forbidden, state_unavailable, state_busy.",
            ["key", "reason"],
            registry=registry,
        )
        self.call_log_dropped = Counter(
            "gateway_call_log_dropped",
            "Call log lines dropped because the output did not keep up and the queue"
            " (metering.call_log_queue_bytes) was full, or the output was closed.",
            registry=registry,
        )
        self.model_calls = Counter(
            "gateway_model_calls",
            "Calls by the model the client asked for and the model that served them.",
            ["provider", "requested", "served"],
            registry=registry,
        )
