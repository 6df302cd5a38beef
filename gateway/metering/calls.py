"""One model call, as the relay saw it, and the single point where it is metered.

`Meter.on_call_complete` is the seam: everything that happens after a call (metrics now;
cost, the call log and shared state later) hangs off it, after the client has its bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.metering.labels import LabelBounds
from gateway.metering.metrics import Metrics
from gateway.state.registry import Verdict
from gateway.wire.anthropic_usage import Usage


@dataclass(frozen=True, slots=True)
class CallRecord:
    request_id: str
    provider: str
    step: str | None
    model_requested: str | None
    model_used: str | None
    status: str  # the HTTP status, or stream_error / cut / client_closed for a failed stream
    duration_s: float
    ttft_s: float | None
    usage: Usage | None
    rewrites: tuple[str, ...] = field(default=())  # rule names, as in x-gateway-rewrites
    findings: tuple[str, ...] = field(default=())
    cache: Verdict | None = None  # the prefix registry's word on this call's cache misses
    coalesced: bool = False


class Meter:
    def __init__(self, metrics: Metrics, labels: LabelBounds) -> None:
        self.metrics = metrics
        self.labels = labels
        # Label values are bounded, so so is this: prometheus' labels() costs ~10 µs a call.
        self._children: dict[tuple[Any, ...], Any] = {}

    def label_values(self, call: CallRecord) -> tuple[str, str, str]:
        """The call's bounded (provider, model, step) label values."""
        return (
            call.provider,
            self.labels.model(call.model_used or call.model_requested),
            self.labels.step(call.step),
        )

    def on_call_complete(self, call: CallRecord) -> None:
        labels = self.label_values(call)
        self._child(self.metrics.requests, *labels, call.status).inc()
        self._child(self.metrics.request_duration, *labels).observe(call.duration_s)
        if call.ttft_s is not None:
            self._child(self.metrics.time_to_first_token, *labels).observe(call.ttft_s)
        if call.usage is not None:
            for kind, count in call.usage.by_type().items():
                if count:
                    self._child(self.metrics.tokens, *labels, kind).inc(count)
        for rule in call.rewrites:
            self._child(self.metrics.rewrites, rule).inc()
        if call.coalesced:
            self._child(self.metrics.coalesced, *labels).inc()
        if call.cache is not None:
            self._cache(labels, call.cache)

    def _cache(self, labels: tuple[str, ...], verdict: Verdict) -> None:
        if verdict.cause is not None:
            self._child(self.metrics.cache_miss_cause, *labels, verdict.cause).inc()
            if verdict.missed_tokens:
                missed = self._child(self.metrics.cache_missed_tokens, *labels, verdict.cause)
                missed.inc(verdict.missed_tokens)
        for owner, tokens in verdict.wasted_writes:
            self._child(self.metrics.cache_wasted_write_tokens, *owner).inc(tokens)

    def _child(self, metric: Any, *values: str) -> Any:
        key = (metric, *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child
