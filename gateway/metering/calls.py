"""One model call, as the relay saw it, and the single point where it is metered.

`Meter.on_call_complete` is the seam: everything that happens after a call (metrics now;
cost, the call log and shared state later) hangs off it, after the client has its bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.metering.labels import LabelBounds
from gateway.metering.metrics import Metrics
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
    rewrites: tuple[str, ...] = field(default=())


class Meter:
    def __init__(self, metrics: Metrics, labels: LabelBounds) -> None:
        self.metrics = metrics
        self.labels = labels

    def on_call_complete(self, call: CallRecord) -> None:
        labels = (
            call.provider,
            self.labels.model(call.model_used or call.model_requested),
            self.labels.step(call.step),
        )
        self.metrics.requests.labels(*labels, call.status).inc()
        self.metrics.request_duration.labels(*labels).observe(call.duration_s)
        if call.ttft_s is not None:
            self.metrics.time_to_first_token.labels(*labels).observe(call.ttft_s)
        if call.usage is not None:
            for kind, count in call.usage.by_type().items():
                if count:
                    self.metrics.tokens.labels(*labels, kind).inc(count)
