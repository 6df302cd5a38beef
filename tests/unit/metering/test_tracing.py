from __future__ import annotations

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gateway.metering.calls import CallRecord, Metered
from gateway.metering.tracing import CallTracer
from gateway.wire.usage import Usage
from tests.support.calls import sonnet_call


def test_a_span_per_call_with_genai_attributes_and_an_upstream_child() -> None:
    exporter = InMemorySpanExporter()
    tracer = CallTracer(SimpleSpanProcessor(exporter))
    call = sonnet_call(
        duration_s=2.0,
        ttft_s=0.5,
        usage=Usage(input=10, output=20, cache_read=1000, cache_write_5m=30, cache_write_1h=5),
        overhead_s=0.001,
    )
    tracer.write(call, Metered(0.01, ()))
    attempt, span = exporter.get_finished_spans()
    assert span.name == "chat claude-sonnet-4-5"
    assert span.kind == SpanKind.SERVER
    assert span.status.status_code == StatusCode.OK
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.request.model"] == "claude-sonnet-4-5"
    assert attributes["gen_ai.response.model"] == "claude-sonnet-4-5-20250929"
    assert attributes["gen_ai.usage.input_tokens"] == 10
    assert attributes["gen_ai.usage.output_tokens"] == 20
    assert attributes["gen_ai.usage.cache_read_input_tokens"] == 1000
    assert attributes["gen_ai.usage.cache_creation_input_tokens"] == 35
    assert attributes["gen_ai.server.time_to_first_token"] == 0.5
    assert span.end_time - span.start_time == 2_000_000_000  # type: ignore[operator]
    assert attempt.name == "upstream attempt"
    assert attempt.parent is not None
    assert attempt.parent.span_id == span.context.span_id  # type: ignore[union-attr]
    assert attempt.start_time == span.start_time + 1_000_000  # type: ignore[operator]


def test_a_failed_call_is_an_error_span() -> None:
    exporter = InMemorySpanExporter()
    CallTracer(SimpleSpanProcessor(exporter)).write(
        CallRecord("gw_2", "anthropic", None, "m", None, "529", 0.1, None, None, started_at=1.0),
        Metered(0.0, ()),
    )
    _, span = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
