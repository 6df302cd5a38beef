"""OpenTelemetry traces of model calls, with the GenAI semantic conventions. Off by default.

A span per call, written after the call from its record (nothing on the hot path), with
a child span for the upstream attempt; exported over OTLP/HTTP when an endpoint is set.
Conventions: https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/
"""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer, set_span_in_context

from gateway.metering.calls import CallRecord, Metered

NS = 1_000_000_000


class CallTracer:
    def __init__(self, processor: SpanProcessor) -> None:
        provider = TracerProvider(resource=Resource.create({"service.name": "tollgate"}))
        provider.add_span_processor(processor)
        self.provider = provider
        self.tracer: Tracer = provider.get_tracer("gateway")

    @classmethod
    def otlp(cls, endpoint: str) -> CallTracer:
        """Spans batched off the request path and sent to an OTLP/HTTP collector."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return cls(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))

    def write(self, call: CallRecord, metered: Metered) -> None:
        start = int(call.started_at * NS)
        end = start + int(call.duration_s * NS)
        model = call.model_requested or "unknown"
        attributes: dict[str, str | int | float | bool] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": call.provider,
            "gen_ai.request.model": model,
            "gateway.request_id": call.request_id,
            "gateway.status": call.status,
            "gateway.cost_usd": metered.cost_usd,
        }
        if call.model_used:
            attributes["gen_ai.response.model"] = call.model_used
        if call.step:
            attributes["gateway.step"] = call.step
        if call.usage is not None:
            attributes["gen_ai.usage.input_tokens"] = call.usage.input
            attributes["gen_ai.usage.output_tokens"] = call.usage.output
            attributes["gen_ai.usage.cache_read_input_tokens"] = call.usage.cache_read
            writes = call.usage.cache_write_5m + call.usage.cache_write_1h
            attributes["gen_ai.usage.cache_creation_input_tokens"] = writes
        if call.ttft_s is not None:
            attributes["gen_ai.server.time_to_first_token"] = call.ttft_s
        span = self.tracer.start_span(
            f"chat {model}", kind=SpanKind.SERVER, start_time=start, attributes=attributes
        )
        ok = call.status == "200"
        span.set_status(Status(StatusCode.OK if ok else StatusCode.ERROR))
        with_parent = set_span_in_context(span)
        upstream_start = start + int((call.overhead_s or 0.0) * NS)
        attempt = self.tracer.start_span(
            "upstream attempt", context=with_parent, kind=SpanKind.CLIENT, start_time=upstream_start
        )
        attempt.set_attribute("gateway.status", call.status)
        attempt.end(end_time=end)
        span.end(end_time=end)
